"""The engine profile document: canonical round trip, strict loading, and agreement with settings' facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.engine_behaviors import (
    EVALUABLE_METRICS,
    METRIC_VALUE_KINDS,
    OPERATOR_VALUE_KINDS,
    PROFILE_FILE,
    WINDOWED_METRICS,
    EngineBehavior,
    EngineProfile,
    EngineProfileError,
    load_profile,
)
from settings import facts

PROFILE = EngineProfile(
    profile_name="fleetguard-engine",
    target_groups=("plant-7",),
    behaviors=(
        EngineBehavior("TcpPorts", "aws:listening-tcp-ports", "in-port-set", ports=(22, 443)),
        EngineBehavior("Sources", "aws:source-ip-address", "not-in-cidr-set", cidrs=("198.51.100.0/24",)),
        EngineBehavior("AuthFailures", "aws:num-authorization-failures", "less-than", count=5,
                       duration_seconds=300, datapoints_to_alarm=2, datapoints_to_clear=3, suppress_alerts=True),
    ),
)


def behavior(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "B", "metric": "aws:num-disconnects", "operator": "less-than", "count": 3,
                              "durationSeconds": 300}
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def profile_text(*behaviors: dict[str, Any], **fields: Any) -> str:
    return json.dumps({"profileName": "fleetguard-engine", "behaviors": list(behaviors), **fields})


def test_the_document_round_trips_canonically() -> None:
    text = PROFILE.to_json()

    assert EngineProfile.from_json(text) == PROFILE
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_load_profile_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / PROFILE_FILE
    path.write_text(PROFILE.to_json())

    assert load_profile(path) == PROFILE


def test_defaults_and_an_absent_target_mean_every_device() -> None:
    profile = EngineProfile.from_json(profile_text(behavior()))

    assert profile.target_groups == ()
    assert profile.behaviors[0] == EngineBehavior("B", "aws:num-disconnects", "less-than", count=3,
                                                  duration_seconds=300)


def test_the_behavior_document_is_device_defenders_shape() -> None:
    assert PROFILE.behaviors[2].to_document() == {
        "name": "AuthFailures", "metric": "aws:num-authorization-failures", "suppressAlerts": True,
        "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}, "durationSeconds": 300,
                     "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 3},
    }


@pytest.mark.parametrize(("text", "message"), [
    ("{", r"^profile: not valid JSON"),
    (profile_text(), r"^behaviors: expected at least one behavior"),
    (profile_text(*[behavior(name=f"B{index}") for index in range(101)]), r"^behaviors: expected at most 100"),
    (profile_text(behavior(), behavior()), r"^behaviors\[1\]\.name: 'B' is used twice"),
    (profile_text(behavior(), profileName="bad name"), r"^profileName: expected 1-128 characters"),
    (profile_text(behavior(), targetGroups=["ok", "not/ok"]), r"^targetGroups\[1\]: expected 1-128"),
    (profile_text(behavior(), extra=1), r"^profile: unknown field\(s\) extra"),
    (profile_text(behavior(statistic="p90")), r"^behaviors\[0\]: unknown field\(s\) statistic"),
    (profile_text(behavior(metric="aws:num-messages-received")),
     r"^behaviors\[0\]\.metric: 'aws:num-messages-received' is not a metric the engine has a source for"),
    (profile_text(behavior(metric="custom:temperature")), r"^behaviors\[0\]\.metric: 'custom:temperature'"),
    (profile_text(behavior(operator="in-port-set")),
     r"^behaviors\[0\]\.operator: 'in-port-set' does not apply to aws:num-disconnects"),
    (profile_text(behavior(count=None, ports=[1])), r"^behaviors\[0\]: .* takes exactly one value, 'count'; got ports"),
    (profile_text(behavior(count=-1)), r"^behaviors\[0\]\.count: expected a non-negative integer"),
    (profile_text(behavior(count=True)), r"^behaviors\[0\]\.count: expected a non-negative integer"),
    (profile_text(behavior(durationSeconds=None)), r"^behaviors\[0\]\.durationSeconds: .* expected one of 300"),
    (profile_text(behavior(durationSeconds=60)), r"^behaviors\[0\]\.durationSeconds: .*got 60"),
    (profile_text(behavior(metric="aws:message-byte-size")),
     r"^behaviors\[0\]\.durationSeconds: aws:message-byte-size is not counted over a window"),
    (profile_text(behavior(datapointsToAlarm=0)), r"^behaviors\[0\]\.datapointsToAlarm: expected an integer 1-10"),
    (profile_text(behavior(datapointsToClear=11)), r"^behaviors\[0\]\.datapointsToClear: expected an integer 1-10"),
    (profile_text(behavior(suppressAlerts="yes")), r"^behaviors\[0\]\.suppressAlerts: expected a boolean"),
    (profile_text(behavior(metric="aws:listening-udp-ports", operator="in-port-set", count=None,
                           durationSeconds=None, ports=[])), r"^behaviors\[0\]\.ports: expected at least one"),
    (profile_text(behavior(metric="aws:listening-udp-ports", operator="in-port-set", count=None,
                           durationSeconds=None, ports=[53, 65536])), r"^behaviors\[0\]\.ports\[1\]: expected a port"),
    (profile_text(behavior(metric="aws:source-ip-address", operator="in-cidr-set", count=None,
                           durationSeconds=None, cidrs=["10.0.0.1/8"])),
     r"^behaviors\[0\]\.cidrs\[0\]: expected an IPv4"),
    (profile_text(behavior(metric="aws:source-ip-address", operator="in-cidr-set", count=None,
                           durationSeconds=None, cidrs=[167772160])),
     r"^behaviors\[0\]\.cidrs\[0\]: expected an IPv4"),
])
def test_a_profile_the_engine_cannot_honour_is_rejected_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(EngineProfileError, match=message):
        EngineProfile.from_json(text)


def test_the_engine_metrics_agree_with_the_detect_facts() -> None:
    for metric in EVALUABLE_METRICS:
        fact = facts.DETECT_METRICS_BY_NAME[metric]
        assert METRIC_VALUE_KINDS[metric] == fact.value_kind.value, metric
        assert (metric in WINDOWED_METRICS) == (fact.duration is facts.Duration.REQUIRED), metric
    assert {name: kind.value for name, kind in facts.OPERATOR_VALUE_KIND.items()} == dict(OPERATOR_VALUE_KINDS)
    assert set(facts.DETECT_METRICS_BY_NAME) - EVALUABLE_METRICS == {"aws:num-messages-received"}

"""``detect.engine``: who evaluates the behaviors, and the strict checks that what the fleetguard engine is
given is something it evaluates exactly as Device Defender would."""

from __future__ import annotations

from typing import Any

import pytest

from functions.engine_behaviors import EVALUABLE_METRICS
from settings import load_settings
from settings.detect_engine import Engine
from settings.facts import DETECT_METRICS
from tests.settings.config_support import BASE, config_problems

PORTS = {"name": "Ports", "metric": "aws:listening-tcp-ports", "operator": "in-port-set", "value": [443]}
AUTH = {"name": "Auth", "metric": "aws:num-authorization-failures", "operator": "less-than", "value": 5,
        "durationSeconds": 300}
ENGINE_ONLY = {"engine": "fleetguard", "ruleBehaviors": [PORTS, AUTH]}


def detect(**section: Any) -> Any:
    return load_settings({**BASE, "detect": section}).detect


def problems(**section: Any) -> list[str]:
    return config_problems({"detect": section})


def test_device_defender_is_the_default_engine() -> None:
    settings = detect()
    assert settings.engine.engines == (Engine.DEVICE_DEFENDER,)
    assert settings.profile_names == ("fleetguard-test-rules", "fleetguard-test-ml")
    assert settings.engine_profile_names == ()


def test_engine_alone_deploys_no_device_defender_profile_and_names_its_own() -> None:
    settings = detect(**ENGINE_ONLY)
    assert settings.profile_names == ()
    assert settings.engine_profile_names == ("fleetguard-test-engine",)
    # ML defaults to off without Device Defender: nothing could train it.
    assert settings.ml_enabled is False


def test_side_by_side_runs_both_under_different_profile_names() -> None:
    settings = detect(engine=["deviceDefender", "fleetguard"], ruleBehaviors=[PORTS, AUTH])
    assert settings.profile_names == ("fleetguard-test-rules", "fleetguard-test-ml")
    assert settings.engine_profile_names == ("fleetguard-test-engine",)


def test_side_by_side_profile_names_must_differ() -> None:
    found = problems(engine=["deviceDefender", "fleetguard"], ruleBehaviors=[PORTS],
                     engineProfileName="fleetguard-test-rules")
    assert found == ["fleetguard:detect.engineProfileName: must differ from the Device Defender profile names, "
                     "so that each engine's violations are told apart (got 'fleetguard-test-rules')"]


def test_detect_off_runs_no_engine() -> None:
    settings = detect(enabled=False, **ENGINE_ONLY)
    assert settings.profile_names == ()
    assert settings.engine_profile_names == ()


@pytest.mark.parametrize("value", ["bogus", [], ["fleetguard", "fleetguard"], 3])
def test_unknown_or_repeated_engines_are_named(value: Any) -> None:
    found = problems(engine=value, ruleBehaviors=[PORTS])
    assert found
    assert all(problem.startswith("fleetguard:detect.engine: ") for problem in found)


def test_statistical_threshold_is_refused_with_the_reason() -> None:
    p99 = {"name": "P99", "metric": "aws:num-authorization-failures", "operator": "less-than",
           "statistic": "p99", "durationSeconds": 300}
    found = problems(engine="fleetguard", ruleBehaviors=[PORTS, p99])
    assert len(found) == 1
    assert found[0].startswith("fleetguard:detect.ruleBehaviors[1].statistic: the fleetguard engine cannot "
                               "evaluate statistical thresholds")


def test_ml_behaviors_are_refused_when_the_engine_runs_alone() -> None:
    found = problems(engine="fleetguard", ruleBehaviors=[PORTS], ml={"enabled": True})
    assert found == [
        "fleetguard:detect.ml.enabled: ML Detect behaviors are models Device Defender trains on the fleet's data; "
        "the fleetguard engine has none. Set false, or keep deviceDefender in detect.engine (got true)"
    ]


def test_ml_stays_with_device_defender_side_by_side() -> None:
    assert detect(engine=["deviceDefender", "fleetguard"], ruleBehaviors=[PORTS], ml={"enabled": True}).ml_enabled


def test_a_metric_without_a_source_is_refused() -> None:
    received = {"name": "Received", "metric": "aws:num-messages-received", "operator": "less-than",
                "value": 10, "durationSeconds": 300}
    found = problems(engine="fleetguard", ruleBehaviors=[PORTS, received])
    assert len(found) == 1
    assert found[0].startswith("fleetguard:detect.ruleBehaviors[1].metric: the fleetguard engine has no source for "
                               "aws:num-messages-received")


@pytest.mark.parametrize(("metric", "extra"), [
    ("aws:num-messages-sent", {"durationSeconds": 300}),
    ("aws:message-byte-size", {}),
])
def test_message_metrics_need_topic_filters(metric: str, extra: dict[str, Any]) -> None:
    behavior = {"name": "M", "metric": metric, "operator": "less-than", "value": 10, **extra}
    found = problems(engine="fleetguard", ruleBehaviors=[behavior])
    assert len(found) == 1
    assert found[0].startswith(f"fleetguard:detect.ruleBehaviors[0].metric: the fleetguard engine counts {metric} "
                               "only on the topics listed in detect.messageTopicFilters")
    settings = detect(engine="fleetguard", ruleBehaviors=[behavior], messageTopicFilters=["telemetry/+/data"])
    assert settings.engine.message_topic_filters == ("telemetry/+/data",)


def test_the_default_behaviors_need_topic_filters_with_the_engine() -> None:
    # The defaults count messages; the engine says so rather than drop those behaviors.
    found = problems(engine="fleetguard")
    assert [problem.split(":")[1].split(" ")[0] for problem in found] == [
        "detect.ruleBehaviors[2].metric", "detect.ruleBehaviors[3].metric",
    ]


def test_every_other_detect_metric_is_evaluable() -> None:
    unsupported = {metric.name for metric in DETECT_METRICS} - EVALUABLE_METRICS
    assert unsupported == {"aws:num-messages-received"}


@pytest.mark.parametrize(("topic_filter", "reason"), [
    ("$aws/things/x/shadow/update", "reserved topics"),
    ("a/#/b", "# may only be the last level"),
    ("a/b+/c", "a wildcard (+ or #) must fill a whole level"),
    ("a/'b", "quotes and backslashes"),
    ("/".join("abcdefghi"), "at most 8 levels"),
    ("", "expected a topic filter of 1-256 bytes"),
])
def test_topic_filters_are_checked(topic_filter: str, reason: str) -> None:
    found = problems(engine="fleetguard", ruleBehaviors=[PORTS], messageTopicFilters=[topic_filter])
    assert len(found) == 1
    assert found[0].startswith("fleetguard:detect.messageTopicFilters[0]: ")
    assert reason in found[0]


def test_at_most_ten_topic_filters() -> None:
    found = problems(engine="fleetguard", ruleBehaviors=[PORTS], messageTopicFilters=[f"t/{i}" for i in range(11)])
    assert found == [f"fleetguard:detect.messageTopicFilters: at most 10 topic filters (each is a topic rule billed "
                     f"per message) (got {[f't/{i}' for i in range(11)]})".replace("'", '"')]


def test_engine_options_have_defaults_and_ranges() -> None:
    options = detect(**ENGINE_ONLY).engine.options
    assert (options.stream_shards, options.batch_size, options.maximum_retry_attempts) == (0, 500, 3)
    assert options.point_in_time_recovery is True
    assert options.log_retention_days == 365
    found = problems(engineOptions={"batchSize": 0, "parallelizationFactor": 11, "streamShards": -1})
    assert sorted(found) == [
        "fleetguard:detect.engineOptions.batchSize: expected a whole number in 1..10000 (got 0)",
        "fleetguard:detect.engineOptions.parallelizationFactor: expected a whole number in 1..10 (got 11)",
        "fleetguard:detect.engineOptions.streamShards: expected a whole number in 0..64 (got -1)",
    ]

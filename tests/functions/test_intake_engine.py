"""Violations the fleetguard Detect engine raises go through the intake exactly as Device Defender's do;
storms of them, which Device Defender's mitigation tasks cannot target, are contained device by device
at a bounded rate, the rest delivered again.

The engine's ViolationEvents are produced by the evaluator itself from a device report, so the test
follows the real path: report -> evaluator -> alert topic (an SNS envelope in the intake queue) -> intake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions import intake
from functions.contract import EnvVar, Outcome, RecordOutcome
from functions.device_report import parse_report_text
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.evaluator import DeviceState, Observation, ObservationKind, evaluate
from functions.messages import ViolationEvent, parse_message
from functions.storm import DEFERRED, Pace, contain_one_by_one
from harness.lambda_context import lambda_context as make_lambda_context
from tests.functions.intake_support import (
    GROUP,
    REGION,
    LogCapture,
    Responders,
    Stubbed,
    failed_ids,
    set_intake_env,
    sqs_event,
    sqs_record,
    violation,
)

pytest_plugins = ("tests.functions.intake_support",)

ENGINE_PROFILE = "fleetguard-test-engine"
MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"
EVENTS = Path(__file__).resolve().parent.parent / "events"
PROFILE = EngineProfile(
    profile_name=ENGINE_PROFILE,
    target_groups=(),
    behaviors=(EngineBehavior(name="AuthorizedListeningTcpPorts", metric="aws:listening-tcp-ports",
                              operator="in-port-set", ports=(22, 443)),),
)


def engine_violation(thing: str) -> dict[str, Any]:
    """The in-alarm ViolationEvent the evaluator raises for a device listening on an unauthorized port."""
    report = parse_report_text((EVENTS / "device-report-unauthorized-port.json").read_text())
    observation = Observation(device=thing, at_ms=1_767_226_200_000, kind=ObservationKind.REPORT, report=report)
    evaluation = evaluate(PROFILE, DeviceState(device=thing), [observation])
    [event] = evaluation.events
    assert event["violationEventType"] == "in-alarm"
    return dict(event)


@pytest.fixture
def engine_intake(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=False, storm_threshold=3)
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, MOTO_IOT_DATA_ENDPOINT)
    monkeypatch.setenv(EnvVar.ENGINE_PROFILE_NAMES, ENGINE_PROFILE)
    monkeypatch.setenv(EnvVar.CONTAINMENT_RATE, "50")
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName=GROUP)


def register(*things: str) -> None:
    iot = boto3.client("iot", region_name=REGION)
    for thing in things:
        iot.create_thing(thingName=thing)


def quarantined() -> list[str]:
    iot = boto3.client("iot", region_name=REGION)
    things: list[str] = iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
    return sorted(things)


def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = intake.handler(event, context)
    return response


def test_the_engine_violation_parses_as_a_device_defender_violation() -> None:
    message = parse_message(json.dumps(engine_violation("dev-0001")))
    assert isinstance(message, ViolationEvent)
    assert message.security_profile_name == ENGINE_PROFILE
    assert message.is_in_alarm
    assert message.behavior.name == "AuthorizedListeningTcpPorts"


@pytest.mark.usefixtures("engine_intake")
def test_an_engine_violation_is_contained_exactly_as_a_device_defender_one(
    responders: Responders, lambda_context: Any, intake_logs: LogCapture
) -> None:
    register("dev-engine", "dev-defender")
    engine = sqs_record(engine_violation("dev-engine"), message_id="m-engine")
    defender = sqs_record(violation("dev-defender", violation_id="dd0001", profile="fleetguard-test-rules"),
                          message_id="m-defender")

    response = run(sqs_event([engine, defender]), lambda_context)

    assert response == {"batchItemFailures": []}
    assert quarantined() == ["dev-defender", "dev-engine"]
    outcomes = {entry["record_id"]: entry["outcome"] for entry in intake_logs.with_message("record handled")}
    assert outcomes == {"m-engine": str(RecordOutcome(Outcome.CONTAINED)),
                        "m-defender": str(RecordOutcome(Outcome.CONTAINED))}
    subjects = sorted(notice["subject"] for notice in responders.notices())
    assert subjects == ["fleetguard: dev-defender contained (MessagesPub)",
                        "fleetguard: dev-engine contained (AuthorizedListeningTcpPorts)"]


@pytest.mark.usefixtures("engine_intake")
def test_an_engine_storm_is_contained_device_by_device_without_a_mitigation_task(
    responders: Responders, stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    # The mitigation Stubber expects no call: any StartDetectMitigationActionsTask would fail the test.
    devices = [f"dev-{index:04d}" for index in range(4)]
    register(*devices[:3])  # the fourth is a client id without a thing

    response = run(sqs_event([sqs_record(engine_violation(device), message_id=f"m-{device}") for device in devices]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    assert quarantined() == devices[:3]
    [storm] = intake_logs.with_message("alert storm answered in bulk")
    assert storm["tasks"] == []
    assert storm["devices_contained_one_by_one"] == 4
    outcomes = {entry["outcome"] for entry in intake_logs.with_message("record handled")}
    assert outcomes == {f"{Outcome.STORM_MEMBER} (AuthorizedListeningTcpPorts of security profile {ENGINE_PROFILE})"}
    [notice] = responders.notices()
    assert ("Containment device by device (fleetguard engine violations, which Device Defender mitigation tasks "
            f"do not accept): 3 of 4 device(s) confirmed in thing group {GROUP}, 1 not registered, 0 to be "
            "retried from the queue.") in notice["message"]


@pytest.mark.usefixtures("engine_intake")
def test_devices_the_invocation_has_no_time_for_are_delivered_again(
    responders: Responders, stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    devices = [f"dev-{index:04d}" for index in range(3)]
    register(*devices)
    short_of_time = make_lambda_context("fleetguard-test", region=REGION, account_id="123456789012",
                                        remaining_ms=Pace(1, lambda: 0).reserve_ms - 1)

    response = run(sqs_event([sqs_record(engine_violation(device), message_id=f"m-{device}") for device in devices]),
                   short_of_time)

    assert failed_ids(response) == [f"m-{device}" for device in devices]
    assert quarantined() == []
    assert intake_logs.failure_reasons() == {
        f"m-{device}": f"alert storm (AuthorizedListeningTcpPorts of security profile {ENGINE_PROFILE}): "
                       f"containing {device} failed: {DEFERRED}"
        for device in devices
    }


def in_alarm(thing: str, violation_id: str) -> ViolationEvent:
    message = parse_message(json.dumps(violation(thing, violation_id=violation_id)))
    assert isinstance(message, ViolationEvent)
    return message


def test_one_by_one_containment_is_paced_and_stops_short_of_the_deadline() -> None:
    now = [0.0]
    starts: list[float] = []
    time_left = [60_000]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def contain(event: ViolationEvent) -> bool:
        starts.append(now[0])
        time_left[0] -= 20_000  # each containment uses up a third of the budget
        return event.thing_name != "dev-2"

    violations = [in_alarm(f"dev-{i}", f"v{i}") for i in range(4)]
    pace = Pace(per_second=4, time_left_ms=lambda: time_left[0], reserve_ms=10_000, clock=lambda: now[0], sleep=sleep)

    outcomes = contain_one_by_one(violations, contain, pace)

    assert starts == [0.0, 0.25, 0.5]
    assert [(o.thing_name, o.registered, o.error) for o in outcomes] == [
        ("dev-0", True, None), ("dev-1", True, None), ("dev-2", False, None), ("dev-3", True, DEFERRED),
    ]

"""A violation raised by the fleetguard Detect engine goes through the intake to containment exactly as a
Device Defender one does (Incident Manager off: contain and tell the responders)."""

from __future__ import annotations

import json
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions import aws_clients, intake
from functions.device_report import parse_report_text
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.evaluator import DeviceState, Observation, ObservationKind, evaluate
from tests.functions.conftest import EVENTS_DIR
from tests.functions.test_intake_support import (
    GROUP,
    REGION,
    Responders,
    set_intake_env,
    sqs_event,
    sqs_record,
    sqs_record_from_sns_event,
)

pytest_plugins = ("tests.functions.test_intake_support",)

MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"
ENGINE = EngineProfile("fleetguard-engine", (), (
    EngineBehavior("AuthorizedListeningTcpPorts", "aws:listening-tcp-ports", "in-port-set", ports=(22, 443)),
))


@pytest.fixture
def im_disabled(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=False)
    monkeypatch.setenv("IOT_DATA_ENDPOINT", MOTO_IOT_DATA_ENDPOINT)


def engine_violation(thing: str) -> dict[str, Any]:
    report = parse_report_text((EVENTS_DIR / "device-report-unauthorized-port.json").read_text())
    evaluation = evaluate(ENGINE, DeviceState(thing), [Observation(thing, 1_767_226_200_000,
                                                                   ObservationKind.REPORT, report=report)])
    [violation] = evaluation.events
    return violation


def shadow(thing: str) -> dict[str, Any]:
    client = boto3.client("iot-data", region_name=REGION, endpoint_url=f"https://{MOTO_IOT_DATA_ENDPOINT}")
    document: dict[str, Any] = json.loads(client.get_thing_shadow(thingName=thing)["payload"].read())
    return document


def test_an_engine_violation_is_contained_like_a_device_defender_one(
    im_disabled: None, responders: Responders, load_event: Any, lambda_context: Any, call_log: Any
) -> None:
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName=GROUP)
    for thing in ("dev-IZWB", "dev-engine-1"):
        iot.create_thing(thingName=thing)
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())
    violation = engine_violation("dev-engine-1")

    device_defender = intake.handler(sqs_event([sqs_record_from_sns_event(
        load_event("detect-rule-in-alarm.json"), message_id="m-1")]), lambda_context)
    device_defender_calls = list(call_log.calls)
    call_log.clear()
    engine = intake.handler(sqs_event([sqs_record(violation, message_id="m-2")]), lambda_context)

    assert device_defender == engine == {"batchItemFailures": []}
    assert call_log.calls == device_defender_calls
    assert sorted(iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]) == ["dev-IZWB", "dev-engine-1"]
    desired = shadow("dev-engine-1")["state"]["desired"]
    assert desired["quarantine"] is True
    assert violation["violationId"] in desired["quarantineReason"]
    _, notice = responders.notices()
    assert notice["subject"] == "fleetguard: dev-engine-1 contained (AuthorizedListeningTcpPorts)"
    assert "rule behavior of security profile fleetguard-engine" in notice["message"]

"""A violation the Detect engine raises, published to the alert topic and delivered through the intake
queue, is contained exactly as a Device Defender violation is: same calls, same outcome, same notice."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions import aws_clients, engine_handler, intake
from functions.contract import EnvVar, Outcome, RecordOutcome
from tests.functions.engine_support import PORTS, REGION, EngineAccount, kinesis_event, report_record
from tests.functions.intake_support import (
    GROUP,
    LogCapture,
    Responders,
    set_intake_env,
    sqs_event,
    sqs_record,
    sqs_record_from_sns_event,
)

pytest_plugins = ("tests.functions.engine_support", "tests.functions.intake_support")

MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"
LoadEvent = Callable[[str], Any]


@dataclass(frozen=True)
class Account:
    """One moto account holding the engine's resources and the intake's."""

    iot: Any
    engine: EngineAccount
    responders: Responders


@pytest.fixture
def account(engine_account: EngineAccount, responders: Responders, monkeypatch: pytest.MonkeyPatch) -> Account:
    set_intake_env(monkeypatch, incident_manager=False)
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, MOTO_IOT_DATA_ENDPOINT)
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName=GROUP)
    for thing in ("dev-IZWB", "dev-ENGN"):
        iot.create_thing(thingName=thing)
    return Account(iot, engine_account, responders)


def intake_record_from_alert_queue(notification: dict[str, Any], *, message_id: str) -> dict[str, Any]:
    """The SNS notification the alert topic delivered, as the intake queue hands it to the intake."""
    record = sqs_record("", message_id=message_id)
    record["body"] = json.dumps(notification)
    return record


def contain(event: dict[str, Any], context: Any, call_log: Any, logs: LogCapture) -> tuple[list[str], str]:
    """Run the intake on one record: the IoT calls it made and its logged outcome."""
    call_log.clear()
    logs.entries.clear()
    assert intake.handler(event, context) == {"batchItemFailures": []}
    [handled] = logs.with_message("record handled")
    return list(call_log.calls), handled["outcome"]


def test_an_engine_violation_is_contained_like_a_device_defender_one(
    account: Account, load_event: LoadEvent, lambda_context: Any, call_log: Any, intake_logs: LogCapture
) -> None:
    engine_handler.handler(kinesis_event([report_record("dev-ENGN", 1, 0, sequence=1, tcp_ports=(22, 4444))]),
                           lambda_context)
    [notification] = account.engine.alert_bodies()
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())

    device_defender = contain(
        sqs_event([sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-dd")]),
        lambda_context, call_log, intake_logs)
    engine = contain(sqs_event([intake_record_from_alert_queue(notification, message_id="m-engine")]),
                     lambda_context, call_log, intake_logs)

    assert engine == device_defender
    assert RecordOutcome.parse(engine[1]).kind is Outcome.CONTAINED
    things = account.iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
    assert sorted(things) == ["dev-ENGN", "dev-IZWB"]
    dd_notice, engine_notice = account.responders.notices()
    assert dd_notice["subject"] == "fleetguard: dev-IZWB contained (MessagesPub)"
    assert engine_notice["subject"] == f"fleetguard: dev-ENGN contained ({PORTS.name})"
    message = json.loads(notification["Message"])
    assert f"Violation id: {message['violationId']}" in engine_notice["message"]

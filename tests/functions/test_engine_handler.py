"""The Detect engine's stream handler against moto (DynamoDB, SNS, SQS, IoT): violations published in
Device Defender's shape, duplicates and out-of-order reports, malformed records kept, write conflicts,
partial batch failures, thing group targets and the writes steady state costs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions import aws_clients, engine_handler
from functions.contract_engine import STATE_ALARMED
from functions.engine_behaviors import EngineProfile
from functions.engine_handler import EngineClients
from functions.engine_state import OUTBOX, StateCache, StateTable, serialize_item
from functions.messages import EventType, ViolationEvent, parse_message
from tests.functions.engine_support import (
    AUTH_FAILURES,
    PORTS,
    PROFILE_NAME,
    REGION,
    STATE_TABLE,
    EngineAccount,
    auth_failure_record,
    failed_sequences,
    kinesis_event,
    report_record,
    set_clock,
)

pytest_plugins = ("tests.functions.engine_support",)

LoadEvent = Callable[[str], Any]


def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = engine_handler.handler(event, context)
    return response


def violation(document: dict[str, Any]) -> ViolationEvent:
    parsed = parse_message(json.dumps(document))
    assert isinstance(parsed, ViolationEvent)
    return parsed


def test_an_unauthorized_port_raises_a_device_defender_shaped_violation(
    engine_account: EngineAccount, lambda_context: Any
) -> None:
    event = kinesis_event([report_record("dev-1", 1, 0, sequence=1, tcp_ports=(22, 443, 4444))])

    assert run(event, lambda_context) == {"batchItemFailures": []}

    [alert] = engine_account.alerts()
    parsed = violation(alert)
    assert (parsed.thing_name, parsed.security_profile_name, parsed.event_type) == (
        "dev-1", PROFILE_NAME, EventType.IN_ALARM)
    assert parsed.behavior.name == PORTS.name
    assert parsed.metric_value == {"ports": [22, 443, 4444]}
    item = engine_account.item("dev-1")
    assert item is not None
    assert item["version"] == 1
    assert item["behaviors"][PORTS.name]["vid"] == parsed.violation_id
    assert OUTBOX not in item, "a published event leaves the outbox"
    assert STATE_ALARMED in item, "an alarmed device is in the sweep's index"
    assert engine_account.dead_letters() == []


def test_a_redelivered_batch_publishes_and_writes_nothing_again(
    engine_account: EngineAccount, lambda_context: Any, call_log: Any
) -> None:
    event = kinesis_event([report_record("dev-1", 1, 0, sequence=1, tcp_ports=(4444,))])
    run(event, lambda_context)
    assert len(engine_account.alerts()) == 1
    call_log.watch(aws_clients.client("dynamodb"), aws_clients.client("sns"))

    assert run(event, lambda_context) == {"batchItemFailures": []}

    assert engine_account.alerts() == []
    assert "PutItem" not in call_log.calls
    assert "PublishBatch" not in call_log.calls


def test_an_older_report_changes_nothing(engine_account: EngineAccount, lambda_context: Any) -> None:
    run(kinesis_event([report_record("dev-1", 5, 0, sequence=1, tcp_ports=(4444,))]), lambda_context)
    engine_account.alerts()

    # Report 4 arrives late and is normal: had it been applied, the alarm would clear.
    run(kinesis_event([report_record("dev-1", 4, 1, sequence=2)]), lambda_context)

    assert engine_account.alerts() == []
    item = engine_account.item("dev-1")
    assert item is not None
    assert item["behaviors"][PORTS.name]["alarm"] is True
    # The next newer report is applied and clears it.
    run(kinesis_event([report_record("dev-1", 6, 5, sequence=3)]), lambda_context)
    assert [alert["violationEventType"] for alert in engine_account.alerts()] == ["alarm-cleared"]


def test_a_process_that_restarts_reads_the_stored_state(engine_account: EngineAccount, lambda_context: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run(kinesis_event([report_record("dev-1", 1, 0, sequence=1, tcp_ports=(4444,))]), lambda_context)
    engine_account.alerts()
    monkeypatch.setattr(engine_handler, "CACHE", StateCache())

    run(kinesis_event([report_record("dev-1", 2, 5, sequence=2)]), lambda_context)

    [cleared] = engine_account.alerts()
    assert cleared["violationEventType"] == "alarm-cleared"


def test_malformed_records_are_dead_lettered_with_their_reason_and_the_batch_goes_on(
    engine_account: EngineAccount, lambda_context: Any, load_event: LoadEvent
) -> None:
    event = load_event("kinesis-engine-broken.json")

    assert run(event, lambda_context) == {"batchItemFailures": []}

    letters = engine_account.dead_letters()
    assert len(letters) == 6
    by_sequence = {letter["sequenceNumber"]: letter for letter in letters}
    records = event["Records"]
    assert "is not the publishing client" in by_sequence[records[3]["kinesis"]["sequenceNumber"]]["reason"]
    assert by_sequence[records[1]["kinesis"]["sequenceNumber"]]["data"] == records[1]["kinesis"]["data"]
    # The good report was evaluated: its state is stored.
    assert engine_account.item("dev-IZWB") is not None


def test_a_dead_letter_queue_that_refuses_fails_those_records_only(
    engine_account: EngineAccount, lambda_context: Any, load_event: LoadEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    class RefusingQueue:
        def send_message_batch(self, **_: Any) -> dict[str, Any]:
            raise RuntimeError("queue unavailable")

    monkeypatch.setattr(engine_handler, "CLIENTS", EngineClients(sqs=RefusingQueue))
    event = load_event("kinesis-engine-broken.json")

    response = run(event, lambda_context)

    assert failed_sequences(response) == [record["kinesis"]["sequenceNumber"] for record in event["Records"][:6]]


def test_a_write_conflict_re_reads_and_re_evaluates(
    engine_account: EngineAccount, lambda_context: Any
) -> None:
    run(kinesis_event([report_record("dev-1", 1, 0, sequence=1)]), lambda_context)
    item = engine_account.item("dev-1")
    assert item is not None
    assert item["version"] == 1
    # Another writer (the log records' shard) moves the state on behind this environment's cache.
    moved = {**item, "version": 2, "lastReportId": 1}
    engine_account.dynamodb.put_item(TableName=STATE_TABLE, Item=serialize_item(moved))

    response = run(kinesis_event([report_record("dev-1", 2, 5, sequence=2, tcp_ports=(4444,))]), lambda_context)

    assert response == {"batchItemFailures": []}
    [alert] = engine_account.alerts()
    assert alert["violationEventType"] == "in-alarm"
    stored = engine_account.item("dev-1")
    assert stored is not None
    assert stored["version"] == 3


def test_a_state_that_keeps_moving_fails_only_its_device_s_records(
    engine_account: EngineAccount, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def always_moved(_table: StateTable, state: Any, *_: Any) -> None:
        attempts.append(state.device)

    moving = report_record("dev-1", 1, 0, sequence=1)
    steady = report_record("dev-2", 1, 0, sequence=2)
    run(kinesis_event([steady]), lambda_context)
    monkeypatch.setattr(StateTable, "write", always_moved)

    response = run(kinesis_event([moving, report_record("dev-2", 2, 5, sequence=3)]), lambda_context)

    assert failed_sequences(response) == [moving["kinesis"]["sequenceNumber"]]
    assert attempts == ["dev-1"] * engine_handler.WRITE_ATTEMPTS


def test_a_device_whose_events_were_not_published_fails_only_its_records_and_is_published_on_retry(
    engine_account: EngineAccount, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sns = aws_clients.client("sns")

    class RefusingTopic:
        def publish_batch(self, **_: Any) -> dict[str, Any]:
            raise RuntimeError("topic unavailable")

    monkeypatch.setattr(engine_handler, "CLIENTS", EngineClients(sns=RefusingTopic))
    alarming = report_record("dev-1", 1, 0, sequence=1, tcp_ports=(4444,))
    quiet = report_record("dev-2", 1, 0, sequence=2)
    event = kinesis_event([alarming, quiet])

    response = run(event, lambda_context)

    assert failed_sequences(response) == [alarming["kinesis"]["sequenceNumber"]]
    item = engine_account.item("dev-1")
    assert item is not None
    assert len(item[OUTBOX]) == 1, "the raised event is kept with the state"
    # Lambda retries from the failed record; the topic is back.
    monkeypatch.setattr(engine_handler, "CLIENTS", EngineClients(sns=lambda: real_sns))
    assert run(event, lambda_context) == {"batchItemFailures": []}
    [alert] = engine_account.alerts()
    assert alert["violationEventType"] == "in-alarm"
    assert alert["thingName"] == "dev-1"
    item = engine_account.item("dev-1")
    assert item is not None
    assert OUTBOX not in item


def test_an_outbox_left_by_a_process_that_stopped_is_published_by_the_next(
    engine_account: EngineAccount, lambda_context: Any
) -> None:
    pending = {"violationId": "0123abcd", "thingName": "dev-1", "violationEventType": "in-alarm"}
    item = {"device": "dev-1", "version": 4, "behaviors": {}, OUTBOX: [json.dumps(pending)]}
    engine_account.dynamodb.put_item(TableName=STATE_TABLE, Item=serialize_item(item))

    run(kinesis_event([auth_failure_record("dev-1", 0, sequence=1)]), lambda_context)

    assert engine_account.alerts() == [pending]


def test_authorization_failures_alarm_once_the_window_passes_its_limit(
    engine_account: EngineAccount, lambda_context: Any
) -> None:
    failures = [auth_failure_record("dev-1", 0.5 * index, sequence=index + 1) for index in range(3)]

    run(kinesis_event(failures), lambda_context)

    [alert] = engine_account.alerts()
    assert alert["behavior"]["name"] == AUTH_FAILURES.name
    assert alert["metricValue"] == {"count": 3}


def test_in_steady_state_a_device_is_written_only_for_its_heartbeat(
    engine_account: EngineAccount, lambda_context: Any, call_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_log.watch(aws_clients.client("dynamodb"))
    devices = [f"dev-{index}" for index in range(20)]
    for report_id in range(1, 13):  # an hour of reports, one every 5 minutes
        set_clock(monkeypatch, 1_795_165_200_000 + report_id * 5 * 60_000)
        records = [report_record(device, report_id, report_id * 5, sequence=report_id * 100 + index)
                   for index, device in enumerate(devices)]
        assert run(kinesis_event(records), lambda_context) == {"batchItemFailures": []}

    # One first write per device (its first sight), then nothing within the heartbeat.
    assert call_log.calls.count("PutItem") == len(devices)
    assert call_log.calls.count("BatchGetItem") == 1


# --- thing group targets ----------------------------------------------------------------------------------


@pytest.fixture
def grouped_fleet(engine_account: EngineAccount, monkeypatch: pytest.MonkeyPatch) -> Any:
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName="sensors")
    for thing in ("sensor-1", "camera-1"):
        iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName="sensors", thingName="sensor-1")
    monkeypatch.setattr(engine_handler, "PROFILE", EngineProfile(PROFILE_NAME, ("sensors",), (PORTS,)))
    return iot


def test_a_group_targeted_profile_evaluates_members_only(
    grouped_fleet: Any, engine_account: EngineAccount, lambda_context: Any, call_log: Any
) -> None:
    call_log.watch(aws_clients.iot())
    records = [
        report_record("sensor-1", 1, 0, sequence=1, tcp_ports=(4444,)),
        report_record("camera-1", 1, 0, sequence=2, tcp_ports=(4444,)),
        report_record("Gateway 7/line.2", 1, 0, sequence=3, tcp_ports=(4444,)),
    ]

    run(kinesis_event(records), lambda_context)

    assert [alert["thingName"] for alert in engine_account.alerts()] == ["sensor-1"]
    # A client id no thing can have is in no group, without asking the registry.
    assert call_log.calls == ["ListThingGroupsForThing", "ListThingGroupsForThing"]


def test_group_membership_is_cached_until_it_expires(
    grouped_fleet: Any, engine_account: EngineAccount, lambda_context: Any, call_log: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_log.watch(aws_clients.iot())
    run(kinesis_event([report_record("camera-1", 1, 0, sequence=1)]), lambda_context)
    run(kinesis_event([report_record("camera-1", 2, 5, sequence=2)]), lambda_context)
    assert call_log.calls == ["ListThingGroupsForThing"]

    grouped_fleet.add_thing_to_thing_group(thingGroupName="sensors", thingName="camera-1")
    set_clock(monkeypatch, 1_795_165_200_000 + engine_handler.GROUPS_TTL_MS)
    run(kinesis_event([report_record("camera-1", 3, 10, sequence=3, tcp_ports=(4444,))]), lambda_context)

    assert call_log.calls == ["ListThingGroupsForThing", "ListThingGroupsForThing"]
    assert [alert["thingName"] for alert in engine_account.alerts()] == ["camera-1"]


def test_the_presence_and_log_samples_are_handled_end_to_end(
    engine_account: EngineAccount, lambda_context: Any, load_event: LoadEvent
) -> None:
    for name in ("kinesis-engine-presence.json", "kinesis-engine-logs.json", "kinesis-engine-message.json"):
        assert run(load_event(name), lambda_context) == {"batchItemFailures": []}

    assert engine_account.dead_letters() == []
    item = engine_account.item("dev-IZWB")
    # The failed connect and the log's Publish-In and Subscribe failures fall in one 5-minute window.
    assert item is not None
    assert item["behaviors"][AUTH_FAILURES.name]["sum"] == 3
    [alert] = engine_account.alerts()
    assert (alert["thingName"], alert["behavior"]["name"], alert["metricValue"]) == (
        "dev-IZWB", AUTH_FAILURES.name, {"count": 3})

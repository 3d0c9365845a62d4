"""Decoding the Detect engine's stream records: every kind of record into observations, malformed ones
into a reason (never an exception)."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest

from functions.engine_records import LOG_STATUS, OBSERVATIONS_PER_RECORD, decode_record
from functions.evaluator import ObservationKind

T = 1795165500000
LoadEvent = Callable[[str], Any]


def records(load_event: LoadEvent, name: str) -> list[dict[str, Any]]:
    return list(load_event(name)["Records"])


def test_reports_become_report_observations_of_the_topic_thing(load_event: LoadEvent) -> None:
    decoded = [decode_record(record) for record in records(load_event, "kinesis-engine-reports.json")]

    assert [record.error for record in decoded] == [None, None, None]
    observations = [record.observations[0] for record in decoded]
    assert [(observation.device, observation.kind) for observation in observations] == [
        ("dev-IZWB", ObservationKind.REPORT), ("plant-7:line_2-sensor", ObservationKind.REPORT),
        ("dev-0042", ObservationKind.REPORT),
    ]
    assert observations[0].at_ms == T
    assert observations[0].report is not None
    assert observations[0].report.tcp_ports == (22, 443)
    assert observations[2].report is not None
    assert 4444 in (observations[2].report.tcp_ports or ())


def test_positions_keep_stream_order_and_a_record_s_observations_apart(load_event: LoadEvent) -> None:
    presence = records(load_event, "kinesis-engine-presence.json")
    decoded = [decode_record(record) for record in presence]

    positions = [observation.sequence or 0 for record in decoded for observation in record.observations]
    assert all(positions)
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    first_sequence = int(presence[0]["kinesis"]["sequenceNumber"])
    assert positions[0] == first_sequence * OBSERVATIONS_PER_RECORD


def test_presence_events_are_attempts_disconnects_and_authorization_failures(load_event: LoadEvent) -> None:
    decoded = [decode_record(record) for record in records(load_event, "kinesis-engine-presence.json")]

    kinds = [[observation.kind for observation in record.observations] for record in decoded]
    assert kinds == [
        [ObservationKind.CONNECT], [ObservationKind.DISCONNECT],
        [ObservationKind.CONNECT, ObservationKind.AUTH_FAILURE],
    ]
    assert decoded[0].observations[0].source_ip == "203.0.113.7"
    assert decoded[2].observations[0].source_ip == "198.51.100.23"


def test_log_authorization_failures_count_publish_and_subscribe_not_connect(load_event: LoadEvent) -> None:
    data, control = (decode_record(record) for record in records(load_event, "kinesis-engine-logs.json"))

    assert data.error is None
    assert [(observation.device, observation.kind) for observation in data.observations] == [
        ("dev-IZWB", ObservationKind.AUTH_FAILURE), ("dev-IZWB", ObservationKind.AUTH_FAILURE),
        ("Gateway 7/line.2", ObservationKind.AUTH_FAILURE),
    ]
    assert [observation.at_ms for observation in data.observations] == [T, T + 1000, T + 4000]
    # Another shard's sequence numbers do not order a device's records.
    assert all(observation.sequence is None for observation in data.observations)
    assert control.error is None
    assert control.observations == ()


def test_a_message_record_is_a_sent_message_of_its_size(load_event: LoadEvent) -> None:
    (decoded,) = (decode_record(record) for record in records(load_event, "kinesis-engine-message.json"))

    (observation,) = decoded.observations
    assert (observation.device, observation.kind, observation.message_bytes) == (
        "dev-IZWB", ObservationKind.MESSAGE, 512)


def test_a_record_partitioned_by_something_else_carries_no_position(load_event: LoadEvent) -> None:
    record = copy.deepcopy(records(load_event, "kinesis-engine-reports.json")[0])
    record["kinesis"]["partitionKey"] = "another-device"

    (observation,) = decode_record(record).observations
    assert observation.sequence is None


def test_malformed_records_come_back_with_their_reason(load_event: LoadEvent) -> None:
    decoded = [decode_record(record) for record in records(load_event, "kinesis-engine-broken.json")]

    reasons = [record.error or "" for record in decoded]
    assert "not valid base64" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert "fg_kind" in reasons[2]
    assert "'telemetry'" in reasons[2]
    assert "is not the publishing client 'dev-0042'" in reasons[3]
    assert "major version" in reasons[4]
    assert "gzip" in reasons[5]
    assert reasons[6] == ""
    assert len(decoded[6].observations) == 1
    assert all(record.observations == () for record in decoded[:6])
    assert decoded[1].data == records(load_event, "kinesis-engine-broken.json")[1]["kinesis"]["data"]


def _log_record(payload: dict[str, Any]) -> dict[str, Any]:
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"kinesis": {"partitionKey": "x", "sequenceNumber": "1", "data": data}}


@pytest.mark.parametrize(("payload", "reason"), [
    ({"messageType": "SOMETHING"}, "messageType"),
    ({"messageType": "DATA_MESSAGE", "logEvents": {}}, "logEvents: expected an array"),
    ({"messageType": "DATA_MESSAGE", "logEvents": [{"timestamp": T, "message": "{"}]}, "logEvents[0].message"),
    ({"messageType": "DATA_MESSAGE", "logEvents": [{"timestamp": "soon", "message": json.dumps(
        {LOG_STATUS: "Failure", "reason": "AUTHORIZATION_FAILURE", "eventType": "Publish-In", "clientId": "d"})}]},
     "logEvents[0].timestamp"),
    ({"messageType": "DATA_MESSAGE", "logEvents": [{"timestamp": T, "message": json.dumps(
        {LOG_STATUS: "Failure", "reason": "AUTHORIZATION_FAILURE", "eventType": "Publish-In", "clientId": ""})}]},
     "clientId"),
])
def test_malformed_log_payloads_name_what_is_wrong(payload: dict[str, Any], reason: str) -> None:
    decoded = decode_record(_log_record(payload))

    assert decoded.error is not None
    assert reason in decoded.error
    assert decoded.observations == ()


def test_a_missing_sequence_number_is_a_reason_too() -> None:
    decoded = decode_record({"kinesis": {"data": ""}})

    assert decoded.error is not None
    assert "sequenceNumber" in decoded.error

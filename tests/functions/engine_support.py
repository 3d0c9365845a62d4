"""Shared builders for the Detect engine handler and sweep tests (this module holds no tests).

The account is moto: the state table (as the contract describes it), the alert topic with a queue
subscribed to read what the engine publishes, and the dead-letter queue. Kinesis records are built the way
Lambda delivers them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions import engine_handler, engine_sweep
from functions.contract_engine import EngineHandlerEnvironment, create_engine_state_table_request
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.engine_state import StateCache, deserialize_item

REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_TABLE = "fleetguard-engine-state"
ALERT_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts"
DEAD_LETTERS = "fleetguard-engine-dead-letters"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/fleetguard-device-metrics"
PROFILE_NAME = "fleetguard-engine-dev"
T0 = 1_795_165_200_000
"""2026-11-20T05:00:00Z, a multiple of every window length."""
MINUTE = 60_000

PORTS = EngineBehavior("ListeningTcpPorts", "aws:listening-tcp-ports", "in-port-set", ports=(22, 443))
AUTH_FAILURES = EngineBehavior("AuthFailures", "aws:num-authorization-failures", "less-than", count=3,
                               duration_seconds=300)
PROFILE = EngineProfile(PROFILE_NAME, (), (PORTS, AUTH_FAILURES))


@dataclass
class EngineAccount:
    """The moto account the engine runs against, with readers for what it wrote."""

    dynamodb: Any
    sqs: Any
    alerts_queue_url: str
    dead_letter_queue_url: str

    def alerts(self) -> list[dict[str, Any]]:
        """The ViolationEvents published to the alert topic so far (drains the subscribed queue)."""
        return [json.loads(body["Message"]) for body in self._drain(self.alerts_queue_url)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._drain(self.dead_letter_queue_url)

    def alert_bodies(self) -> list[dict[str, Any]]:
        """The SNS notifications as the intake queue receives them (drains the subscribed queue)."""
        return self._drain(self.alerts_queue_url)

    def item(self, device: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(TableName=STATE_TABLE, Key={"device": {"S": device}}, ConsistentRead=True)
        return deserialize_item(response["Item"]) if "Item" in response else None

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def engine_config(account: EngineAccount) -> EngineHandlerEnvironment[str]:
    return EngineHandlerEnvironment(STATE_TABLE, ALERT_TOPIC_ARN, account.dead_letter_queue_url,
                                    service_name="fleetguard-engine")


@pytest.fixture
def engine_account(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> EngineAccount:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**create_engine_state_table_request(STATE_TABLE))
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    sns.create_topic(Name="fleetguard-alerts")
    alerts_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=ALERT_TOPIC_ARN, Protocol="sqs", Endpoint=alerts_arn)
    dead_letters_url = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
    account = EngineAccount(dynamodb, sqs, alerts_url, dead_letters_url)
    for name, value in engine_config(account).to_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(engine_handler, "CACHE", StateCache())
    monkeypatch.setattr(engine_handler, "PROFILE", PROFILE)
    set_clock(monkeypatch, T0)
    return account


def set_clock(monkeypatch: pytest.MonkeyPatch, now_ms: int) -> None:
    monkeypatch.setattr(engine_handler, "CLOCK", lambda: now_ms / 1000)
    monkeypatch.setattr(engine_sweep, "CLOCK", lambda: now_ms / 1000)


# --- Kinesis records ------------------------------------------------------------------------------------


def kinesis_record(payload: dict[str, Any] | bytes, *, key: str, sequence: int) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sequence_number = f"{49_600_000_000_000_000_000 + sequence}"
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": sequence_number,
                    "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1795165500.0},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence_number}", "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-engine", "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
    }


def report_record(device: str, report_id: int, minutes: float, *, sequence: int,
                  tcp_ports: Sequence[int] = (22, 443)) -> dict[str, Any]:
    """A device report (long names) for ``minutes`` after T0, as the rule forwards it."""
    payload = {
        "header": {"report_id": report_id, "version": "1.0"},
        "metrics": {"listening_tcp_ports": {"ports": [{"port": port} for port in tcp_ports]}},
        "fg_kind": "device-report", "fg_device": device, "fg_client": device,
        "fg_received_ms": T0 + int(minutes * MINUTE),
    }
    return kinesis_record(payload, key=device, sequence=sequence)


def auth_failure_record(device: str, minutes: float, *, sequence: int) -> dict[str, Any]:
    """A lifecycle connect failure for authorization (an attempt and an authorization failure)."""
    payload = {"clientId": device, "timestamp": T0 + int(minutes * MINUTE), "eventType": "connect_failed",
               "connectFailureReason": "AUTHORIZATION_FAILED", "ipAddress": "198.51.100.23",
               "fg_kind": "presence", "fg_device": device, "fg_received_ms": T0 + int(minutes * MINUTE)}
    return kinesis_record(payload, key=device, sequence=sequence)


def kinesis_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_sequences(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

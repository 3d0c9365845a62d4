"""Shared builders for the intake and storm tests (this module holds no tests).

Device Defender messages are built in the shape of the shipped samples in tests/events/ (the Device Defender workshop's
real violation), wrapped the way the intake queue delivers them: SQS records whose bodies are SNS
notifications (raw message delivery off).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from functions import intake
from functions.contract import EnvVar, create_notice_table_request
from functions.intake import AwsClients
from settings.facts import IOT_LOG_GROUP

REGION = "us-east-1"
ACCOUNT = "123456789012"
PLAN_ARN = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/fleetguard-device"
TOPIC_NAME = "fleetguard-responders"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC_NAME}"
GROUP = "fleetguard-quarantine"
ACTION = "fleetguard-add-to-quarantine"
LOG_GROUP = IOT_LOG_GROUP
NOTICE_TABLE = "fleetguard-intake-notices"
INTAKE_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:fleetguard-intake"
ALERT_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts"
IMPACT_RULES = {"default": 3, "byProfile": {"fleetguard-dev-critical": 1}, "byConfidence": {"HIGH": 2, "LOW": 4}}
AUDIT_ROUTING = {"incidentChecks": ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "DEVICE_CERTIFICATE_SHARED_CHECK"]}
SEED_TIME_MS = 1573786800000
"""2019-11-15T03:00:00Z, the workshop violation's time."""


def incident_arn(suffix: str) -> str:
    return f"arn:aws:ssm-incidents::{ACCOUNT}:incident-record/fleetguard-device/{suffix}"


def set_intake_env(
    monkeypatch: pytest.MonkeyPatch, *, incident_manager: bool, storm_threshold: int = 50
) -> None:
    values = {
        EnvVar.QUARANTINE_GROUP_NAME: GROUP,
        EnvVar.INCIDENT_MANAGER_ENABLED: "true" if incident_manager else "false",
        EnvVar.RESPONDERS_TOPIC_ARN: TOPIC_ARN,
        EnvVar.IMPACT_RULES: json.dumps(IMPACT_RULES),
        EnvVar.AUDIT_ROUTING: json.dumps(AUDIT_ROUTING),
        EnvVar.IOT_LOG_GROUP: LOG_GROUP,
        EnvVar.STORM_THRESHOLD: str(storm_threshold),
        EnvVar.STORM_WINDOW_SECONDS: "60",
        EnvVar.ADD_TO_QUARANTINE_ACTION_NAME: ACTION,
        EnvVar.POWERTOOLS_SERVICE_NAME: "fleetguard-intake",
        EnvVar.NOTICE_LEDGER_TABLE: NOTICE_TABLE,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    if incident_manager:
        monkeypatch.setenv(EnvVar.RESPONSE_PLAN_ARN, PLAN_ARN)
    else:
        monkeypatch.delenv(EnvVar.RESPONSE_PLAN_ARN, raising=False)


# --- messages ---------------------------------------------------------------------------------------


def violation(
    thing: str,
    *,
    violation_id: str,
    profile: str = "MySecProfile",
    behavior: str = "MessagesPub",
    event_type: str = "in-alarm",
    time_ms: int = SEED_TIME_MS,
) -> dict[str, Any]:
    """A rule-based violation message shaped like the workshop's."""
    message: dict[str, Any] = {
        "violationEventTime": time_ms,
        "thingName": thing,
        "behavior": {
            "criteria": {
                "consecutiveDatapointsToClear": 1,
                "value": {"count": 10},
                "durationSeconds": 300,
                "consecutiveDatapointsToAlarm": 1,
                "comparisonOperator": "less-than",
            },
            "name": behavior,
            "metric": "aws:num-messages-sent",
        },
        "violationEventType": event_type,
        "violationId": violation_id,
        "securityProfileName": profile,
    }
    if event_type != "alarm-invalidated":
        message["metricValue"] = {"count": 54}
    return message


def storm_violations(count: int, *, prefix: str = "fleet", behavior: str = "MessagesPub") -> list[dict[str, Any]]:
    return [violation(f"{prefix}-{index:05d}", violation_id=f"{prefix}v{index:05d}", behavior=behavior)
            for index in range(count)]


def sns_envelope(message: str, *, sns_message_id: str) -> str:
    return json.dumps({
        "Type": "Notification",
        "MessageId": sns_message_id,
        "TopicArn": ALERT_TOPIC_ARN,
        "Message": message,
        "Timestamp": "2026-11-20T08:15:02.114Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
    })


def sqs_record(message: dict[str, Any] | str, *, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    """An intake queue record: the message (JSON-encoded unless already text) in an SNS envelope."""
    text = message if isinstance(message, str) else json.dumps(message)
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}==",
        "body": sns_envelope(text, sns_message_id=f"sns-{message_id}"),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795165502114",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795165502120",
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": INTAKE_QUEUE_ARN,
        "awsRegion": REGION,
    }


def sqs_record_from_sns_event(event: dict[str, Any], *, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    """A shipped SNS-triggered sample as the intake queue delivers it: the Sns object is the envelope."""
    record = sqs_record("", message_id=message_id, receive_count=receive_count)
    record["body"] = json.dumps(event["Records"][0]["Sns"])
    return record


def sqs_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


# --- clients ------------------------------------------------------------------------------------------


@dataclass
class Stubbed:
    """Stubbers for the two clients moto cannot serve: Incident Manager and Device Defender's
    StartDetectMitigationActionsTask. Every call's parameters are asserted (expected_params)."""

    incidents: Stubber
    mitigation: Stubber

    def expect_start_incident(self, params: dict[str, Any], arn: str) -> None:
        self.incidents.add_response("start_incident", {"incidentRecordArn": arn}, params)

    def expect_task(self, task_id: str, violation_ids: Sequence[str], token: str) -> None:
        self.mitigation.add_response(
            "start_detect_mitigation_actions_task",
            {"taskId": task_id},
            {
                "taskId": task_id,
                "target": {"violationIds": list(violation_ids)},
                "actions": [ACTION],
                "includeOnlyActiveViolations": False,
                "clientRequestToken": token,
            },
        )


def use_clients(monkeypatch: pytest.MonkeyPatch, *, incidents: Any = None, mitigation: Any = None) -> None:
    """Point the intake at stubbed clients for Incident Manager and mitigation tasks; the rest stay the
    shared (moto-backed) ones."""
    defaults = AwsClients()
    monkeypatch.setattr(
        intake,
        "CLIENTS",
        AwsClients(
            iot=defaults.iot,
            iot_data=defaults.iot_data,
            mitigation=(lambda: mitigation) if mitigation is not None else defaults.mitigation,
            incidents=(lambda: incidents) if incidents is not None else defaults.incidents,
            sns=defaults.sns,
            dynamodb=defaults.dynamodb,
        ),
    )


@pytest.fixture
def stubbed(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubbed]:
    incidents_client = boto3.client("ssm-incidents", region_name=REGION)
    mitigation_client = boto3.client("iot", region_name=REGION)
    stubs = Stubbed(Stubber(incidents_client), Stubber(mitigation_client))
    use_clients(monkeypatch, incidents=incidents_client, mitigation=mitigation_client)
    with stubs.incidents, stubs.mitigation:
        yield stubs
        stubs.incidents.assert_no_pending_responses()
        stubs.mitigation.assert_no_pending_responses()


# --- logs -----------------------------------------------------------------------------------------------


@dataclass
class LogCapture(logging.Handler):
    """The intake logger's records: message plus the structured keys passed with it."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append({"level": record.levelname, "message": record.getMessage(), **record.__dict__})

    def with_message(self, text: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry["message"] == text]

    def failure_reasons(self) -> dict[str, str]:
        return {entry["record_id"]: entry["reason"] for entry in self.entries if entry["level"] == "ERROR"}

    __hash__ = logging.Handler.__hash__


@pytest.fixture
def intake_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    underlying = logging.getLogger(intake.logger.name)
    underlying.addHandler(capture)
    yield capture
    underlying.removeHandler(capture)


# --- moto: the responders topic, read through a subscribed queue ------------------------------------


@dataclass
class Responders:
    """The responders topic in moto, with an SQS queue subscribed to read what was published."""

    sqs: Any
    queue_url: str

    def notices(self) -> list[dict[str, str]]:
        """Subject and Message of everything published so far (drains the queue)."""
        received: list[dict[str, str]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                body = json.loads(message["Body"])
                received.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def create_notice_table() -> None:
    """The notice ledger table in moto."""
    boto3.client("dynamodb", region_name=REGION).create_table(**create_notice_table_request(NOTICE_TABLE))


@pytest.fixture
def responders(moto_aws: None) -> Responders:
    create_notice_table()
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    assert topic_arn == TOPIC_ARN
    queue_url = sqs.create_queue(QueueName="responders-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Responders(sqs, queue_url)

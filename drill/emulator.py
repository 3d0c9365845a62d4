"""The emulator: moto's server in process on loopback, the drill's own clients, and the fleet and plumbing
the drill builds in it (things, groups, the quarantine group and its policy, shadows, topics, queues and
the notice table)."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import boto3  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from components.quarantine import quarantine_policy_document
from drill.scenario import (
    ACCOUNT_ID,
    ALERT_TOPIC,
    DEAD_LETTER_QUEUE,
    FORENSIC_TOPIC_PREFIX,
    INTAKE_QUEUE,
    NOTICE_TABLE,
    QUARANTINE_GROUP,
    QUARANTINE_POLICY,
    REGION,
    RESPONDERS_INBOX,
    RESPONDERS_TOPIC,
    Scenario,
)
from functions.aws_clients import Client
from functions.contract import create_notice_table_request

EMULATOR_HOST: Final = "127.0.0.1"
SQS_RECEIVE_MAX: Final = 10
"""ReceiveMessage returns at most 10 messages; the event source mapping polls until its batch is full."""


@contextmanager
def emulator() -> Iterator[str]:
    """moto's server on a free loopback port, with empty state; yields its URL. Always stopped."""
    # Werkzeug logs every request at INFO; the timeline is the drill's output.
    werkzeug_logger = logging.getLogger("werkzeug")
    werkzeug_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=EMULATOR_HOST, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # The server shares moto's in-process state; start from nothing and leave nothing behind.
        _reset(url)
        try:
            yield url
        finally:
            _reset(url)
    finally:
        server.stop()
        werkzeug_logger.setLevel(werkzeug_level)


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@dataclass(frozen=True)
class Clients:
    """The drill's own clients (setup, publishing, verification), separate from the handlers'."""

    iot: Client
    iot_data: Client
    sns: Client
    sqs: Client
    dynamodb: Client

    @classmethod
    def for_emulator(cls, url: str) -> Clients:
        session = boto3.session.Session(
            aws_access_key_id="drill", aws_secret_access_key="drill", region_name=REGION
        )
        return cls(*(session.client(name, endpoint_url=url) for name in ("iot", "iot-data", "sns", "sqs", "dynamodb")))


# --- fleet and plumbing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plumbing:
    alert_topic_arn: str
    responders_topic_arn: str
    intake_queue_url: str
    intake_queue_arn: str
    dead_letter_queue_url: str
    responders_inbox_url: str
    quarantine_group_arn: str


def build_fleet(clients: Clients, scenario: Scenario) -> Plumbing:
    """Things, groups, the quarantine group and its policy, shadows, topics and queues."""
    iot, sqs, sns = clients.iot, clients.sqs, clients.sns
    groups = sorted({group for device in scenario.devices for group in device.groups})
    for group in groups:
        iot.create_thing_group(thingGroupName=group)
    quarantine_arn: str = iot.create_thing_group(
        thingGroupName=QUARANTINE_GROUP,
        thingGroupProperties={"thingGroupDescription": "fleetguard drill: devices under investigation"},
    )["thingGroupArn"]
    iot.create_policy(
        policyName=QUARANTINE_POLICY,
        policyDocument=quarantine_policy_document(f"arn:aws:iot:{REGION}:{ACCOUNT_ID}", FORENSIC_TOPIC_PREFIX),
    )
    iot.attach_policy(policyName=QUARANTINE_POLICY, target=quarantine_arn)
    for device in scenario.devices:
        iot.create_thing(thingName=device.name)
        for group in device.groups:
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.name)
        clients.iot_data.update_thing_shadow(
            thingName=device.name, payload=json.dumps({"state": {"desired": dict(device.desired)}}).encode()
        )

    dead_letter_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
    intake_url = sqs.create_queue(
        QueueName=INTAKE_QUEUE,
        Attributes={
            "VisibilityTimeout": str(scenario.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps({
                "deadLetterTargetArn": _queue_arn(sqs, dead_letter_url),
                "maxReceiveCount": scenario.max_receive_count,
            }),
        },
    )["QueueUrl"]
    inbox_url = sqs.create_queue(QueueName=RESPONDERS_INBOX)["QueueUrl"]
    alert_topic = sns.create_topic(Name=ALERT_TOPIC)["TopicArn"]
    responders_topic = sns.create_topic(Name=RESPONDERS_TOPIC)["TopicArn"]
    # Raw delivery stays off on both: the intake reads the SNS envelope, the inbox keeps the subject.
    sns.subscribe(TopicArn=alert_topic, Protocol="sqs", Endpoint=_queue_arn(sqs, intake_url))
    sns.subscribe(TopicArn=responders_topic, Protocol="sqs", Endpoint=_queue_arn(sqs, inbox_url))
    clients.dynamodb.create_table(**create_notice_table_request(NOTICE_TABLE))
    return Plumbing(
        alert_topic_arn=alert_topic,
        responders_topic_arn=responders_topic,
        intake_queue_url=intake_url,
        intake_queue_arn=_queue_arn(sqs, intake_url),
        dead_letter_queue_url=dead_letter_url,
        responders_inbox_url=inbox_url,
        quarantine_group_arn=quarantine_arn,
    )


def _queue_arn(sqs: Client, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def queue_counts(sqs: Client, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def quarantined(clients: Clients) -> frozenset[str]:
    names: set[str] = set()
    for page in clients.iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=QUARANTINE_GROUP):
        names.update(page["things"])
    return frozenset(names)


def drain_queue(sqs: Client, url: str) -> list[str]:
    """Every message body of a queue, read once (kept in flight so none is read twice)."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=SQS_RECEIVE_MAX, VisibilityTimeout=300, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(message["Body"] for message in messages)

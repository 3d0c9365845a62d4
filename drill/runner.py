"""Run the incident-response drill against moto's server, in process, on loopback.

The handlers run unchanged: their clients come from ``functions.aws_clients``, pointed at the emulator
with ``AWS_ENDPOINT_URL`` (botocore's own setting). The IoT data endpoint is the one exception: the
factory accepts only ``https://`` data endpoints and the emulator speaks plain HTTP, so for the drill's
duration ``aws_clients.data_endpoint_url`` answers with the emulator's URL. Incident Manager, which the
emulator lacks, is switched off: the intake then takes its documented fallback path (contain the device
itself and notify the responders topic). Device Defender's StartDetectMitigationActionsTask, which the
emulator lacks too, is answered by a botocore Stubber with the parameters the storm must produce, given
to the intake through its ``CLIENTS.mitigation`` seam; the emulator cannot run the task, so storm devices
are reported as handed to Device Defender, not as contained.

The consumer loop plays the Lambda event source mapping: it receives up to ``batch_size`` records,
invokes the intake with the SQS event Lambda would build, deletes exactly the records the intake did
not report in ``batchItemFailures`` and leaves the others to become visible again after the queue's
visibility timeout, so the emulator's redrive policy moves them to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final, TextIO

import boto3  # type: ignore[import-untyped]
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from components.quarantine import quarantine_policy_document
from drill.fleet import (
    ACCOUNT_ID,
    FORENSIC_TOPIC_PREFIX,
    QUARANTINE_GROUP,
    REGION,
    Alert,
    Expectations,
    Scenario,
    default_scenario,
)
from functions import aws_clients, contain, intake, release, storm
from functions.aws_clients import Client
from functions.containment import QUARANTINE_KEY, QUARANTINE_SHADOW_KEYS
from functions.contract import (
    IGNORED_OUTCOMES,
    EnvVar,
    IntakeEnvironment,
    Outcome,
    OutputKey,
    RecordOutcome,
    Status,
    create_notice_table_request,
)

EMULATOR_HOST: Final = "127.0.0.1"
FUNCTION_ARN_PREFIX: Final = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
ALERT_TOPIC: Final = "fleetguard-drill-alerts"
RESPONDERS_TOPIC: Final = "fleetguard-drill-responders"
INTAKE_QUEUE: Final = "fleetguard-drill-intake"
DEAD_LETTER_QUEUE: Final = "fleetguard-drill-intake-dlq"
RESPONDERS_INBOX: Final = "fleetguard-drill-responders-inbox"
NOTICE_TABLE: Final = "fleetguard-drill-notices"
QUARANTINE_POLICY: Final = "fleetguard-drill-quarantine"
MITIGATION_ACTION: Final = "fleetguard-drill-add-things"
IOT_LOG_GROUP: Final = "AWSIotLogsV2"
SQS_RECEIVE_MAX: Final = 10
"""ReceiveMessage returns at most 10 messages; the event source mapping polls until its batch is full."""
MITIGATION_TASK_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
"""StartDetectMitigationActionsTask's taskId (iot service model, MitigationActionsTaskId)."""
VISIBILITY_MARGIN_SECONDS: Final = 0.05

# Variables the drill sets or clears; everything else in the environment is left alone and all of these
# are restored afterwards, so an in-process run (the test) leaves no trace.
_CLEARED_ENV: Final = (
    "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_IOT_DATA", "AWS_ENDPOINT_URL_SSM_INCIDENTS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    EnvVar.IOT_DATA_ENDPOINT, EnvVar.RESPONSE_PLAN_ARN,
)


class DrillError(Exception):
    """The drill could not run to the end (the emulator or a handler broke); the text says where."""


# --- clock and timeline -----------------------------------------------------------------------------------


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str]] = field(default_factory=list)

    def now_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def add(self, text: str, at_ms: float | None = None) -> None:
        self.entries.append((self.now_ms() if at_ms is None else at_ms, text))


# --- the emulator -----------------------------------------------------------------------------------------


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


def _queue_counts(sqs: Client, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


# --- the handlers' environment ------------------------------------------------------------------------------


def handler_environment(url: str, scenario: Scenario, plumbing: Plumbing) -> dict[str, str]:
    """The handlers' environment as the stack would set it, with Incident Manager off (the emulator has
    none), plus credentials and the emulator's endpoint."""
    contract = IntakeEnvironment(
        quarantine_group_name=QUARANTINE_GROUP,
        incident_manager_enabled=False,
        response_plan_arn=None,
        responders_topic_arn=plumbing.responders_topic_arn,
        impact_rules=json.dumps({"default": 3, "byConfidence": {"HIGH": 2, "MEDIUM": 3, "LOW": 4}}),
        audit_routing=json.dumps({"incidentChecks": ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]}),
        iot_log_group=IOT_LOG_GROUP,
        storm_threshold=scenario.storm_threshold,
        add_to_quarantine_action_name=MITIGATION_ACTION,
        notice_ledger_table=NOTICE_TABLE,
        storm_window_seconds=0,
        retry_mode="standard",
    )
    return {
        "AWS_ACCESS_KEY_ID": "drill",
        "AWS_SECRET_ACCESS_KEY": "drill",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url,
        **contract.to_environment(),
        EnvVar.POWERTOOLS_LOG_LEVEL.value: "INFO",
    }


@contextmanager
def handlers_pointed_at(url: str, environment: Mapping[str, str]) -> Iterator[None]:
    """Set the handlers' environment and point ``functions.aws_clients`` at the emulator; undo both."""
    saved = {name: os.environ.get(name) for name in (*environment, *_CLEARED_ENV)}
    original_data_endpoint = aws_clients.data_endpoint_url
    for name in _CLEARED_ENV:
        os.environ.pop(name, None)
    os.environ.update(environment)
    aws_clients.data_endpoint_url = lambda: url
    # Cached clients of an earlier run (or of tests) point elsewhere.
    aws_clients.client.cache_clear()
    aws_clients.iot_data.cache_clear()
    try:
        yield
    finally:
        aws_clients.client.cache_clear()
        aws_clients.iot_data.cache_clear()
        aws_clients.data_endpoint_url = original_data_endpoint
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def lambda_context(function_name: str, request_id: str) -> LambdaContext:
    """A Lambda context as the runtime passes it: Powertools and the intake read these attributes."""
    context = LambdaContext()
    # Powertools' context type declares its state as these attributes, read through properties.
    context._function_name = function_name
    context._function_version = "$LATEST"
    context._invoked_function_arn = FUNCTION_ARN_PREFIX + function_name
    context._memory_limit_in_mb = 256
    context._aws_request_id = request_id
    context._log_group_name = f"/aws/lambda/{function_name}"
    context._log_stream_name = "drill"
    return context


@contextmanager
def mitigation_stand_in(url: str, scenario: Scenario, requests: list[MitigationTask]) -> Iterator[None]:
    """Answer the intake's StartDetectMitigationActionsTask calls (the emulator has no Device Defender)
    with a Stubber that expects exactly the scenario's tasks; every request is recorded in ``requests``."""
    alerts = scenario.alerts
    client = Clients.for_emulator(url).iot
    stubber = Stubber(client)
    for labels in scenario.expectations.mitigation_tasks:
        violation_ids = sorted(json.loads(alerts[label].message)["violationId"] for label in labels)
        stubber.add_response(
            "start_detect_mitigation_actions_task",
            {"taskId": storm.task_id(violation_ids)},
            expected_params={
                # The intake's idempotency scheme is its own; the API bounds are checked afterwards.
                "taskId": ANY,
                "clientRequestToken": ANY,
                "target": {"violationIds": violation_ids},
                "actions": [MITIGATION_ACTION],
                "includeOnlyActiveViolations": False,
            },
        )

    def record(params: Mapping[str, Any], **_: Any) -> None:
        requests.append(MitigationTask(
            str(params.get("taskId")),
            tuple(params.get("target", {}).get("violationIds", ())),
            tuple(params.get("actions", ())),
        ))

    client.meta.events.register("before-parameter-build.iot.StartDetectMitigationActionsTask", record)
    original = intake.CLIENTS
    intake.CLIENTS = replace(original, mitigation=lambda: client)
    try:
        with stubber:
            yield
    finally:
        intake.CLIENTS = original


@dataclass(frozen=True)
class HandlerLog:
    at_ms: float
    message: str
    fields: Mapping[str, Any]


# What every log record carries; the rest are the keys the handler logged (Powertools passes them as extra).
_STANDARD_RECORD_KEYS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime",
}


class _LogSink(logging.Handler):
    """Keeps the handlers' structured log records, stamped with the drill clock."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline
        self.records: list[HandlerLog] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {key: value for key, value in record.__dict__.items() if key not in _STANDARD_RECORD_KEYS}
        self.records.append(HandlerLog(self.timeline.now_ms(), record.getMessage(), fields))


@contextmanager
def captured_logs(logger_names: Sequence[str], sink: _LogSink) -> Iterator[None]:
    """Route the handlers' logs to ``sink`` instead of stdout (the timeline reports them)."""
    loggers = [logging.getLogger(name) for name in dict.fromkeys(logger_names)]
    saved_levels = [(logger, logger.level) for logger in loggers]
    saved_handler_levels = [(handler, handler.level) for logger in loggers for handler in logger.handlers]
    for handler, _ in saved_handler_levels:
        handler.setLevel(logging.CRITICAL + 1)
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(sink)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(sink)
        for logger, level in saved_levels:
            logger.setLevel(level)
        for handler, level in saved_handler_levels:
            handler.setLevel(level)


# --- the drill -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Containment:
    took_ms: float
    """Intake: from the alert's publication to confirmed containment. Contain function: the call."""
    by: str


@dataclass(frozen=True)
class MitigationTask:
    task_id: str
    violation_ids: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass
class Observed:
    """What happened, as the handlers reported it and the emulator's state shows it."""

    contained: dict[str, Containment] = field(default_factory=dict)
    """Thing -> how and how fast it was first contained."""
    bulk_contained: dict[str, str] = field(default_factory=dict)
    """Storm device -> the intake's outcome for its alert."""
    mitigation_tasks: list[MitigationTask] = field(default_factory=list)
    """StartDetectMitigationActionsTask requests the intake made, in order."""
    quarantined_before_releases: frozenset[str] = frozenset()
    """Quarantine group members once the waves and operator containments were handled."""
    released: dict[str, float] = field(default_factory=dict)
    """Thing -> ms the release function took to release a thing that was in the quarantine group."""
    quarantined_at_end: frozenset[str] = frozenset()
    ignored: dict[str, str] = field(default_factory=dict)
    """Alert label -> the intake's outcome and reason for doing nothing."""
    failures: dict[str, list[str]] = field(default_factory=dict)
    """Alert label -> the intake's failure reason per delivery."""
    dead_lettered: list[str] = field(default_factory=list)
    """Alert labels found in the dead-letter queue."""
    notifications: list[str] = field(default_factory=list)
    """Subjects of the responders notifications."""
    shadows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Thing -> desired state at the end."""
    left_in_intake_queue: int = 0
    quarantine_policy_attached: bool = False


@dataclass
class DrillReport:
    scenario: Scenario
    observed: Observed
    timeline: Timeline
    emulator_url: str
    failures: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


@dataclass
class _Run:
    scenario: Scenario
    clients: Clients
    plumbing: Plumbing
    timeline: Timeline
    logs: _LogSink
    observed: Observed = field(default_factory=Observed)
    published_at: dict[str, float] = field(default_factory=dict)
    labels_by_message: dict[str, Alert] = field(default_factory=dict)
    invocations: int = 0

    def alert_of_body(self, body: str) -> Alert | None:
        """The scenario alert an SQS body (an SNS notification) carries."""
        try:
            message = json.loads(body).get("Message")
        except (ValueError, AttributeError):
            return None
        return self.labels_by_message.get(message) if isinstance(message, str) else None


def run_drill(scenario: Scenario | None = None, out: TextIO | None = None) -> DrillReport:
    """Run the scenario (the default fleet when None) and print the timeline and summary to ``out``
    (stdout when None). The report's exit code is non-zero when an expectation failed."""
    scenario = scenario or default_scenario()
    stream = out if out is not None else sys.stdout
    timeline = Timeline()
    with emulator() as url:
        timeline.add(f"emulator up: moto server at {url}")
        clients = Clients.for_emulator(url)
        plumbing = build_fleet(clients, scenario)
        groups = {group for device in scenario.devices for group in device.groups}
        timeline.add(
            f"fleet ready: {len(scenario.devices)} things in {len(groups)} groups with shadows, quarantine group "
            f"{QUARANTINE_GROUP} with IoT policy {QUARANTINE_POLICY}, alert topic -> intake queue (dead-letter "
            f"after {scenario.max_receive_count} receives), responders topic -> inbox queue"
        )
        sink = _LogSink(timeline)
        run = _Run(scenario, clients, plumbing, timeline, sink)
        run.labels_by_message = {alert.message: alert for wave in scenario.waves for alert in wave.alerts}
        with (
            handlers_pointed_at(url, handler_environment(url, scenario, plumbing)),
            captured_logs([intake.logger.name, contain.logger.name, release.logger.name], sink),
            mitigation_stand_in(url, scenario, run.observed.mitigation_tasks),
        ):
            for number, wave in enumerate(scenario.waves, start=1):
                _publish_wave(run, number, wave.name, wave.alerts)
                _drain_intake(run)
            _operator_contains(run)
            run.observed.quarantined_before_releases = _quarantined(clients)
            timeline.add(
                "quarantine group before releases: "
                + (", ".join(sorted(run.observed.quarantined_before_releases)) or "empty")
            )
            _release_devices(run)
        _observe_state(run)
        timeline.add("emulator state read back; checking expectations")
    failures = check_expectations(run.observed, scenario)
    report = DrillReport(scenario, run.observed, timeline, url, failures)
    stream.write(render(report))
    stream.flush()
    return report


def _publish_wave(run: _Run, number: int, name: str, alerts: Sequence[Alert]) -> None:
    run.timeline.add(f"wave {number} ({name}): publishing {len(alerts)} alert(s) to the alert topic")
    for alert in alerts:
        run.clients.sns.publish(TopicArn=run.plumbing.alert_topic_arn, Message=alert.message)
        run.published_at[alert.label] = run.timeline.now_ms()
        subject = f" for {alert.thing_name}" if alert.thing_name else ""
        run.timeline.add(f"  published {alert.label}: {alert.kind}{subject}")


def _drain_intake(run: _Run) -> None:
    """Invoke the intake until its queue is empty; failed records come back after the visibility timeout
    until the redrive policy moves them to the dead-letter queue."""
    sqs, scenario, plumbing = run.clients.sqs, run.scenario, run.plumbing
    # A failed record is received max_receive_count times, then redriven by the receive after that.
    waits_left = scenario.max_receive_count + 1
    while True:
        dead_before, _ = _queue_counts(sqs, plumbing.dead_letter_queue_url)
        batch = _receive_batch(run)
        dead_after, _ = _queue_counts(sqs, plumbing.dead_letter_queue_url)
        if dead_after > dead_before:
            run.timeline.add(
                f"  redrive: {dead_after - dead_before} record(s) moved to the dead-letter queue after "
                f"{scenario.max_receive_count} receives"
            )
        if batch:
            _invoke_intake(run, batch)
            continue
        visible, in_flight = _queue_counts(sqs, plumbing.intake_queue_url)
        if visible == 0 and in_flight == 0:
            return
        if waits_left == 0:
            raise DrillError(
                f"intake queue {INTAKE_QUEUE} still holds {visible + in_flight} record(s) after "
                f"{scenario.max_receive_count + 1} visibility timeouts; the redrive policy did not empty it"
            )
        waits_left -= 1
        run.timeline.add(
            f"  {in_flight} failed record(s) in flight; waiting {scenario.visibility_timeout_seconds} s "
            "for the visibility timeout"
        )
        time.sleep(scenario.visibility_timeout_seconds + VISIBILITY_MARGIN_SECONDS)


def _receive_batch(run: _Run) -> list[dict[str, Any]]:
    """Up to batch_size visible records, as the event source mapping collects them."""
    messages: list[dict[str, Any]] = []
    while len(messages) < run.scenario.batch_size:
        received = run.clients.sqs.receive_message(
            QueueUrl=run.plumbing.intake_queue_url,
            MaxNumberOfMessages=min(SQS_RECEIVE_MAX, run.scenario.batch_size - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            break
        messages.extend(received)
    return messages


def _lambda_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda builds from an SQS message for an SQS-triggered function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: attributes[name]
            for name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if name in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _invoke_intake(run: _Run, messages: Sequence[Mapping[str, Any]]) -> None:
    run.invocations += 1
    batch_ids = {message["MessageId"] for message in messages}
    alerts = {message["MessageId"]: run.alert_of_body(message["Body"]) for message in messages}
    event = {"Records": [_lambda_record(message, run.plumbing.intake_queue_arn) for message in messages]}
    context = lambda_context("fleetguard-drill-intake", f"00000000-0000-4000-8000-{run.invocations:012d}")
    first_log = len(run.logs.records)
    started = run.timeline.now_ms()
    try:
        response = intake.handler(event, context)
    except Exception as error:  # as Lambda does: the whole batch returns to the queue
        run.timeline.add(
            f"intake invocation {run.invocations}: {len(messages)} record(s); the invocation raised "
            f"{type(error).__name__}: {error}; every record will be retried",
            at_ms=started,
        )
        for alert in alerts.values():
            label = alert.label if alert is not None else "unknown record"
            run.observed.failures.setdefault(label, []).append(f"invocation failed: {error}")
        return
    failed = _failed_ids(response, batch_ids)
    run.timeline.add(
        f"intake invocation {run.invocations}: {len(messages)} record(s), {len(messages) - len(failed)} handled, "
        f"{len(failed)} reported failed",
        at_ms=started,
    )
    logs = run.logs.records[first_log:]
    for log in logs:
        _record_outcome(run, log, alerts, logs)
    handled = [message for message in messages if message["MessageId"] not in failed]
    for start in range(0, len(handled), SQS_RECEIVE_MAX):
        chunk = handled[start : start + SQS_RECEIVE_MAX]
        result = run.clients.sqs.delete_message_batch(
            QueueUrl=run.plumbing.intake_queue_url,
            Entries=[{"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                     for number, message in enumerate(chunk)],
        )
        if result.get("Failed"):
            raise DrillError(f"deleting handled records from {INTAKE_QUEUE} failed: {result['Failed']}")


def _failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """The batchItemFailures of the intake's response, checked against the batch."""
    if not isinstance(response, Mapping) or not isinstance(response.get("batchItemFailures"), list):
        raise DrillError(f"intake response: expected {{'batchItemFailures': [...]}}, got {response!r}")
    failed = set()
    for index, failure in enumerate(response["batchItemFailures"]):
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if identifier not in batch_ids:
            raise DrillError(
                f"intake response.batchItemFailures[{index}].itemIdentifier: expected a message id of the batch, "
                f"got {identifier!r}"
            )
        failed.add(identifier)
    return failed


def _record_outcome(
    run: _Run, log: HandlerLog, alerts: Mapping[str, Alert | None], invocation_logs: Sequence[HandlerLog]
) -> None:
    """Turn the intake's per-record log ("record handled" / "record failed") into timeline and tallies."""
    record_id = log.fields.get("record_id")
    if not isinstance(record_id, str) or record_id not in alerts:
        return
    alert = alerts[record_id]
    label = alert.label if alert is not None else f"unknown record {record_id}"
    thing = f" {alert.thing_name}" if alert is not None and alert.thing_name else ""
    outcome = log.fields.get("outcome")
    if isinstance(outcome, str):
        run.timeline.add(f"  {label}:{thing} {outcome}", at_ms=log.at_ms)
        if alert is None:
            return
        kind = RecordOutcome.parse(outcome).kind
        if kind is Outcome.CONTAINED and alert.thing_name and alert.thing_name not in run.observed.contained:
            took = log.at_ms - run.published_at[alert.label]
            run.observed.contained[alert.thing_name] = Containment(took, "intake")
        if kind is Outcome.STORM_MEMBER and alert.thing_name:
            run.observed.bulk_contained[alert.thing_name] = outcome
        if kind in IGNORED_OUTCOMES:
            run.observed.ignored[label] = _ignore_reason(alert, outcome, invocation_logs)
        return
    reason = str(log.fields.get("reason", log.message))
    receive = log.fields.get("receive_count", "?")
    run.timeline.add(f"  {label}:{thing} FAILED (delivery {receive}): {reason}", at_ms=log.at_ms)
    run.observed.failures.setdefault(label, []).append(reason)


def _ignore_reason(alert: Alert, outcome: str, invocation_logs: Sequence[HandlerLog]) -> str:
    """The outcome, with what the intake logged about the alert's violation (same id and event type) or
    audit task in the same invocation."""
    message = json.loads(alert.message)
    identity = {
        "violation_id": message.get("violationId"),
        "event_type": message.get("violationEventType"),
        "task_id": message.get("taskId"),
    }
    for log in invocation_logs:
        matched = [key for key, value in identity.items() if value is not None and key in log.fields]
        if matched and all(log.fields[key] == identity[key] for key in matched):
            return f"{outcome} ({log.message})"
    return outcome


def _operator_contains(run: _Run) -> None:
    for number, planned in enumerate(run.scenario.operator_contains, start=1):
        context = lambda_context("fleetguard-drill-contain", f"00000000-0000-4000-a000-{number:012d}")
        already = planned.thing_name in _quarantined(run.clients)
        started = run.timeline.now_ms()
        result = contain.handler({"thingName": planned.thing_name, "reason": planned.reason}, context)
        took = run.timeline.now_ms() - started
        status = result.get(OutputKey.STATUS)
        newly = status == Status.CONTAINED and not already
        if newly and planned.thing_name not in run.observed.contained:
            run.observed.contained[planned.thing_name] = Containment(took, "contain function")
        run.timeline.add(
            f"contain function: {planned.thing_name} {status} (already contained: {already}) "
            f"in {took:.0f} ms; reason: {planned.reason}",
            at_ms=started,
        )


def _release_devices(run: _Run) -> None:
    for number, planned in enumerate(run.scenario.releases, start=1):
        context = lambda_context("fleetguard-drill-release", f"00000000-0000-4000-9000-{number:012d}")
        was_quarantined = planned.thing_name in run.observed.quarantined_before_releases
        started = run.timeline.now_ms()
        result = release.handler({"thingName": planned.thing_name, "reason": planned.reason}, context)
        took = run.timeline.now_ms() - started
        status = result.get(OutputKey.STATUS)
        if status == Status.RELEASED and was_quarantined:
            run.observed.released[planned.thing_name] = took
        run.timeline.add(
            f"release function: {planned.thing_name} {status} "
            f"(was quarantined: {was_quarantined}) in {took:.0f} ms; reason: {planned.reason}",
            at_ms=started,
        )


def _quarantined(clients: Clients) -> frozenset[str]:
    names: set[str] = set()
    for page in clients.iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=QUARANTINE_GROUP):
        names.update(page["things"])
    return frozenset(names)


def _observe_state(run: _Run) -> None:
    clients, plumbing, observed = run.clients, run.plumbing, run.observed
    observed.quarantined_at_end = _quarantined(clients)
    for device in run.scenario.devices:
        document = json.loads(clients.iot_data.get_thing_shadow(thingName=device.name)["payload"].read())
        observed.shadows[device.name] = dict(document.get("state", {}).get("desired", {}))
    for body in _drain_queue(clients.sqs, plumbing.dead_letter_queue_url):
        alert = run.alert_of_body(body)
        observed.dead_lettered.append(alert.label if alert is not None else f"unknown message {body[:80]!r}")
    for body in _drain_queue(clients.sqs, plumbing.responders_inbox_url):
        observed.notifications.append(str(json.loads(body).get("Subject")))
    visible, in_flight = _queue_counts(clients.sqs, plumbing.intake_queue_url)
    observed.left_in_intake_queue = visible + in_flight
    attached = clients.iot.list_attached_policies(target=plumbing.quarantine_group_arn)["policies"]
    observed.quarantine_policy_attached = any(policy["policyName"] == QUARANTINE_POLICY for policy in attached)


def _drain_queue(sqs: Client, url: str) -> list[str]:
    """Every message body of a queue, read once (kept in flight so none is read twice)."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=SQS_RECEIVE_MAX, VisibilityTimeout=300, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(message["Body"] for message in messages)


# --- expectations -------------------------------------------------------------------------------------------


def check_expectations(observed: Observed, scenario: Scenario) -> list[str]:
    """Every way the observation differs from the scenario's expectations, as readable sentences."""
    return [
        *_check_outcomes(observed, scenario.expectations),
        *_check_mitigation_tasks(observed, scenario),
        *_check_notifications(observed, scenario.expectations),
        *_check_state(observed, scenario),
    ]


def _check_outcomes(observed: Observed, expected: Expectations) -> list[str]:
    failures: list[str] = []

    def same(what: str, actual: Iterable[str], wanted: frozenset[str]) -> None:
        if set(actual) != wanted:
            failures.append(f"{what}: expected {_names(wanted)}, got {_names(actual)}")

    same("contained", observed.contained, expected.contained)
    same("in the quarantine group before releases", observed.quarantined_before_releases, expected.contained)
    same("storm devices handed to Device Defender", observed.bulk_contained, expected.bulk_contained)
    same("released", observed.released, expected.released)
    same("in the quarantine group at the end", observed.quarantined_at_end, expected.quarantined_at_end)
    same("ignored alerts", observed.ignored, frozenset(expected.ignored))
    for label, phrase in expected.ignored.items():
        reason = observed.ignored.get(label)
        if reason is not None and phrase not in reason:
            failures.append(f"ignored alert {label}: expected the reason to mention {phrase!r}, got {reason!r}")
    if len(observed.dead_lettered) != len(set(observed.dead_lettered)):
        failures.append(f"dead-letter queue: an alert is there more than once: {sorted(observed.dead_lettered)}")
    same("dead-lettered alerts", observed.dead_lettered, expected.dead_lettered)
    unexplained = sorted(set(observed.failures) - expected.dead_lettered)
    if unexplained:
        failures.append(f"records failed that were not expected to: {', '.join(unexplained)}")
    return failures


def _check_mitigation_tasks(observed: Observed, scenario: Scenario) -> list[str]:
    alerts = scenario.alerts
    wanted = [
        sorted(json.loads(alerts[label].message)["violationId"] for label in labels)
        for labels in scenario.expectations.mitigation_tasks
    ]
    made = [sorted(task.violation_ids) for task in observed.mitigation_tasks]
    failures = []
    if made != wanted:
        failures.append(f"Device Defender mitigation tasks: expected tasks for violations {wanted}, got {made}")
    failures += [
        f"mitigation task id {task.task_id!r}: expected {MITIGATION_TASK_ID_PATTERN.pattern}"
        for task in observed.mitigation_tasks
        if not MITIGATION_TASK_ID_PATTERN.fullmatch(task.task_id)
    ]
    return failures


def _check_notifications(observed: Observed, expected: Expectations) -> list[str]:
    failures = [
        f"responders notification: none with {phrase!r} in its subject ({why})"
        for phrase, why in expected.notified.items()
        if not any(phrase in subject for subject in observed.notifications)
    ]
    if len(observed.notifications) != expected.notification_count:
        failures.append(
            f"responders notifications: expected {expected.notification_count}, got {len(observed.notifications)}: "
            + "; ".join(observed.notifications)
        )
    return failures


def _check_state(observed: Observed, scenario: Scenario) -> list[str]:
    failures: list[str] = []
    if observed.left_in_intake_queue:
        failures.append(f"intake queue: {observed.left_in_intake_queue} record(s) left; expected it empty")
    if not observed.quarantine_policy_attached:
        failures.append(f"quarantine group: policy {QUARANTINE_POLICY} is not attached")
    for device in scenario.devices:
        desired = observed.shadows.get(device.name, {})
        changed = {key: desired.get(key) for key, value in device.desired.items() if desired.get(key) != value}
        if changed:
            failures.append(f"shadow of {device.name}: desired keys the drill set were changed: {changed}")
        present = sorted(key for key in QUARANTINE_SHADOW_KEYS if key in desired)
        if device.name in scenario.expectations.quarantined_at_end:
            if desired.get(QUARANTINE_KEY) is not True:
                failures.append(f"shadow of {device.name}: expected desired.{QUARANTINE_KEY}=true, got {desired}")
        elif present:
            failures.append(f"shadow of {device.name}: quarantine keys {', '.join(present)} present, but the device "
                            "is not quarantined")
    return failures


def _names(names: Iterable[str]) -> str:
    ordered = sorted(names)
    return f"{len(ordered)} [{', '.join(ordered)}]"


# --- report -------------------------------------------------------------------------------------------------


def render(report: DrillReport) -> str:
    observed, scenario = report.observed, report.scenario
    lines = [
        "fleetguard drill: incident-response game day on an embedded AWS emulator",
        f"emulator: moto server at {report.emulator_url} (account {ACCOUNT_ID}, {REGION})",
        "Incident Manager: not in the emulator; the intake runs its fallback path "
        "(contain the device itself, notify the responders topic)",
        "Device Defender mitigation tasks: not in the emulator; a stub checks and answers the intake's requests",
        "",
        "Timeline (ms since start)",
    ]
    lines += [f"{at:8.0f}  {text}" for at, text in sorted(report.timeline.entries, key=lambda entry: entry[0])]
    lines += ["", "Summary"]
    lines.append(f"  contained ({len(observed.contained)}):")
    lines += [
        f"    {thing}: {containment.took_ms:.0f} ms by the {containment.by}"
        for thing, containment in observed.contained.items()
    ]
    lines.append(f"  storm devices handed to Device Defender ({len(observed.bulk_contained)}): "
                 + (", ".join(sorted(observed.bulk_contained)) or "none")
                 + "  (the emulator cannot run the task: they stay outside the quarantine group)")
    lines += [
        f"    mitigation task {task.task_id}: {len(task.violation_ids)} violation(s), actions {', '.join(task.actions)}"
        for task in observed.mitigation_tasks
    ]
    lines.append(f"  released ({len(observed.released)}): " + (", ".join(
        f"{thing} in {ms:.0f} ms" for thing, ms in observed.released.items()
    ) or "none"))
    lines.append(f"  still quarantined ({len(observed.quarantined_at_end)}): "
                 + (", ".join(sorted(observed.quarantined_at_end)) or "none"))
    lines.append(f"  ignored ({len(observed.ignored)}):")
    alerts = scenario.alerts
    lines += [
        f"    {_describe(alerts.get(label), label)}: {reason}" for label, reason in sorted(observed.ignored.items())
    ]
    lines.append(f"  dead-lettered ({len(observed.dead_lettered)}):")
    lines += [
        f"    {_describe(alerts.get(label), label)}: {observed.failures.get(label, ['no failure logged'])[-1]}"
        for label in sorted(observed.dead_lettered)
    ]
    lines.append(f"  responders notifications ({len(observed.notifications)}):")
    lines += [f"    {subject}" for subject in observed.notifications]
    lines.append("")
    if report.failures:
        lines.append(f"EXPECTATIONS FAILED ({len(report.failures)}):")
        lines += [f"  - {failure}" for failure in report.failures]
    else:
        lines.append(f"All expectations met ({len(alerts)} alerts, {len(scenario.devices)} devices).")
    return "\n".join(lines) + "\n"


def _describe(alert: Alert | None, label: str) -> str:
    return f"{label} [{alert.thing_name}]" if alert is not None and alert.thing_name else label


def main(argv: Sequence[str] | None = None, scenario: Scenario | None = None) -> int:
    """``python -m drill``: run the scenario (the default one unless given); 0 when every expectation
    holds, 1 otherwise, 2 when the drill could not run."""
    if argv:
        sys.stderr.write("usage: python -m drill  (no arguments: the drill's fleet and scenario are fixed)\n")
        return 2
    try:
        report = run_drill(scenario)
    except DrillError as error:
        sys.stderr.write(f"drill aborted: {error}\n")
        return 2
    if report.failures:
        sys.stderr.write(f"drill failed: {len(report.failures)} expectation(s) not met (see above)\n")
    return report.exit_code

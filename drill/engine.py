"""The drill's Detect engine part: an account where Device Defender Detect is off, and fleetguard's own
engine evaluates the behaviors instead, end to end on the emulator.

Two more devices are registered. Each sends a metrics report built by the reference device agent
(``examples/device_agent/publish_metrics.py``) from host facts the drill fixes: the first listens on a port
its behavior does not allow. The second's connections fail authorization in a burst, seen both as lifecycle
``connect_failed`` events and as lines of the IoT v2 log's subscription. The drill wraps each as the stack's
IoT rules and log subscription would put it in the stream and invokes the engine's handler with the Kinesis
event Lambda would deliver (the emulator needs no Kinesis for that); the handler keeps its state in the
emulator's DynamoDB and publishes ViolationEvents to the alert topic, where the intake takes them to
containment as it does Device Defender's. The first batch is then delivered again (nothing may change), and
a later normal report from the first device clears its alarm: the intake logs the alarm-cleared event and
contains nobody twice.

A queue subscribed to the alert topic for the part's duration shows what the engine published.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from drill.consumer import drain_intake
from drill.emulator import drain_queue, quarantined
from drill.observed import EngineBatch, EngineEvent, EngineObserved, Run
from drill.scenario import ACCOUNT_ID, BASE_TIME_MS, REGION, Alert
from examples.device_agent.publish_metrics import (
    TCP_ESTABLISHED,
    TCP_LISTEN,
    HostFacts,
    Socket,
    build_report,
    next_report_id,
)
from functions import engine_handler
from functions.contract_engine import STATE_DEVICE, EngineHandlerEnvironment
from functions.contract_engine import create_engine_state_table_request as state_table_request
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.engine_records import (
    AUTHORIZATION_FAILED,
    CLIENT,
    CONNECT_FAILURE_REASON,
    DEVICE,
    DEVICE_REPORT,
    KIND,
    LOG_AUTHORIZATION_FAILURE,
    LOG_DATA_MESSAGE,
    LOG_FAILURE_STATUS,
    LOG_STATUS,
    PRESENCE,
    PRESENCE_CONNECT_FAILED,
    RECEIVED_MS,
)
from functions.engine_state import StateCache, deserialize_item
from functions.evaluator import DeviceState
from harness.lambda_context import lambda_context
from settings.facts import IOT_LOG_GROUP

ENGINE_PROFILE: Final = "fleetguard-drill-engine"
"""The engine's securityProfileName: its violations say which engine raised them."""
PORT_DEVICE: Final = "engine-sensor-01"
"""Listens on telnet beside its allowed ports."""
AUTH_DEVICE: Final = "engine-sensor-02"
"""Its connections fail authorization in a burst."""
DEVICES: Final = (PORT_DEVICE, AUTH_DEVICE)
STATE_TABLE: Final = "fleetguard-drill-engine-state"
ENGINE_DEAD_LETTERS: Final = "fleetguard-drill-engine-dead-letters"
ALERT_TAP: Final = "fleetguard-drill-alert-tap"
STREAM_ARN: Final = f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/fleetguard-drill-device-metrics"
ALLOWED_PORTS: Final = (443, 8883)
UNAUTHORIZED_PORT: Final = 23
PORTS_BEHAVIOR: Final = EngineBehavior("ListeningTcpPorts", "aws:listening-tcp-ports", "in-port-set",
                                       ports=ALLOWED_PORTS)
AUTH_BEHAVIOR: Final = EngineBehavior("AuthFailures", "aws:num-authorization-failures", "less-than", count=3,
                                      duration_seconds=300)
PROFILE: Final = EngineProfile(ENGINE_PROFILE, (), (PORTS_BEHAVIOR, AUTH_BEHAVIOR))
"""The behaviors as ``detect.ruleBehaviors`` would give them, targeting every device."""
PART_START_MS: Final = BASE_TIME_MS + 2 * 3600 * 1000
"""Two hours after the main scenario's alarms, on a 5-minute boundary (the windows' alignment)."""
SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
_SEQUENCE_BASE: Final = 49_650_000_000_000_000_000
"""Kinesis sequence numbers are strings of digits that grow along a shard."""

BATCHES: Final = ("reports and an authorization-failure burst", "the same batch delivered again",
                  "a later normal report")
EXPECTED_EVENTS: Final[tuple[frozenset[tuple[str, str, str]], ...]] = (
    frozenset({(PORT_DEVICE, PORTS_BEHAVIOR.name, "in-alarm"), (AUTH_DEVICE, AUTH_BEHAVIOR.name, "in-alarm")}),
    frozenset(),
    frozenset({(PORT_DEVICE, PORTS_BEHAVIOR.name, "alarm-cleared")}),
)
"""(device, behavior, event type) the engine must publish for each batch of :data:`BATCHES`."""
EXPECTED_IN_ALARM_AT_END: Final = frozenset({AUTH_DEVICE})


@dataclass
class _Stream:
    """Records as the stream holds them: the drill numbers them as one shard would."""

    records: int = 0

    def record(self, data: bytes, partition_key: str) -> dict[str, Any]:
        """A record of the Kinesis event Lambda delivers to the engine."""
        self.records += 1
        sequence_number = str(_SEQUENCE_BASE + self.records)
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key,
                        "sequenceNumber": sequence_number, "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": PART_START_MS / 1000},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{sequence_number}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT_ID}:role/fleetguard-drill-engine", "awsRegion": REGION,
            "eventSourceARN": STREAM_ARN,
        }


def _host(listening: Sequence[int]) -> HostFacts:
    """What a device's /proc would show: its listening TCP ports and one connection to the broker."""
    sockets = [Socket("0.0.0.0", port, "0.0.0.0", 0, TCP_LISTEN) for port in listening]
    sockets.append(Socket("10.20.0.15", 50412, "203.0.113.10", 8883, TCP_ESTABLISHED))
    return HostFacts(tcp=sockets, udp=[])


def _report_record(stream: _Stream, device: str, report_id: int, received_ms: int,
                   listening: Sequence[int]) -> dict[str, Any]:
    """The reference agent's report, with the envelope the device metrics rule adds."""
    document = build_report(report_id, _host(listening), short_names=device == AUTH_DEVICE)
    document.update({KIND: DEVICE_REPORT, DEVICE: device, CLIENT: device, RECEIVED_MS: received_ms})
    return stream.record(json.dumps(document).encode(), device)


def _connect_failure_record(stream: _Stream, device: str, at_ms: int) -> dict[str, Any]:
    """A lifecycle connect_failed event for authorization, as the presence rule forwards it."""
    event = {"clientId": device, "timestamp": at_ms, "eventType": PRESENCE_CONNECT_FAILED,
             CONNECT_FAILURE_REASON: AUTHORIZATION_FAILED, "ipAddress": "198.51.100.23",
             "sessionIdentifier": f"00000000-0000-4000-c000-{at_ms % 10**12:012d}",
             "principalIdentifier": "unknown", "versionNumber": 0,
             KIND: PRESENCE, DEVICE: device, RECEIVED_MS: at_ms}
    return stream.record(json.dumps(event).encode(), device)


def _log_record(stream: _Stream, device: str, times_ms: Sequence[int]) -> dict[str, Any]:
    """The v2 log's subscription payload (gzip, no envelope) with a publish denied at each time."""
    events = []
    for number, at_ms in enumerate(times_ms):
        line = {"timestamp": datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "logLevel": "ERROR", "traceId": f"0c5d1e7a-0000-4000-d000-{number:012d}", "accountId": ACCOUNT_ID,
                LOG_STATUS: LOG_FAILURE_STATUS, "eventType": "Publish-In", "protocol": "MQTT",
                "topicName": f"fleet/{device}/config", "clientId": device, "principalId": "unknown",
                "sourceIp": "198.51.100.23", "sourcePort": 41822, "reason": LOG_AUTHORIZATION_FAILURE,
                "details": "Authorization Failure"}
        events.append({"id": str(37_000_000 + number), "timestamp": at_ms, "message": json.dumps(line)})
    payload = {"messageType": LOG_DATA_MESSAGE, "owner": ACCOUNT_ID, "logGroup": IOT_LOG_GROUP,
               "logStream": "drill", "subscriptionFilters": ["fleetguard-drill-auth-failures"], "logEvents": events}
    # CloudWatch Logs chooses the partition key, not the device: these records carry no device order.
    return stream.record(gzip.compress(json.dumps(payload).encode()), "log-subscription")


def stream_batches() -> tuple[list[dict[str, Any]], ...]:
    """The Kinesis records of each batch of :data:`BATCHES`, in stream order."""
    stream = _Stream()
    start_s = PART_START_MS // SECOND
    first_ids = {device: next_report_id(None, start_s + 10) for device in DEVICES}
    first = [
        _report_record(stream, PORT_DEVICE, first_ids[PORT_DEVICE], PART_START_MS + 10 * SECOND,
                       (*ALLOWED_PORTS, UNAUTHORIZED_PORT)),
        _report_record(stream, AUTH_DEVICE, first_ids[AUTH_DEVICE], PART_START_MS + 10 * SECOND, ALLOWED_PORTS),
        _connect_failure_record(stream, AUTH_DEVICE, PART_START_MS + 20 * SECOND),
        _connect_failure_record(stream, AUTH_DEVICE, PART_START_MS + 25 * SECOND),
        _log_record(stream, AUTH_DEVICE, (PART_START_MS + 30 * SECOND, PART_START_MS + 31 * SECOND)),
    ]
    later_ms = PART_START_MS + 5 * MINUTE + 10 * SECOND
    later = [_report_record(stream, PORT_DEVICE, next_report_id(first_ids[PORT_DEVICE], later_ms / SECOND),
                            later_ms, ALLOWED_PORTS)]
    return first, first, later


_CLOCK_MS: Final = (PART_START_MS + MINUTE, PART_START_MS + 2 * MINUTE, PART_START_MS + 6 * MINUTE)
"""The engine's clock at each batch: a little after its records arrived."""


def engine_environment(alert_topic_arn: str) -> dict[str, str]:
    """The engine handler's environment as the stack sets it. The queue URL is the one AWS gives (the
    contract accepts no other); the handler's client sends its requests to the emulator all the same."""
    dead_letters = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{ENGINE_DEAD_LETTERS}"
    return EngineHandlerEnvironment(STATE_TABLE, alert_topic_arn, dead_letters).to_environment()


def prepare_engine(run: Run) -> str:
    """The state table, the engine's dead-letter queue and the part's things; the queue's URL."""
    run.clients.dynamodb.create_table(**state_table_request(STATE_TABLE))
    for device in DEVICES:
        run.clients.iot.create_thing(thingName=device)
    url: str = run.clients.sqs.create_queue(QueueName=ENGINE_DEAD_LETTERS)["QueueUrl"]
    return url


def run_engine_part(main: Run, dead_letter_queue_url: str) -> EngineObserved:
    """Run the part inside the handlers' environment (``drill.handlers.handlers_pointed_at``, with the
    engine's variables); its intake outcomes are kept apart from the main scenario's."""
    run = Run(main.scenario, main.clients, main.plumbing, main.timeline, main.logs, invocations=main.invocations)
    observed = EngineObserved()
    run.timeline.add(f"Detect engine part: Device Defender Detect off, the fleetguard engine on (profile "
                     f"{ENGINE_PROFILE}); {PORT_DEVICE} listens on port {UNAUTHORIZED_PORT}, {AUTH_DEVICE} "
                     "fails authorization")
    with _engine_globals(), _alert_tap(run) as tap:
        batches = zip(BATCHES, stream_batches(), _CLOCK_MS, strict=True)
        for number, (name, records, clock_ms) in enumerate(batches, start=1):
            engine_handler.CLOCK = _clock_at(clock_ms)
            batch = _invoke_engine(run, number, name, records)
            batch.events = _published(run, tap, number)
            observed.batches.append(batch)
            drain_intake(run)
    main.invocations = run.invocations
    observed.contained = dict(run.observed.contained)
    observed.ignored = dict(run.observed.ignored)
    observed.failures = {label: list(reasons) for label, reasons in run.observed.failures.items()}
    observed.containments = list(run.observed.containments)
    observed.quarantined = quarantined(run.clients) & frozenset(DEVICES)
    observed.notifications = [
        subject for body in drain_queue(run.clients.sqs, run.plumbing.responders_inbox_url)
        if any(device in (subject := str(json.loads(body).get("Subject"))) for device in DEVICES)
    ]
    observed.dead_letters = drain_queue(run.clients.sqs, dead_letter_queue_url)
    observed.in_alarm = frozenset(device for device in DEVICES if _in_alarm(run, device))
    return observed


def _clock_at(at_ms: int) -> Callable[[], float]:
    """The engine's clock, stopped at ``at_ms`` (epoch seconds, as ``time.time`` answers)."""
    return lambda: at_ms / SECOND


@contextmanager
def _engine_globals() -> Iterator[None]:
    """The handler's profile (built here, as the stack packages it), an empty state cache and the drill's
    clock; the module's own restored afterwards."""
    saved = engine_handler.PROFILE, engine_handler.CACHE, engine_handler.CLOCK
    engine_handler.PROFILE, engine_handler.CACHE = PROFILE, StateCache()
    try:
        yield
    finally:
        engine_handler.PROFILE, engine_handler.CACHE, engine_handler.CLOCK = saved


@contextmanager
def _alert_tap(run: Run) -> Iterator[str]:
    """A queue subscribed to the alert topic while the part runs; yields its URL."""
    sqs = run.clients.sqs
    url: str = sqs.create_queue(QueueName=ALERT_TAP)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = run.clients.sns.subscribe(TopicArn=run.plumbing.alert_topic_arn, Protocol="sqs",
                                             Endpoint=arn)["SubscriptionArn"]
    try:
        yield url
    finally:
        run.clients.sns.unsubscribe(SubscriptionArn=subscription)


def _invoke_engine(run: Run, number: int, name: str, records: list[dict[str, Any]]) -> EngineBatch:
    context = lambda_context("fleetguard-drill-engine", region=REGION, account_id=ACCOUNT_ID,
                             request_id=f"00000000-0000-4000-e000-{number:012d}", log_stream="drill")
    started = run.timeline.now_ms()
    response = engine_handler.handler({"Records": records}, context)
    failed = [str(failure.get("itemIdentifier")) for failure in response.get("batchItemFailures", [])]
    run.timeline.add(f"engine batch {number} ({name}): {len(records)} stream record(s), "
                     f"{len(failed)} reported failed", at_ms=started)
    return EngineBatch(name, len(records), failed)


def _published(run: Run, tap: str, number: int) -> list[EngineEvent]:
    """The ViolationEvents the engine put on the alert topic, labelled for the intake's outcomes."""
    events = []
    for body in drain_queue(run.clients.sqs, tap):
        message = str(json.loads(body)["Message"])
        document: Mapping[str, Any] = json.loads(message)
        event = EngineEvent(str(document.get("thingName")), str(document.get("behavior", {}).get("name")),
                            str(document.get("violationEventType")), str(document.get("violationId")),
                            str(document.get("securityProfileName")))
        events.append(event)
        label = f"engine-{number}-{event.event_type}-{event.thing_name}"
        alert = Alert(label, f"engine {event.event_type} ({event.behavior})", message, event.thing_name)
        run.labels_by_message[message] = alert
        run.published_at[label] = run.timeline.now_ms()
        run.timeline.add(f"  engine published {label}: {event.behavior} {event.event_type}, violation "
                         f"{event.violation_id}")
    return events


def _in_alarm(run: Run, device: str) -> bool:
    item = run.clients.dynamodb.get_item(TableName=STATE_TABLE, Key={STATE_DEVICE: {"S": device}},
                                         ConsistentRead=True).get("Item")
    state = DeviceState.from_item(deserialize_item(item)) if item else DeviceState(device)
    return any(behavior.in_alarm for behavior in state.behaviors.values())

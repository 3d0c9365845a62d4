"""The drill's fixed fleet and scenario: which devices exist, which Device Defender messages arrive in which
wave, which devices responders contain or release by hand afterwards, and what the emulator must show at
the end.

Everything here is data: fixed names, fixed violation ids and fixed event times, so two runs publish
byte-identical alerts. The messages have the shapes Device Defender sends to SNS (see the intake's
parser, ``functions/messages.py``); the malformed ones break it in the ways a producer bug or a
hand-written test message would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

REGION: Final = "us-east-1"
ACCOUNT_ID: Final = "123456789012"
"""The account the emulator answers for (moto's default)."""
QUARANTINE_GROUP: Final = "QUARANTINED"
"""The stacks' default quarantine group name (settings.quarantine.DEFAULT_GROUP_NAME)."""
FORENSIC_TOPIC_PREFIX: Final = "fleetguard/forensics"
# What the drill builds in the emulator, named as a stack would name it.
ALERT_TOPIC: Final = "fleetguard-drill-alerts"
RESPONDERS_TOPIC: Final = "fleetguard-drill-responders"
INTAKE_QUEUE: Final = "fleetguard-drill-intake"
DEAD_LETTER_QUEUE: Final = "fleetguard-drill-intake-dlq"
RESPONDERS_INBOX: Final = "fleetguard-drill-responders-inbox"
NOTICE_TABLE: Final = "fleetguard-drill-notices"
QUARANTINE_POLICY: Final = "fleetguard-drill-quarantine"
MITIGATION_ACTION: Final = "fleetguard-drill-add-things"
RULES_PROFILE: Final = "fleetguard-drill-rules"
STATISTICAL_PROFILE: Final = "fleetguard-drill-statistical"
ML_PROFILE: Final = "fleetguard-drill-ml"
AUDIT_TASK_ID: Final = "7c1e4b2a9d8f6e5c4b3a2f1e0d9c8b7a"
SCHEDULED_AUDIT: Final = "fleetguard-drill-daily"
BASE_TIME_MS: Final = 1_795_165_200_000
"""2026-11-20T08:20:00Z: the first alarm of the drill; later events are offsets from it."""
MAX_BATCH_SIZE: Final = 1000
"""The intake contract's largest batch."""
FIRMWARE_DESIRED: Final[Mapping[str, Any]] = {"firmwareVersion": "3.2.1", "telemetryIntervalSeconds": 60}
"""Desired state every device starts with; containment and release must leave it alone."""


@dataclass(frozen=True)
class Device:
    name: str
    groups: tuple[str, ...]
    """Ordinary (static) thing groups the device belongs to before the drill."""
    desired: Mapping[str, Any] = field(default_factory=lambda: dict(FIRMWARE_DESIRED))


@dataclass(frozen=True)
class Alert:
    """One message published to the alert topic, under a label the timeline and expectations use."""

    label: str
    kind: str
    """What the message is, for the timeline: rule in-alarm, ML in-alarm, audit, malformed, ..."""
    message: str
    """The SNS message text exactly as published."""
    thing_name: str | None = None


@dataclass(frozen=True)
class Suppression:
    """An audit finding suppression the responders declare before the waves (one device certificate)."""

    check: str
    certificate_id: str
    reason: str


@dataclass(frozen=True)
class Wave:
    """Alerts published together; the consumer drains the intake queue (retries and redrive included)
    before the next wave."""

    name: str
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class OperatorRequest:
    """A responder invokes the contain or release function for one device after the waves."""

    thing_name: str
    reason: str


@dataclass(frozen=True)
class Expectations:
    """What the emulator's state and the intake's records must show at the end of the drill."""

    contained: frozenset[str]
    """Devices that entered the quarantine group during the drill (intake or contain function)."""
    bulk_contained: frozenset[str]
    """Devices of an alert storm, handed to Device Defender mitigation tasks instead of contained one by one."""
    mitigation_tasks: tuple[frozenset[str], ...]
    """The StartDetectMitigationActionsTask calls the intake must make, in order: the labels of the alerts
    whose violations each task covers."""
    released: frozenset[str]
    """Devices the release function confirmed it took out of the quarantine group."""
    quarantined_at_end: frozenset[str]
    ignored: Mapping[str, str]
    """Alert label -> a phrase the intake's reason for ignoring it must contain."""
    dead_lettered: frozenset[str]
    """Alert labels whose messages must end in the dead-letter queue."""
    notified: Mapping[str, str]
    """A phrase a responders notification subject must contain -> why it is expected."""
    notification_count: int
    """Responders notifications published in total."""
    audit_mitigations: frozenset[str] = frozenset()
    """Audit checks (of AUDIT_TASK_ID) the intake must start exactly one mitigation task for."""
    suppressed_checks: frozenset[str] = frozenset()
    """Audit checks whose findings are all suppressed: no mitigation task, no mention in any notification."""


@dataclass(frozen=True)
class Scenario:
    devices: tuple[Device, ...]
    waves: tuple[Wave, ...]
    operator_contains: tuple[OperatorRequest, ...]
    """Contain function invocations after the waves (a responder acting on a report, not an alarm)."""
    releases: tuple[OperatorRequest, ...]
    """Release function invocations, last."""
    expectations: Expectations
    suppressions: tuple[Suppression, ...] = ()
    """Declared before the waves, through the stack's audit suppression provider."""
    max_receive_count: int = 2
    """The intake queue's redrive policy: deliveries before a message moves to the dead-letter queue."""
    visibility_timeout_seconds: int = 1
    """Short, so failed records become visible again (and reach the dead-letter queue) within seconds."""
    storm_threshold: int = 3
    """In-alarm violations of one (security profile, behavior) in one batch that make an alert storm. The
    default waves reach it only in the storm wave (the first has two ListeningTcpPorts alarms)."""
    batch_size: int = 100
    """Records per intake invocation, as the event source mapping's batch size."""

    @property
    def alerts(self) -> dict[str, Alert]:
        """Every alert of every wave, by label."""
        return {alert.label: alert for wave in self.waves for alert in wave.alerts}

    def __post_init__(self) -> None:
        # At 0 a record the intake is still handling is visible again and would be received twice.
        if self.visibility_timeout_seconds < 1:
            raise ValueError(f"visibility_timeout_seconds: expected at least 1, got {self.visibility_timeout_seconds}")
        if self.max_receive_count < 1:
            raise ValueError(f"max_receive_count: expected at least 1, got {self.max_receive_count}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size: expected 1-{MAX_BATCH_SIZE}, got {self.batch_size}")
        # The drill recognises an alert in the queues by its message text and reports it by its label.
        alerts = [alert for wave in self.waves for alert in wave.alerts]
        for what, values in (("label", [a.label for a in alerts]), ("message", [a.message for a in alerts])):
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"scenario alerts: each {what} must be unique; repeated: {repeated}")
        labels = {alert.label for alert in alerts}
        named_labels = (
            ("ignored", set(self.expectations.ignored)),
            ("dead_lettered", set(self.expectations.dead_lettered)),
            ("mitigation_tasks", set().union(*self.expectations.mitigation_tasks)),
        )
        for field_name, named in named_labels:
            unknown = sorted(named - labels)
            if unknown:
                raise ValueError(f"expectations.{field_name}: no alert labelled {', '.join(unknown)}")


# --- message builders -------------------------------------------------------------------------------------


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def violation(
    *,
    violation_id: str,
    thing_name: str,
    profile: str,
    behavior: Mapping[str, Any],
    event_type: str,
    offset_ms: int,
    metric_value: Mapping[str, Any] | None = None,
    additional_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Detect violation event as Device Defender publishes it (epoch milliseconds)."""
    message: dict[str, Any] = {
        "violationId": violation_id,
        "thingName": thing_name,
        "securityProfileName": profile,
        "behavior": dict(behavior),
        "violationEventType": event_type,
        "violationEventTime": BASE_TIME_MS + offset_ms,
    }
    if metric_value is not None:
        message["metricValue"] = dict(metric_value)
    if additional_info is not None:
        message["violationEventAdditionalInfo"] = dict(additional_info)
    return message


LISTENING_PORTS: Final[Mapping[str, Any]] = {
    "name": "ListeningTcpPorts",
    "metric": "aws:listening-tcp-ports",
    "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443, 8883]},
                 "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1},
}
AUTH_FAILURES_P90: Final[Mapping[str, Any]] = {
    "name": "AuthFailuresP90",
    "metric": "aws:num-authorization-failures",
    "criteria": {"comparisonOperator": "greater-than", "statisticalThreshold": {"statistic": "p90"},
                 "durationSeconds": 300, "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2},
}
BYTES_OUT_ML: Final[Mapping[str, Any]] = {
    "name": "AllBytesOutML",
    "metric": "aws:all-bytes-out",
    "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"},
                 "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1},
    "suppressAlerts": False,
}
MESSAGES_SENT: Final[Mapping[str, Any]] = {
    "name": "MessagesSent",
    "metric": "aws:num-messages-sent",
    "criteria": {"comparisonOperator": "greater-than", "value": {"count": 100}, "durationSeconds": 300,
                 "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1},
}
SOURCE_IP: Final[Mapping[str, Any]] = {
    "name": "SourceIpInPlantRange",
    "metric": "aws:source-ip-address",
    "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.20.0.0/16"]}},
}


ENABLE_LOGGING_ACTION: Final = "fleetguard-drill-enable-logging"
DEACTIVATE_CERTIFICATE_ACTION: Final = "fleetguard-drill-deactivate-cert"
AUDIT_MITIGATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "LOGGING_DISABLED_CHECK": (ENABLE_LOGGING_ACTION,),
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK": (DEACTIVATE_CERTIFICATE_ACTION,),
}
"""Audit checks the intake mitigates without approval, with their mitigation actions."""
REVOKED_STILL_ACTIVE: Final = "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK"
SUPPRESSIONS: Final = tuple(
    Suppression(REVOKED_STILL_ACTIVE, certificate_id,
                "Bench rigs replay revoked certificates on purpose to test the broker's rejection path")
    for certificate_id in ("b3" * 32, "c4" * 32)
)
"""The two revoked certificates the audit finds still active are the test bench's: suppressed beforehand."""


def audit_notification(offset_ms: int) -> dict[str, Any]:
    """A scheduled audit that found a critical and three lesser non-compliant checks: logging off (mitigated
    at once), revoked device certificates still active but every finding suppressed (nothing to mitigate),
    and expiring device certificates (unmapped)."""
    return {
        "accountId": ACCOUNT_ID,
        "taskId": AUDIT_TASK_ID,
        "taskStatus": "COMPLETED",
        "taskType": "SCHEDULED_AUDIT_TASK",
        "scheduledAuditName": SCHEDULED_AUDIT,
        "failedChecksCount": 0,
        "canceledChecksCount": 0,
        "nonCompliantChecksCount": 4,
        "compliantChecksCount": 0,
        "totalChecksCount": 4,
        "taskStartTime": BASE_TIME_MS + offset_ms,
        "auditDetails": [
            {"checkName": "LOGGING_DISABLED_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
             "nonCompliantResourcesCount": 1, "totalResourcesCount": 1},
            {"checkName": REVOKED_STILL_ACTIVE, "checkRunStatus": "COMPLETED_NON_COMPLIANT",
             "nonCompliantResourcesCount": len(SUPPRESSIONS), "totalResourcesCount": 40,
             "suppressedNonCompliantResourcesCount": len(SUPPRESSIONS)},
            {"checkName": "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
             "nonCompliantResourcesCount": 1, "totalResourcesCount": 4},
            {"checkName": "DEVICE_CERTIFICATE_EXPIRING_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
             "nonCompliantResourcesCount": 2, "totalResourcesCount": 6},
        ],
    }


# --- the default fleet and scenario ---------------------------------------------------------------------

SENSORS: Final = "line-a-sensors"
GATEWAYS: Final = "line-b-gateways"
METERS: Final = "line-d-meters"
STORM_DEVICES: Final = ("meter-d-01", "meter-d-02", "meter-d-03", "meter-d-04")
"""A misconfigured firmware push makes every meter flood the broker at once."""
UNREGISTERED_DEVICE: Final = "rogue-client-99"
"""Alarms under a client id that is no registered thing: nothing to contain, responders are told."""

DEFAULT_DEVICES: Final = (
    Device("sensor-a-01", (SENSORS,)),
    Device("sensor-a-02", (SENSORS,)),
    Device("sensor-a-03", (SENSORS,)),
    Device("gateway-b-01", (GATEWAYS,)),
    Device("gateway-b-02", (GATEWAYS,)),
    Device("camera-c-01", ()),
    *(Device(name, (METERS,)) for name in STORM_DEVICES),
)


def _alert(label: str, kind: str, message: Mapping[str, Any]) -> Alert:
    thing = message.get("thingName")
    return Alert(label, kind, _compact(message), thing if isinstance(thing, str) else None)


def _default_waves() -> tuple[Wave, ...]:
    rule_alarm = violation(
        violation_id="d1a0c0de-0001-4a11-9b01-000000000001", thing_name="sensor-a-01", profile=RULES_PROFILE,
        behavior=LISTENING_PORTS, event_type="in-alarm", offset_ms=0, metric_value={"ports": [23, 443, 8883]},
    )
    first = Wave("alarms arrive", (
        _alert("rule-in-alarm", "rule in-alarm", rule_alarm),
        _alert("statistical-in-alarm", "statistical in-alarm", violation(
            violation_id="d1a0c0de-0002-4a11-9b01-000000000002", thing_name="gateway-b-01",
            profile=STATISTICAL_PROFILE, behavior=AUTH_FAILURES_P90, event_type="in-alarm", offset_ms=4_000,
            metric_value={"count": 41},
        )),
        _alert("ml-in-alarm", "ML in-alarm", violation(
            violation_id="d1a0c0de-0003-4a11-9b01-000000000003", thing_name="sensor-a-02", profile=ML_PROFILE,
            behavior=BYTES_OUT_ML, event_type="in-alarm", offset_ms=9_000, metric_value={"count": 48_211_904},
            additional_info={"confidenceLevel": "HIGH"},
        )),
        _alert("alarm-cleared", "alarm-cleared", violation(
            violation_id="d1a0c0de-0004-4a11-9b01-000000000004", thing_name="sensor-a-03", profile=RULES_PROFILE,
            behavior=LISTENING_PORTS, event_type="alarm-cleared", offset_ms=12_000, metric_value={"ports": [443]},
        )),
        _alert("alarm-invalidated", "alarm-invalidated", violation(
            violation_id="d1a0c0de-0005-4a11-9b01-000000000005", thing_name="gateway-b-02", profile=RULES_PROFILE,
            behavior=SOURCE_IP, event_type="alarm-invalidated", offset_ms=15_000,
        )),
        _alert("unregistered-in-alarm", "rule in-alarm (unregistered device)", violation(
            violation_id="d1a0c0de-0006-4a11-9b01-000000000006", thing_name=UNREGISTERED_DEVICE,
            profile=RULES_PROFILE, behavior=LISTENING_PORTS, event_type="in-alarm", offset_ms=17_000,
            metric_value={"ports": [22, 443]},
        )),
        _alert("audit-non-compliant", "audit notification", audit_notification(offset_ms=-3_600_000)),
        Alert("malformed-not-json", "malformed (not JSON)", "ALARM sensor-a-03 listening on port 23"),
        _alert("malformed-no-violation-id", "malformed (no violationId)", {
            key: value for key, value in rule_alarm.items() if key != "violationId"
        }),
        _alert("malformed-time-in-seconds", "malformed (event time in seconds)", {
            **rule_alarm, "violationId": "d1a0c0de-0007-4a11-9b01-000000000007",
            "violationEventTime": BASE_TIME_MS // 1000,
        }),
    ))
    follow_up = Wave("follow-ups", (
        # A second behavior of the same device alarms while it is quarantined.
        _alert("repeat-in-alarm", "ML in-alarm (already contained)", violation(
            violation_id="d1a0c0de-0008-4a11-9b01-000000000008", thing_name="sensor-a-01", profile=ML_PROFILE,
            behavior=BYTES_OUT_ML, event_type="in-alarm", offset_ms=300_000, metric_value={"count": 9_834_211},
            additional_info={"confidenceLevel": "HIGH"},
        )),
        _alert("contained-alarm-cleared", "alarm-cleared (contained device)", violation(
            violation_id="d1a0c0de-0001-4a11-9b01-000000000001", thing_name="sensor-a-01", profile=RULES_PROFILE,
            behavior=LISTENING_PORTS, event_type="alarm-cleared", offset_ms=900_000, metric_value={"ports": [443]},
        )),
    ))
    storm = Wave("alert storm", tuple(
        _alert(f"storm-{name}", "rule in-alarm (storm)", violation(
            violation_id=f"d1a0c0de-0100-4a11-9b01-00000000010{number}", thing_name=name, profile=RULES_PROFILE,
            behavior=MESSAGES_SENT, event_type="in-alarm", offset_ms=1_200_000 + number * 700,
            metric_value={"count": 5_000 + number},
        ))
        for number, name in enumerate(STORM_DEVICES, start=1)
    ))
    return (first, follow_up, storm)


OPERATOR_CONTAINED: Final = "camera-c-01"
"""Contained by a responder with the contain function: site staff reported its case opened."""

DEFAULT_EXPECTATIONS: Final = Expectations(
    contained=frozenset({"sensor-a-01", "gateway-b-01", "sensor-a-02", OPERATOR_CONTAINED}),
    bulk_contained=frozenset(STORM_DEVICES),
    mitigation_tasks=(frozenset(f"storm-{name}" for name in STORM_DEVICES),),
    released=frozenset({"sensor-a-01", "gateway-b-01"}),
    quarantined_at_end=frozenset({"sensor-a-02", OPERATOR_CONTAINED}),
    ignored={
        "alarm-cleared": "alarm-cleared",
        "alarm-invalidated": "alarm-invalidated",
        "contained-alarm-cleared": "alarm-cleared",
    },
    dead_lettered=frozenset({"malformed-not-json", "malformed-no-violation-id", "malformed-time-in-seconds"}),
    notified={
        "sensor-a-01 contained": "fallback path: the rule alarm contained it",
        "gateway-b-01 contained": "fallback path: the statistical alarm contained it",
        "sensor-a-02 contained": "fallback path: the ML alarm contained it",
        f"{UNREGISTERED_DEVICE} in alarm but NOT contained": "an alarm for an unregistered device",
        f"audit {AUDIT_TASK_ID}": "non-compliant audit checks go to responders",
        f"alert storm, {len(STORM_DEVICES)} devices, MessagesSent": "one notification for the whole storm",
    },
    notification_count=7,
    # Logging is mitigated; the revoked certificates' findings are all suppressed, so nothing is.
    audit_mitigations=frozenset({"LOGGING_DISABLED_CHECK"}),
    suppressed_checks=frozenset({"REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK"}),
)
"""Seven notifications: the six above plus the repeated alarm's (sensor-a-01 was already contained)."""


def default_scenario() -> Scenario:
    return Scenario(
        devices=DEFAULT_DEVICES,
        waves=_default_waves(),
        operator_contains=(OperatorRequest(OPERATOR_CONTAINED, "drill: site staff found the camera's case open"),),
        releases=(
            OperatorRequest("sensor-a-01", "drill: open telnet port traced to a debug build; reflashed"),
            OperatorRequest("gateway-b-01", "drill: authorization failures from a rotated certificate; fixed"),
        ),
        expectations=DEFAULT_EXPECTATIONS,
        suppressions=SUPPRESSIONS,
    )

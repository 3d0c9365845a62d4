"""Parse the messages AWS IoT Device Defender publishes to SNS into typed, immutable values.

Two message kinds arrive on the alert topic: Detect violation events and Audit task notifications
(fields as in the Device Defender developer guide and the ``iot`` botocore model). They reach a Lambda
function either directly from SNS or through an SQS queue subscribed to the topic, with or without SNS
raw message delivery; :func:`message_from_sns_record` and :func:`message_from_sqs_body` unwrap those
envelopes and :func:`parse_message` turns the message text into a :class:`ViolationEvent` or an
:class:`AuditNotification`.

Every malformed input raises :class:`MessageError` naming the field (as a dotted path) and what was
expected. The parser insists on what response decisions depend on (identifiers, names, event type,
time, an unambiguous behavior kind) and type-checks the optional parts it knows, but tolerates extra
keys so that a field AWS adds later cannot stop an alarm from being handled. A key whose value is null
counts as absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

VIOLATION_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9-]{1,128}")
"""The API's ViolationId shape; ids are safe to embed in idempotency tokens and task ids."""
THING_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
"""The API's ThingName shape (also used for security profile, behavior and dimension names)."""
DEVICE_NAME_PATTERN: Final = re.compile(r".{1,128}", re.DOTALL)
"""The API's DeviceDefenderThingName shape: 1-128 characters, nothing else. A violation names a device
by its MQTT client id when the security profile targets unregistered devices, and a client id may hold
any character (spaces, slashes, unicode), so only a name that also matches THING_NAME_PATTERN can be
passed to the registry or the shadow service."""
_ACCOUNT_ID_PATTERN: Final = re.compile(r"[0-9]{12}")
AUDIT_TASK_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9-]{1,40}")
_SCHEDULED_AUDIT_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")

_MIN_EPOCH_MS: Final = 10**11
"""1973-03-03 in epoch milliseconds. SNS messages carry milliseconds while the list APIs return
seconds; a smaller value is almost certainly seconds and would be misread by a factor of 1000."""


class MessageError(ValueError):
    """The input is not a well-formed Device Defender message (or envelope); the text says where."""


class EventType(StrEnum):
    """``violationEventType`` of a Detect violation event."""

    IN_ALARM = "in-alarm"
    ALARM_CLEARED = "alarm-cleared"
    ALARM_INVALIDATED = "alarm-invalidated"
    """Sent when a device has stopped reporting the metric for two days."""


BehaviorKind = Literal["rule", "statistical", "ml"]

# The criteria key that carries each behavior kind's threshold; a behavior has exactly one of them.
_CRITERIA_KINDS: Final[Mapping[str, BehaviorKind]] = {
    "value": "rule",
    "statisticalThreshold": "statistical",
    "mlDetectionConfig": "ml",
}

_METRIC_VALUE_KINDS: Final = ("count", "cidrs", "ports", "number", "numbers", "strings")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def _is_str(value: object) -> bool:
    return isinstance(value, str)


# The list-valued MetricValue members: what each item must be, and the test for it.
_METRIC_VALUE_LISTS: Final[Mapping[str, tuple[str, Callable[[object], bool]]]] = {
    "cidrs": ("a string", _is_str),
    "strings": ("a string", _is_str),
    "ports": ("an integer 0-65535", _is_port),
    "numbers": ("a number", _is_number),
}

AUDIT_TASK_STATUSES: Final = frozenset({"IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"})
AUDIT_TASK_TYPES: Final = frozenset({"ON_DEMAND_AUDIT_TASK", "SCHEDULED_AUDIT_TASK"})
CHECK_NON_COMPLIANT: Final = "COMPLETED_NON_COMPLIANT"
_CHECK_COMPLETED_STATUSES: Final = frozenset({"COMPLETED_COMPLIANT", CHECK_NON_COMPLIANT})
AUDIT_CHECK_RUN_STATUSES: Final = _CHECK_COMPLETED_STATUSES | {
    "IN_PROGRESS", "WAITING_FOR_DATA_COLLECTION", "CANCELED", "FAILED",
}


@dataclass(frozen=True)
class Behavior:
    """The behavior a device violated, as configured in its security profile."""

    name: str
    metric: str | None
    """e.g. ``aws:num-messages-sent`` or a custom metric name."""
    kind: BehaviorKind
    """``rule`` (criteria.value), ``statistical`` (criteria.statisticalThreshold) or ``ml``
    (criteria.mlDetectionConfig)."""
    criteria: Mapping[str, Any]
    metric_dimension: Mapping[str, Any] | None
    suppress_alerts: bool


@dataclass(frozen=True)
class ViolationEvent:
    """One Detect violation event (a device entered, left or can no longer be evaluated for an alarm)."""

    violation_id: str
    thing_name: str
    """The thing name, or the MQTT client id of a device that is not a registered thing (see
    DEVICE_NAME_PATTERN); :func:`is_thing_name` tells whether the registry can know it."""
    security_profile_name: str
    behavior: Behavior
    metric_value: Mapping[str, Any]
    """The measured value: one of count, cidrs, ports, number, numbers, strings. Empty when the message
    has none (AWS omits it when an alarm is invalidated)."""
    event_type: EventType
    event_time_ms: int
    """Epoch milliseconds."""
    confidence_level: str | None
    """From violationEventAdditionalInfo; set for ML behaviors."""
    verification_state: str | None
    raw: Mapping[str, Any]
    """The decoded message as received."""

    @property
    def is_in_alarm(self) -> bool:
        return self.event_type is EventType.IN_ALARM


@dataclass(frozen=True)
class AuditCheckResult:
    """The outcome of one audit check within an audit task."""

    check_name: str
    run_status: str
    """One of AUDIT_CHECK_RUN_STATUSES."""
    non_compliant_resources_count: int | None
    """Present for completed checks."""
    total_resources_count: int | None
    """Present for completed checks."""
    suppressed_non_compliant_resources_count: int | None
    message: str | None
    error_code: str | None

    @property
    def is_non_compliant(self) -> bool:
        return self.run_status == CHECK_NON_COMPLIANT

    @property
    def all_findings_suppressed(self) -> bool:
        """Every non-compliant resource (a count that includes the suppressed ones) is suppressed: nothing to
        act on. A count the message leaves out is no evidence of that."""
        found = self.non_compliant_resources_count
        suppressed = self.suppressed_non_compliant_resources_count or 0
        return found is not None and suppressed > 0 and found <= suppressed


@dataclass(frozen=True)
class AuditNotification:
    """The summary Device Defender Audit sends when an audit task ends. Per-finding detail is not in
    the message; ListAuditFindings(taskId, checkName) returns it."""

    account_id: str
    task_id: str
    task_status: str
    """One of AUDIT_TASK_STATUSES."""
    task_type: str
    """One of AUDIT_TASK_TYPES."""
    scheduled_audit_name: str | None
    failed_checks_count: int
    canceled_checks_count: int
    non_compliant_checks_count: int
    compliant_checks_count: int
    total_checks_count: int
    task_start_time_ms: int
    checks: tuple[AuditCheckResult, ...]
    raw: Mapping[str, Any]
    """The decoded message as received."""

    @property
    def non_compliant_checks(self) -> tuple[AuditCheckResult, ...]:
        return tuple(check for check in self.checks if check.is_non_compliant)

    @property
    def actionable_checks(self) -> tuple[AuditCheckResult, ...]:
        """Non-compliant checks with a finding nobody suppressed: for incidents, notices and mitigation."""
        return tuple(check for check in self.non_compliant_checks if not check.all_findings_suppressed)

    @property
    def suppressed_checks(self) -> tuple[AuditCheckResult, ...]:
        return tuple(check for check in self.non_compliant_checks if check.all_findings_suppressed)


def is_thing_name(name: str) -> bool:
    """Whether a registered thing can have this name; False for client ids the registry APIs would
    reject (a True answer does not mean the thing is registered)."""
    return THING_NAME_PATTERN.fullmatch(name) is not None


# --- envelopes ---------------------------------------------------------------------------------------


def message_from_sns_record(record: Mapping[str, Any]) -> str:
    """The message text of one record of an SNS-triggered Lambda event (``event["Records"][i]``)."""
    if not isinstance(record, Mapping):
        raise MessageError(f"SNS record: expected an object, got {_json_type(record)}")
    source = record.get("EventSource")
    if source != "aws:sns":
        raise MessageError(f"EventSource: expected 'aws:sns', got {source!r}")
    sns = _required_object(record, "Sns", "")
    return _required_str(sns, "Message", "Sns")


def message_from_sqs_body(body: str) -> str:
    """The message text carried by an SQS record body from a queue subscribed to the SNS topic.

    The body is either an SNS notification JSON (``{"Type": "Notification", "Message": ...}``) or, with
    raw message delivery enabled, the message itself, which is returned unchanged.
    """
    if not isinstance(body, str):
        raise MessageError(f"SQS body: expected a string, got {_json_type(body)}")
    decoded = _decode_json(body, "SQS body")
    if not isinstance(decoded, dict) or "Type" not in decoded:
        return body
    if decoded["Type"] != "Notification":
        raise MessageError(f"SQS body.Type: expected 'Notification', got {decoded['Type']!r}")
    return _required_str(decoded, "Message", "SQS body")


# --- messages ----------------------------------------------------------------------------------------


def parse_message(text: str) -> ViolationEvent | AuditNotification:
    """Parse a Device Defender SNS message (the text inside the envelope)."""
    if not isinstance(text, str):
        raise MessageError(f"message: expected a string, got {_json_type(text)}")
    decoded = _decode_json(text, "message")
    if not isinstance(decoded, dict):
        raise MessageError(f"message: expected a JSON object, got {_json_type(decoded)}")
    if "violationId" in decoded or "violationEventType" in decoded:
        return _parse_violation(decoded)
    if "taskId" in decoded:
        return _parse_audit(decoded)
    keys = ", ".join(sorted(decoded)) or "none"
    raise MessageError(
        "message: unknown shape: expected a Detect violation event (violationId) or an audit "
        f"notification (taskId); keys present: {keys}"
    )


def _parse_violation(message: dict[str, Any]) -> ViolationEvent:
    event_type_text = _required_str(message, "violationEventType", "")
    try:
        event_type = EventType(event_type_text)
    except ValueError:
        expected = ", ".join(kind.value for kind in EventType)
        raise MessageError(
            f"violationEventType: expected one of {expected}, got {event_type_text!r}"
        ) from None
    additional_info = _optional_object(message, "violationEventAdditionalInfo", "")
    metric_value = _optional_object(message, "metricValue", "")
    if metric_value is not None:
        _check_metric_value(metric_value, "metricValue")
    return ViolationEvent(
        violation_id=_required_str(message, "violationId", "", pattern=VIOLATION_ID_PATTERN),
        thing_name=_required_device_name(message, "thingName", ""),
        security_profile_name=_required_str(message, "securityProfileName", "", pattern=THING_NAME_PATTERN),
        behavior=_parse_behavior(_required_object(message, "behavior", "")),
        metric_value=metric_value if metric_value is not None else {},
        event_type=event_type,
        event_time_ms=_required_epoch_ms(message, "violationEventTime", ""),
        confidence_level=(
            _optional_str(additional_info, "confidenceLevel", "violationEventAdditionalInfo")
            if additional_info is not None else None
        ),
        verification_state=_optional_str(message, "verificationState", ""),
        raw=message,
    )


def _parse_behavior(behavior: Mapping[str, Any]) -> Behavior:
    criteria = _required_object(behavior, "criteria", "behavior")
    present = [key for key in _CRITERIA_KINDS if criteria.get(key) is not None]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        raise MessageError(
            f"behavior.criteria: expected exactly one of {', '.join(_CRITERIA_KINDS)}, got {got}"
        )
    kind_key = present[0]
    threshold = _required_object(criteria, kind_key, "behavior.criteria")
    if kind_key == "value":
        if all(threshold.get(member) is None for member in _METRIC_VALUE_KINDS):
            raise MessageError(
                f"behavior.criteria.value: expected one of {', '.join(_METRIC_VALUE_KINDS)}, got none"
            )
        _check_metric_value(threshold, "behavior.criteria.value")
    elif kind_key == "mlDetectionConfig":
        _required_str(threshold, "confidenceLevel", "behavior.criteria.mlDetectionConfig")
    else:
        _optional_str(threshold, "statistic", "behavior.criteria.statisticalThreshold")
    dimension = _optional_object(behavior, "metricDimension", "behavior")
    if dimension is not None:
        _required_str(dimension, "dimensionName", "behavior.metricDimension", pattern=THING_NAME_PATTERN)
    suppress = behavior.get("suppressAlerts", False)
    if not isinstance(suppress, bool):
        raise MessageError(f"behavior.suppressAlerts: expected a boolean, got {_json_type(suppress)}")
    return Behavior(
        name=_required_str(behavior, "name", "behavior", pattern=THING_NAME_PATTERN),
        metric=_optional_str(behavior, "metric", "behavior"),
        kind=_CRITERIA_KINDS[kind_key],
        criteria=criteria,
        metric_dimension=dimension,
        suppress_alerts=suppress,
    )


def _check_metric_value(value: Mapping[str, Any], path: str) -> None:
    """Type-check the known members of a MetricValue (count, cidrs, ports, number, numbers, strings)."""
    count, number = value.get("count"), value.get("number")
    if count is not None and not (_is_int(count) and count >= 0):
        raise MessageError(f"{path}.count: expected a non-negative integer, got {count!r}")
    if number is not None and not _is_number(number):
        raise MessageError(f"{path}.number: expected a number, got {_json_type(number)}")
    for key, (item_kind, is_valid) in _METRIC_VALUE_LISTS.items():
        items = value.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise MessageError(f"{path}.{key}: expected an array, got {_json_type(items)}")
        for index, item in enumerate(items):
            if not is_valid(item):
                raise MessageError(f"{path}.{key}[{index}]: expected {item_kind}, got {item!r}")


def _parse_audit(message: dict[str, Any]) -> AuditNotification:
    details = message.get("auditDetails", [])
    if not isinstance(details, list):
        raise MessageError(f"auditDetails: expected an array, got {_json_type(details)}")
    checks = []
    for index, detail in enumerate(details):
        path = f"auditDetails[{index}]"
        if not isinstance(detail, dict):
            raise MessageError(f"{path}: expected an object, got {_json_type(detail)}")
        checks.append(_parse_check(detail, path))
    return AuditNotification(
        account_id=_required_str(message, "accountId", "", pattern=_ACCOUNT_ID_PATTERN),
        task_id=_required_str(message, "taskId", "", pattern=AUDIT_TASK_ID_PATTERN),
        task_status=_required_choice(message, "taskStatus", "", AUDIT_TASK_STATUSES),
        task_type=_required_choice(message, "taskType", "", AUDIT_TASK_TYPES),
        scheduled_audit_name=_optional_str(
            message, "scheduledAuditName", "", pattern=_SCHEDULED_AUDIT_NAME_PATTERN
        ),
        failed_checks_count=_required_count(message, "failedChecksCount", ""),
        canceled_checks_count=_required_count(message, "canceledChecksCount", ""),
        non_compliant_checks_count=_required_count(message, "nonCompliantChecksCount", ""),
        compliant_checks_count=_required_count(message, "compliantChecksCount", ""),
        total_checks_count=_required_count(message, "totalChecksCount", ""),
        task_start_time_ms=_required_epoch_ms(message, "taskStartTime", ""),
        checks=tuple(checks),
        raw=message,
    )


def _parse_check(detail: Mapping[str, Any], path: str) -> AuditCheckResult:
    run_status = _required_choice(detail, "checkRunStatus", path, AUDIT_CHECK_RUN_STATUSES)
    # Only a check that ran to completion has resource counts.
    counts_required = run_status in _CHECK_COMPLETED_STATUSES
    return AuditCheckResult(
        check_name=_required_str(detail, "checkName", path),
        run_status=run_status,
        non_compliant_resources_count=_count(detail, "nonCompliantResourcesCount", path, counts_required),
        total_resources_count=_count(detail, "totalResourcesCount", path, counts_required),
        suppressed_non_compliant_resources_count=_count(
            detail, "suppressedNonCompliantResourcesCount", path, required=False
        ),
        message=_optional_str(detail, "message", path),
        error_code=_optional_str(detail, "errorCode", path),
    )


# --- field access with errors that name the field ---------------------------------------------------


def _decode_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MessageError(f"{what}: not valid JSON ({error.msg} at position {error.pos})") from None


_JSON_TYPE_NAMES: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (type(None), "null"), ((int, float), "number"), (str, "string"), (list, "array"), (Mapping, "object"),
)


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    for python_type, json_name in _JSON_TYPE_NAMES:
        if isinstance(value, python_type):
            return json_name
    return type(value).__name__


def _required(obj: Mapping[str, Any], key: str, parent: str) -> Any:
    if key not in obj or obj[key] is None:
        raise MessageError(f"{_path(parent, key)}: required field is missing")
    return obj[key]


def _required_object(obj: Mapping[str, Any], key: str, parent: str) -> dict[str, Any]:
    value = _required(obj, key, parent)
    if not isinstance(value, dict):
        raise MessageError(f"{_path(parent, key)}: expected an object, got {_json_type(value)}")
    return value


def _optional_object(obj: Mapping[str, Any], key: str, parent: str) -> dict[str, Any] | None:
    if obj.get(key) is None:
        return None
    return _required_object(obj, key, parent)


def _required_str(
    obj: Mapping[str, Any], key: str, parent: str, *, pattern: re.Pattern[str] | None = None
) -> str:
    value = _required(obj, key, parent)
    if not isinstance(value, str):
        raise MessageError(f"{_path(parent, key)}: expected a string, got {_json_type(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise MessageError(f"{_path(parent, key)}: {value!r} does not match {pattern.pattern}")
    return value


def _required_device_name(obj: Mapping[str, Any], key: str, parent: str) -> str:
    value = _required_str(obj, key, parent)
    if not DEVICE_NAME_PATTERN.fullmatch(value):
        raise MessageError(f"{_path(parent, key)}: expected 1-128 characters, got {len(value)}")
    return value


def _optional_str(
    obj: Mapping[str, Any], key: str, parent: str, *, pattern: re.Pattern[str] | None = None
) -> str | None:
    if obj.get(key) is None:
        return None
    return _required_str(obj, key, parent, pattern=pattern)


def _required_choice(obj: Mapping[str, Any], key: str, parent: str, choices: frozenset[str]) -> str:
    value = _required_str(obj, key, parent)
    if value not in choices:
        raise MessageError(f"{_path(parent, key)}: expected one of {', '.join(sorted(choices))}, got {value!r}")
    return value


def _count(obj: Mapping[str, Any], key: str, parent: str, required: bool) -> int | None:
    if obj.get(key) is None and not required:
        return None
    return _required_count(obj, key, parent)


def _required_count(obj: Mapping[str, Any], key: str, parent: str) -> int:
    value = _required(obj, key, parent)
    if not _is_int(value) or value < 0:
        raise MessageError(f"{_path(parent, key)}: expected a non-negative integer, got {value!r}")
    return int(value)


def _required_epoch_ms(obj: Mapping[str, Any], key: str, parent: str) -> int:
    value = _required(obj, key, parent)
    if not _is_int(value):
        raise MessageError(
            f"{_path(parent, key)}: expected an integer (epoch milliseconds), got {_json_type(value)}"
        )
    if value < _MIN_EPOCH_MS:
        raise MessageError(
            f"{_path(parent, key)}: {value} is not epoch milliseconds (too small; epoch seconds?)"
        )
    return int(value)

"""The behaviors the fleetguard Detect engine evaluates: the document the stack writes and the evaluator reads.

The stack builds an :class:`EngineProfile` from ``detect.ruleBehaviors`` and packages it into the evaluator's
code archive as ``engine_profile.json`` (a profile of up to 100 behaviors does not fit Lambda's 4 KB of
environment variables). :meth:`EngineProfile.from_json` is strict: anything the engine could not evaluate
the way Device Defender does raises :class:`EngineProfileError` naming the field, so a profile that loads is
one the evaluator can honour in full.

Standard library only: the settings package imports these facts to validate configuration.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

PROFILE_FILE: Final = "engine_profile.json"
"""Where the profile sits in the function's archive: next to this module."""

NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
"""The API's shape for security profile, behavior and thing group names."""
MAX_BEHAVIORS: Final = 100
"""Device Defender's limit per security profile; the engine keeps it so a profile moves either way."""
DURATIONS_SECONDS: Final = (300, 600, 900, 1800, 3600)
DATAPOINTS_RANGE: Final = (1, 10)
MAX_PORT: Final = 65535

COUNT: Final = "count"
PORTS: Final = "ports"
CIDRS: Final = "cidrs"

OPERATOR_VALUE_KINDS: Final[Mapping[str, str]] = {
    "less-than": COUNT,
    "less-than-equals": COUNT,
    "greater-than": COUNT,
    "greater-than-equals": COUNT,
    "in-port-set": PORTS,
    "not-in-port-set": PORTS,
    "in-cidr-set": CIDRS,
    "not-in-cidr-set": CIDRS,
}
"""Each comparison operator and the kind of value it takes (count, ports or cidrs)."""

DEVICE_METRIC_KINDS: Final[Mapping[str, str]] = {
    "aws:listening-tcp-ports": PORTS,
    "aws:listening-udp-ports": PORTS,
    "aws:num-listening-tcp-ports": COUNT,
    "aws:num-listening-udp-ports": COUNT,
    "aws:num-established-tcp-connections": COUNT,
    "aws:all-bytes-in": COUNT,
    "aws:all-bytes-out": COUNT,
    "aws:all-packets-in": COUNT,
    "aws:all-packets-out": COUNT,
    "aws:destination-ip-addresses": CIDRS,
}
"""Metrics measured from the device-side metrics reports devices publish."""
CLOUD_METRIC_KINDS: Final[Mapping[str, str]] = {
    "aws:num-authorization-failures": COUNT,
    "aws:num-connection-attempts": COUNT,
    "aws:num-disconnects": COUNT,
    "aws:source-ip-address": CIDRS,
    "aws:num-messages-sent": COUNT,
    "aws:message-byte-size": COUNT,
}
"""Metrics measured from AWS IoT lifecycle events, v2 log authorization failures and message rules."""
METRIC_VALUE_KINDS: Final[Mapping[str, str]] = {**DEVICE_METRIC_KINDS, **CLOUD_METRIC_KINDS}

EVALUABLE_METRICS: Final = frozenset(METRIC_VALUE_KINDS)
"""Every metric the engine has a source for. Not here, and so not evaluable: aws:num-messages-received
(nothing reports the messages AWS IoT delivers to a device), custom metrics."""
MESSAGE_METRICS: Final = frozenset({"aws:num-messages-sent", "aws:message-byte-size"})
"""Measured only from the topic filters the stack lists (each such rule costs per message)."""
WINDOWED_METRICS: Final = frozenset({
    "aws:all-bytes-in", "aws:all-bytes-out", "aws:all-packets-in", "aws:all-packets-out",
    "aws:num-authorization-failures", "aws:num-connection-attempts", "aws:num-disconnects",
    "aws:num-messages-sent",
})
"""Counted over ``durationSeconds`` (which they require); every other metric is one value per datapoint."""


class EngineProfileError(ValueError):
    """The engine profile document is malformed; the text names the field."""


@dataclass(frozen=True)
class EngineBehavior:
    """One rule-based behavior: what is normal for a metric (Device Defender's Behavior, value criteria)."""

    name: str
    metric: str
    operator: str
    count: int | None = None
    ports: tuple[int, ...] | None = None
    cidrs: tuple[str, ...] | None = None
    duration_seconds: int | None = None
    datapoints_to_alarm: int = 1
    datapoints_to_clear: int = 1
    suppress_alerts: bool = False

    def to_document(self) -> dict[str, Any]:
        """The behavior as Device Defender writes it in a ViolationEvent."""
        value: dict[str, Any]
        if self.ports is not None:
            value = {PORTS: list(self.ports)}
        elif self.cidrs is not None:
            value = {CIDRS: list(self.cidrs)}
        else:
            value = {COUNT: self.count}
        criteria: dict[str, Any] = {"comparisonOperator": self.operator, "value": value}
        if self.duration_seconds is not None:
            criteria["durationSeconds"] = self.duration_seconds
        criteria["consecutiveDatapointsToAlarm"] = self.datapoints_to_alarm
        criteria["consecutiveDatapointsToClear"] = self.datapoints_to_clear
        return {"name": self.name, "metric": self.metric, "criteria": criteria,
                "suppressAlerts": self.suppress_alerts}


@dataclass(frozen=True)
class EngineProfile:
    """The behaviors the engine evaluates, the devices they apply to and the name its violations carry."""

    profile_name: str
    """The securityProfileName of the engine's ViolationEvents; tells them apart from Device Defender's."""
    target_groups: tuple[str, ...]
    """Thing groups the behaviors apply to; empty for every device (registered or not)."""
    behaviors: tuple[EngineBehavior, ...]

    def to_json(self) -> str:
        """Canonical text (sorted keys, compact): the same profile always packages to the same bytes."""
        document = {
            "profileName": self.profile_name,
            "targetGroups": list(self.target_groups),
            "behaviors": [_behavior_fields(behavior) for behavior in self.behaviors],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EngineProfile:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise EngineProfileError(f"profile: not valid JSON ({error.msg} at position {error.pos})") from None
        fields = _object(document, "profile")
        _only_keys(fields, "profile", {"profileName", "targetGroups", "behaviors"})
        groups = _list(fields.get("targetGroups", []), "targetGroups")
        behaviors = _list(fields.get("behaviors"), "behaviors")
        if not behaviors:
            raise EngineProfileError("behaviors: expected at least one behavior")
        if len(behaviors) > MAX_BEHAVIORS:
            raise EngineProfileError(f"behaviors: expected at most {MAX_BEHAVIORS}, got {len(behaviors)}")
        parsed = tuple(_parse_behavior(item, f"behaviors[{index}]") for index, item in enumerate(behaviors))
        seen: set[str] = set()
        for index, behavior in enumerate(parsed):
            if behavior.name in seen:
                raise EngineProfileError(f"behaviors[{index}].name: {behavior.name!r} is used twice")
            seen.add(behavior.name)
        return cls(
            profile_name=_name(fields.get("profileName"), "profileName"),
            target_groups=tuple(_name(group, f"targetGroups[{index}]") for index, group in enumerate(groups)),
            behaviors=parsed,
        )


def load_profile(path: Path | None = None) -> EngineProfile:
    """The profile packaged with the function (by default the file next to this module)."""
    location = path if path is not None else Path(__file__).resolve().parent / PROFILE_FILE
    return EngineProfile.from_json(location.read_text(encoding="utf-8"))


# --- (de)serialisation -----------------------------------------------------------------------------------

_BEHAVIOR_KEYS: Final = frozenset({
    "name", "metric", "operator", "count", "ports", "cidrs", "durationSeconds", "datapointsToAlarm",
    "datapointsToClear", "suppressAlerts",
})


def _behavior_fields(behavior: EngineBehavior) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": behavior.name, "metric": behavior.metric, "operator": behavior.operator,
        "datapointsToAlarm": behavior.datapoints_to_alarm, "datapointsToClear": behavior.datapoints_to_clear,
        "suppressAlerts": behavior.suppress_alerts,
    }
    optional = {"count": behavior.count, "ports": behavior.ports, "cidrs": behavior.cidrs,
                "durationSeconds": behavior.duration_seconds}
    fields.update({key: list(value) if isinstance(value, tuple) else value
                   for key, value in optional.items() if value is not None})
    return fields


def _parse_behavior(item: object, path: str) -> EngineBehavior:
    fields = _object(item, path)
    _only_keys(fields, path, _BEHAVIOR_KEYS)
    name = _name(fields.get("name"), f"{path}.name")
    metric = fields.get("metric")
    if not isinstance(metric, str) or metric not in METRIC_VALUE_KINDS:
        raise EngineProfileError(
            f"{path}.metric: {metric!r} is not a metric the engine has a source for; expected one of "
            f"{', '.join(sorted(METRIC_VALUE_KINDS))}"
        )
    operator = fields.get("operator")
    kind = METRIC_VALUE_KINDS[metric]
    allowed = sorted(op for op, op_kind in OPERATOR_VALUE_KINDS.items() if op_kind == kind)
    if operator not in allowed:
        raise EngineProfileError(f"{path}.operator: {operator!r} does not apply to {metric}; expected one of "
                                 f"{', '.join(allowed)}")
    values = {key: fields[key] for key in (COUNT, PORTS, CIDRS) if fields.get(key) is not None}
    if set(values) != {kind}:
        raise EngineProfileError(f"{path}: {metric} with {operator} takes exactly one value, {kind!r}; "
                                 f"got {', '.join(sorted(values)) or 'none'}")
    duration = fields.get("durationSeconds")
    if metric in WINDOWED_METRICS and duration not in DURATIONS_SECONDS:
        raise EngineProfileError(f"{path}.durationSeconds: {metric} is counted over a window; expected one of "
                                 f"{', '.join(map(str, DURATIONS_SECONDS))}, got {duration!r}")
    if metric not in WINDOWED_METRICS and duration is not None:
        raise EngineProfileError(f"{path}.durationSeconds: {metric} is not counted over a window; remove it")
    suppress = fields.get("suppressAlerts", False)
    if not isinstance(suppress, bool):
        raise EngineProfileError(f"{path}.suppressAlerts: expected a boolean, got {suppress!r}")
    return EngineBehavior(
        name=name,
        metric=metric,
        operator=operator,
        count=_count(values[COUNT], f"{path}.count") if kind == COUNT else None,
        ports=_ports(values[PORTS], f"{path}.ports") if kind == PORTS else None,
        cidrs=_cidrs(values[CIDRS], f"{path}.cidrs") if kind == CIDRS else None,
        duration_seconds=duration,
        datapoints_to_alarm=_datapoints(fields.get("datapointsToAlarm", 1), f"{path}.datapointsToAlarm"),
        datapoints_to_clear=_datapoints(fields.get("datapointsToClear", 1), f"{path}.datapointsToClear"),
        suppress_alerts=suppress,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EngineProfileError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise EngineProfileError(f"{path}: expected an array, got {type(value).__name__}")
    return value


def _only_keys(fields: Mapping[str, Any], path: str, known: frozenset[str] | set[str]) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        raise EngineProfileError(f"{path}: unknown field(s) {', '.join(unknown)}")


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise EngineProfileError(f"{path}: expected 1-128 characters of [a-zA-Z0-9:_-], got {value!r}")
    return value


def _count(value: object, path: str) -> int:
    if not _is_int(value) or not isinstance(value, int) or value < 0:
        raise EngineProfileError(f"{path}: expected a non-negative integer, got {value!r}")
    return value


def _datapoints(value: object, path: str) -> int:
    low, high = DATAPOINTS_RANGE
    if not _is_int(value) or not isinstance(value, int) or not low <= value <= high:
        raise EngineProfileError(f"{path}: expected an integer {low}-{high}, got {value!r}")
    return value


def _ports(value: object, path: str) -> tuple[int, ...]:
    items = _list(value, path)
    if not items:
        raise EngineProfileError(f"{path}: expected at least one port")
    for index, port in enumerate(items):
        if not _is_int(port) or not 0 <= port <= MAX_PORT:
            raise EngineProfileError(f"{path}[{index}]: expected a port 0-{MAX_PORT}, got {port!r}")
    return tuple(sorted(set(items)))


def _cidrs(value: object, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    if not items:
        raise EngineProfileError(f"{path}: expected at least one CIDR")
    for index, cidr in enumerate(items):
        try:
            if not isinstance(cidr, str):
                raise TypeError(cidr)
            ipaddress.ip_network(cidr, strict=True)
        except (TypeError, ValueError):
            raise EngineProfileError(
                f"{path}[{index}]: expected an IPv4 or IPv6 network with no host bits set, got {cidr!r}"
            ) from None
    return tuple(items)

"""Evaluate Device Defender rule behaviors for one device: pure functions, no I/O, no clock reads.

Semantics (Device Defender's, as documented for rule-based behaviors):

* A behavior states what is normal. ``less-than 5`` is normal while the value is below 5; ``in-port-set``
  while every listening port is in the set; ``not-in-port-set`` while none is; ``in-cidr-set`` while every
  address is in one of the networks; ``not-in-cidr-set`` while none is. A datapoint that is not normal is
  violating.
* Point metrics: every report, connection (source address) or message (size) is one datapoint; a report
  that leaves a metric out gives it none.
* Windowed metrics (``durationSeconds`` D): the datapoint is the sum over a window. Windows are aligned to
  multiples of D since the epoch rather than to a device's first observation, so a redelivered or late
  observation always falls into the same window whichever process sees it. A window's datapoint is taken
  when an observation at or after its end arrives, or as soon as its partial sum already settles the
  verdict (sums only grow: past a ``less-than`` bound it can only stay violating), so a burst of
  authorization failures alarms at once instead of when the next observation comes. A cloud-side window
  with no event counts 0 (no failure is a datapoint of 0 failures); a device-side window with no report
  has no datapoint (no report is no data). Observations for a window already closed are dropped.
* ``consecutiveDatapointsToAlarm`` N / ``ToClear`` M: raised after N violating datapoints in a row, cleared
  after M normal ones in a row; ``suppressAlerts`` keeps the state but publishes nothing.
* A report whose ``report_id`` is not newer than the last one is ignored, as Device Defender does.

State writes are what a fleet pays for, so :attr:`Evaluation.changed` is True only when something a later
verdict depends on changed: an alarm, a streak, a window's early verdict, the behaviors tracked, or the
coarse heartbeat (``last_seen_ms``, advanced once per :data:`HEARTBEAT_MS`). Partial window sums, the last
report id and the last stream sequence are carried in memory and persisted with the next write.

Why a report that changes nothing needs no write: its only lasting effect would be to be the newest
report, and the stored id only keeps a report from being applied twice. Re-applying a report that changed
nothing changes nothing again; a report that changed something was written together with its id, so a
redelivery is compared with an id at least as new and ignored. The stored id lags only by reports that
changed nothing; a process that reloads the state may therefore accept a stale report the device sends
again, and then judges it like one that arrived in order.

Failure mode of in-memory window sums: a process that loads a device's state from its item cannot know
which observations a process that stopped without writing had added to the open window. That window,
the empty-looking ones after it and the window of the first observation after loading are incomplete: a
stored sum is a lower bound, judged only when it already settles the verdict, and no zero datapoints are
taken for them. A restart thus misses at most a window's datapoint per behavior and never invents one
(a missed normal datapoint can, rarely, let two violating runs count as one streak).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from functions.device_report import DeviceReport, IpAddress
from functions.engine_behaviors import CIDRS, COUNT, DEVICE_METRIC_KINDS, PORTS, EngineBehavior, EngineProfile

HEARTBEAT_MS: Final = 6 * 3600 * 1000
"""How stale the stored ``last_seen_ms`` may be: at one report per 5 minutes, one write per 72 reports."""
SILENCE_MS: Final = 2 * 24 * 3600 * 1000
"""Device Defender invalidates the alarms of a device that has reported nothing for two days."""
MAX_EMPTY_WINDOWS: Final = 10
"""More empty windows in a row than the largest datapoints-to-alarm/clear change nothing further."""


class ObservationKind(StrEnum):
    """What a stream record tells about a device."""
    REPORT = "report"
    CONNECT = "connect"
    """A connected event or a connect failure (a failure refused for authorization is an AUTH_FAILURE too)."""
    DISCONNECT = "disconnect"
    AUTH_FAILURE = "auth-failure"
    MESSAGE = "message"  # a message the device sent on a topic filter the stack watches


@dataclass(frozen=True, slots=True)
class Observation:
    device: str
    at_ms: int
    kind: ObservationKind
    report: DeviceReport | None = None
    source_ip: str | None = None
    message_bytes: int | None = None
    sequence: int | None = None
    """The stream record's sequence number, when the device's records share one shard: an observation at
    or below the state's ``applied_sequence`` was applied already and is skipped."""


@dataclass(slots=True)
class BehaviorState:
    in_alarm: bool = False
    violation_id: str | None = None
    alarm_started_ms: int | None = None
    violating_streak: int = 0
    """Violating datapoints in a row while not in alarm."""
    normal_streak: int = 0
    """Normal datapoints in a row while in alarm."""
    window_start_ms: int | None = None
    window_sum: int = 0
    window_decided: bool = False
    """The open window's datapoint was taken early."""

    def copy(self) -> BehaviorState:
        return BehaviorState(self.in_alarm, self.violation_id, self.alarm_started_ms, self.violating_streak,
                             self.normal_streak, self.window_start_ms, self.window_sum, self.window_decided)


# Stored attribute names of a BehaviorState, and their defaults (left out of the item).
_BEHAVIOR_ATTRIBUTES: Final = (
    ("in_alarm", "alarm", False), ("violation_id", "vid", None), ("alarm_started_ms", "since", None),
    ("violating_streak", "bad", 0), ("normal_streak", "good", 0), ("window_start_ms", "win", None),
    ("window_sum", "sum", 0), ("window_decided", "done", False),
)


@dataclass(slots=True)
class DeviceState:
    device: str
    last_report_id: int | None = None
    last_seen_ms: int | None = None
    groups: tuple[str, ...] | None = None
    groups_expire_ms: int | None = None
    behaviors: dict[str, BehaviorState] = field(default_factory=dict)
    version: int = 0
    """Optimistic concurrency: the writer conditions on it and stores it plus one."""
    applied_sequence: int | None = None
    complete_from_ms: int | None = None
    """Not stored. Windows starting before it may miss observations (see the module notes); None: none."""
    resumed: bool = False
    """Not stored. Loaded from an item: the first observation evaluated sets complete_from_ms."""

    def copy(self) -> DeviceState:
        return DeviceState(self.device, self.last_report_id, self.last_seen_ms, self.groups,
                           self.groups_expire_ms, {name: state.copy() for name, state in self.behaviors.items()},
                           self.version, self.applied_sequence, self.complete_from_ms, self.resumed)

    def to_item(self) -> dict[str, Any]:
        """DynamoDB-ready plain types; the sequence is a string (it has more digits than a Number holds)."""
        item: dict[str, Any] = {"device": self.device, "version": self.version}
        optional = {"lastReportId": self.last_report_id, "lastSeenMs": self.last_seen_ms,
                    "groups": list(self.groups) if self.groups is not None else None,
                    "groupsExpireMs": self.groups_expire_ms,
                    "appliedSequence": str(self.applied_sequence) if self.applied_sequence is not None else None}
        item.update({key: value for key, value in optional.items() if value is not None})
        item["behaviors"] = {
            name: {key: getattr(state, attribute) for attribute, key, default in _BEHAVIOR_ATTRIBUTES
                   if getattr(state, attribute) != default}
            for name, state in self.behaviors.items()
        }
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> DeviceState:
        """Numbers may come back as Decimal (boto3's resource layer); they are turned into int."""
        behaviors = {}
        for name, stored in item.get("behaviors", {}).items():
            state = BehaviorState()
            for attribute, key, default in _BEHAVIOR_ATTRIBUTES:
                value = stored.get(key, default)
                if value is not None and not isinstance(value, bool | str):
                    value = int(value)
                setattr(state, attribute, value)
            behaviors[name] = state
        groups = item.get("groups")
        return cls(
            device=item["device"],
            last_report_id=_optional_int(item.get("lastReportId")),
            last_seen_ms=_optional_int(item.get("lastSeenMs")),
            groups=tuple(groups) if groups is not None else None,
            groups_expire_ms=_optional_int(item.get("groupsExpireMs")),
            behaviors=behaviors,
            version=int(item.get("version", 0)),
            applied_sequence=_optional_int(item.get("appliedSequence")),
            resumed=True,
        )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Evaluation:
    state: DeviceState
    events: tuple[dict[str, Any], ...]
    """ViolationEvents to publish, in order (suppressed behaviors left out)."""
    changed: bool
    """Whether the state must be written (the module notes say what is carried in memory instead)."""


# --- the compiled profile --------------------------------------------------------------------------------

_REPORT_FIELDS: Final[Mapping[str, str]] = {
    "aws:listening-tcp-ports": "tcp_ports", "aws:listening-udp-ports": "udp_ports",
    "aws:num-listening-tcp-ports": "num_tcp_ports", "aws:num-listening-udp-ports": "num_udp_ports",
    "aws:num-established-tcp-connections": "num_established", "aws:destination-ip-addresses": "destination_ips",
    "aws:all-bytes-in": "bytes_in", "aws:all-bytes-out": "bytes_out",
    "aws:all-packets-in": "packets_in", "aws:all-packets-out": "packets_out",
}
_EVENT_COUNTS: Final[Mapping[str, ObservationKind]] = {
    "aws:num-authorization-failures": ObservationKind.AUTH_FAILURE,
    "aws:num-connection-attempts": ObservationKind.CONNECT,
    "aws:num-disconnects": ObservationKind.DISCONNECT,
    "aws:num-messages-sent": ObservationKind.MESSAGE,
}


def _source_ip(observation: Observation) -> tuple[IpAddress, ...] | None:
    # The records decoder validates addresses; one AWS could not parse still counts as an attempt.
    try:
        return (ipaddress.ip_address(observation.source_ip),) if observation.source_ip else None
    except ValueError:
        return None


def _report_value(attribute: str) -> Callable[[Observation], Any]:
    return lambda observation: getattr(observation.report, attribute)


@dataclass(frozen=True)
class _Rule:
    behavior: EngineBehavior
    document: dict[str, Any]
    violating: Callable[[Any], bool]
    value_of: Callable[[Observation], Any]
    """The datapoint (point metrics) or the amount to add (windowed) an observation gives, or None."""
    duration_ms: int | None
    zero_when_empty: bool


def _violating_test(behavior: EngineBehavior) -> Callable[[Any], bool]:
    if behavior.count is not None:
        limit = behavior.count
        normal: Callable[[int], bool] = {
            "less-than": lambda value: value < limit, "less-than-equals": lambda value: value <= limit,
            "greater-than": lambda value: value > limit, "greater-than-equals": lambda value: value >= limit,
        }[behavior.operator]
        return lambda value: not normal(value)
    if behavior.ports is not None:
        ports = frozenset(behavior.ports)
        if behavior.operator == "in-port-set":
            return lambda values: any(port not in ports for port in values)
        return lambda values: any(port in ports for port in values)
    networks = tuple(ipaddress.ip_network(cidr) for cidr in behavior.cidrs or ())
    if behavior.operator == "in-cidr-set":
        return lambda values: any(not any(address in network for network in networks) for address in values)
    return lambda values: any(address in network for address in values for network in networks)


def _settled_by_lower_bound(behavior: EngineBehavior, partial_sum: int) -> bool | None:
    """The window's verdict (True: violating) if a sum of at least ``partial_sum`` settles it, else None."""
    limit, operator = behavior.count or 0, behavior.operator
    if operator.startswith("less-than"):  # normal while small: a sum past the bound can only stay past it
        return True if partial_sum > limit or (operator == "less-than" and partial_sum == limit) else None
    return False if partial_sum > limit or (operator == "greater-than-equals" and partial_sum == limit) else None


@dataclass(frozen=True)
class _Plan:
    rules: Mapping[ObservationKind, tuple[_Rule, ...]]
    """The rules each kind of observation feeds."""
    by_name: Mapping[str, _Rule]


def _compile(profile: EngineProfile) -> _Plan:
    plan: dict[ObservationKind, list[_Rule]] = {kind: [] for kind in ObservationKind}
    for behavior in profile.behaviors:
        metric = behavior.metric
        kind: ObservationKind
        value_of: Callable[[Observation], Any]
        if metric in _REPORT_FIELDS:
            kind, value_of = ObservationKind.REPORT, _report_value(_REPORT_FIELDS[metric])
        elif metric in _EVENT_COUNTS:
            kind, value_of = _EVENT_COUNTS[metric], lambda _observation: 1
        elif metric == "aws:source-ip-address":
            kind, value_of = ObservationKind.CONNECT, _source_ip
        else:  # aws:message-byte-size, the only other metric a profile can hold
            kind, value_of = ObservationKind.MESSAGE, lambda observation: observation.message_bytes
        duration_ms = behavior.duration_seconds * 1000 if behavior.duration_seconds is not None else None
        plan[kind].append(_Rule(behavior, behavior.to_document(), _violating_test(behavior), value_of,
                                duration_ms, zero_when_empty=metric not in DEVICE_METRIC_KINDS))
    return _Plan({kind: tuple(rules) for kind, rules in plan.items()},
                 {rule.behavior.name: rule for rules in plan.values() for rule in rules})


_PLANS: dict[int, tuple[EngineProfile, _Plan]] = {}
_MAX_PLANS: Final = 16


def _plan(profile: EngineProfile) -> _Plan:
    cached = _PLANS.get(id(profile))
    if cached is not None and cached[0] is profile:
        return cached[1]
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    plan = _compile(profile)
    _PLANS[id(profile)] = (profile, plan)  # the profile is kept so its id cannot be reused meanwhile
    return plan


# --- evaluation ------------------------------------------------------------------------------------------


def violation_id(profile_name: str, device: str, behavior_name: str, alarm_started_ms: int) -> str:
    """Deterministic, so a re-evaluation after a failed write raises the same violation (32 hex digits,
    within the API's ``[a-zA-Z0-9-]+``, at most 128)."""
    text = f"{profile_name}\n{device}\n{behavior_name}\n{alarm_started_ms}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _metric_value(rule: _Rule, value: Any) -> dict[str, Any]:
    if rule.behavior.ports is not None:
        return {PORTS: list(value)}
    if rule.behavior.cidrs is not None:
        return {CIDRS: [f"{address}/{address.max_prefixlen}" for address in value]}
    return {COUNT: value}


class _Run:
    """One evaluation: the working copy of the state, the events raised and whether a write is due."""

    def __init__(self, profile: EngineProfile, state: DeviceState) -> None:
        self.profile = profile
        self.state = state
        self.events: list[dict[str, Any]] = []
        self.changed = False

    def event(self, rule: _Rule, behavior_state: BehaviorState, event_type: str, at_ms: int, value: Any) -> None:
        """Queue a ViolationEvent; ``value`` is the datapoint (None: the event has no metricValue)."""
        if rule.behavior.suppress_alerts:
            return
        event: dict[str, Any] = {
            "violationId": behavior_state.violation_id, "thingName": self.state.device,
            "securityProfileName": self.profile.profile_name, "behavior": rule.document,
            "violationEventType": event_type, "violationEventTime": at_ms,
        }
        if value is not None:
            event["metricValue"] = _metric_value(rule, value)
        self.events.append(event)

    def datapoint(self, rule: _Rule, behavior_state: BehaviorState, violating: bool, at_ms: int, value: Any) -> None:
        behavior = rule.behavior
        if not behavior_state.in_alarm:
            if not violating:
                if behavior_state.violating_streak:
                    behavior_state.violating_streak = 0
                    self.changed = True
                return
            self.changed = True
            behavior_state.violating_streak += 1
            if behavior_state.violating_streak >= behavior.datapoints_to_alarm:
                behavior_state.in_alarm, behavior_state.alarm_started_ms = True, at_ms
                behavior_state.violation_id = violation_id(self.profile.profile_name, self.state.device,
                                                           behavior.name, at_ms)
                behavior_state.violating_streak = 0
                self.event(rule, behavior_state, "in-alarm", at_ms, value)
            return
        if violating:
            if behavior_state.normal_streak:
                behavior_state.normal_streak = 0
                self.changed = True
            return
        self.changed = True
        behavior_state.normal_streak += 1
        if behavior_state.normal_streak >= behavior.datapoints_to_clear:
            self.event(rule, behavior_state, "alarm-cleared", at_ms, value)
            behavior_state.in_alarm, behavior_state.violation_id, behavior_state.alarm_started_ms = False, None, None
            behavior_state.normal_streak = 0

    def window(self, rule: _Rule, behavior_state: BehaviorState, at_ms: int, amount: int) -> None:
        duration = rule.duration_ms or 1
        start = at_ms - at_ms % duration
        current = behavior_state.window_start_ms
        if current is not None and start < current:
            return  # late for a window already closed
        if current is not None and start > current:
            self.close_window(rule, behavior_state, current, start, at_ms)
        if behavior_state.window_start_ms != start:
            behavior_state.window_start_ms, behavior_state.window_sum = start, 0
            behavior_state.window_decided = False
        behavior_state.window_sum += amount
        if not behavior_state.window_decided:
            verdict = _settled_by_lower_bound(rule.behavior, behavior_state.window_sum)
            if verdict is not None:
                # Not a reason to write by itself: a process that reloads the window re-takes the same
                # verdict from the stored sum, or the datapoint changed a streak and is written anyway.
                behavior_state.window_decided = True
                self.datapoint(rule, behavior_state, verdict, at_ms, behavior_state.window_sum)

    def close_window(self, rule: _Rule, behavior_state: BehaviorState, start: int, next_start: int,
                     at_ms: int) -> None:
        """Take the datapoints of the window at ``start`` and of the empty windows before ``next_start``."""
        duration = rule.duration_ms or 1
        complete_from = self.state.complete_from_ms
        if not behavior_state.window_decided and (complete_from is None or start >= complete_from):
            total = behavior_state.window_sum
            self.datapoint(rule, behavior_state, rule.violating(total), at_ms, total)
        if not rule.zero_when_empty:
            return
        first_empty = start + duration
        if complete_from is not None:  # empty-looking windows before it may have had unseen events
            first_empty = max(first_empty, -(-complete_from // duration) * duration)
        empty_windows = min(max(0, (next_start - first_empty) // duration), MAX_EMPTY_WINDOWS)
        zero_violates = rule.violating(0)
        for _ in range(empty_windows):
            self.datapoint(rule, behavior_state, zero_violates, at_ms, 0)

    def invalidate_all(self, at_ms: int) -> None:
        rules = _plan(self.profile).by_name
        for name, behavior_state in self.state.behaviors.items():
            if behavior_state.in_alarm and name in rules:
                self.event(rules[name], behavior_state, "alarm-invalidated", at_ms, None)
        if self.state.behaviors:
            self.state.behaviors = {}
            self.changed = True


def evaluate(profile: EngineProfile, state: DeviceState, observations: Sequence[Observation]) -> Evaluation:
    """Apply one device's observations, in stream order, to its state. The input state is not modified.

    A profile that targets thing groups needs ``state.groups`` looked up first (ValueError otherwise); a
    device outside the groups has its alarms invalidated and is not evaluated.
    """
    run = _Run(profile, state.copy())
    working, plan = run.state, _plan(profile)
    if not _prepare(run, plan, observations):
        return Evaluation(working, tuple(run.events), run.changed)
    latest_ms = working.last_seen_ms
    for observation in observations:
        if not _is_new(working, observation):
            continue
        at_ms = observation.at_ms
        if working.last_seen_ms is None or at_ms >= working.last_seen_ms + HEARTBEAT_MS:
            working.last_seen_ms = at_ms
            run.changed = True
        latest_ms = at_ms if latest_ms is None else max(latest_ms, at_ms)
        for rule in plan.rules[observation.kind]:
            value = rule.value_of(observation)
            if value is None:
                continue
            behavior_state = working.behaviors.get(rule.behavior.name)
            if behavior_state is None:
                behavior_state = working.behaviors[rule.behavior.name] = BehaviorState()
            if rule.duration_ms is None:
                run.datapoint(rule, behavior_state, rule.violating(value), at_ms, value)
            else:
                run.window(rule, behavior_state, at_ms, value)
    if run.changed:
        working.last_seen_ms = latest_ms  # free to refine while writing anyway
    return Evaluation(working, tuple(run.events), run.changed)


def _prepare(run: _Run, plan: _Plan, observations: Sequence[Observation]) -> bool:
    """Settle what precedes the observations; False when the profile does not apply to the device."""
    working = run.state
    if working.resumed and observations:
        working.complete_from_ms = min(observation.at_ms for observation in observations) + 1
        working.resumed = False
    for name in [name for name in working.behaviors if name not in plan.by_name]:
        del working.behaviors[name]  # dropped from the profile
        run.changed = True
    if not run.profile.target_groups:
        return True
    if working.groups is None:
        raise ValueError(f"{working.device}: thing groups unknown; look them up before evaluating a profile "
                         "that targets thing groups")
    if set(run.profile.target_groups) & set(working.groups):
        return True
    if observations:
        run.invalidate_all(max(observation.at_ms for observation in observations))
    return False


def _is_new(state: DeviceState, observation: Observation) -> bool:
    """Whether an observation was not applied before (by stream sequence, and for reports by report id);
    records it as applied."""
    if observation.sequence is not None:
        if state.applied_sequence is not None and observation.sequence <= state.applied_sequence:
            return False
        state.applied_sequence = observation.sequence
    if observation.kind is ObservationKind.REPORT:
        report = observation.report
        if report is None or (state.last_report_id is not None and report.report_id <= state.last_report_id):
            return False
        state.last_report_id = report.report_id
    return True


def invalidate_silent(profile: EngineProfile, state: DeviceState, now_ms: int,
                      silence_ms: int = SILENCE_MS) -> Evaluation:
    """The sweep's verdict: alarm-invalidated for every alarm of a device silent for ``silence_ms``.

    The stored ``last_seen_ms`` may be up to :data:`HEARTBEAT_MS` older than the last observation, so the
    device counts as silent once ``silence_ms`` plus that margin has passed: at most a heartbeat late.
    """
    working = state.copy()
    run = _Run(profile, working)
    if working.last_seen_ms is None or now_ms - working.last_seen_ms < silence_ms + HEARTBEAT_MS:
        return Evaluation(working, (), False)
    if any(behavior_state.in_alarm for behavior_state in working.behaviors.values()):
        run.invalidate_all(now_ms)
    return Evaluation(working, tuple(run.events), run.changed)

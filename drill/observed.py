"""What a drill run saw: containments, mitigation tasks, the emulator's final state, and the run's
working state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from drill.emulator import Clients, Plumbing
from drill.logs import LogSink, Timeline
from drill.scenario import Alert, Scenario


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


@dataclass(frozen=True)
class AuditMitigationTask:
    task_id: str
    audit_task_id: str
    actions_by_check: dict[str, tuple[str, ...]]


@dataclass
class Observed:
    """What happened, as the handlers reported it and the emulator's state shows it."""

    contained: dict[str, Containment] = field(default_factory=dict)
    """Thing -> how and how fast it was first contained."""
    containments: list[str] = field(default_factory=list)
    """The thing of every alert the intake answered by containing it (a thing twice: contained twice)."""
    bulk_contained: dict[str, str] = field(default_factory=dict)
    """Storm device -> the intake's outcome for its alert."""
    mitigation_tasks: list[MitigationTask] = field(default_factory=list)
    """StartDetectMitigationActionsTask requests the intake made, in order."""
    audit_mitigation_tasks: list[AuditMitigationTask] = field(default_factory=list)
    """StartAuditMitigationActionsTask requests the intake made, in order."""
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
    notification_messages: list[str] = field(default_factory=list)
    """Their texts, in the same order."""
    suppressions: list[str] = field(default_factory=list)
    """``check/certificate id`` of every audit suppression the provider created."""
    shadows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Thing -> desired state at the end."""
    left_in_intake_queue: int = 0
    quarantine_policy_attached: bool = False


@dataclass(frozen=True)
class EngineEvent:
    """A ViolationEvent the fleetguard Detect engine published to the alert topic."""

    thing_name: str
    behavior: str
    event_type: str
    violation_id: str
    profile: str


@dataclass
class EngineBatch:
    """One invocation of the engine's stream handler."""

    name: str
    records: int
    failed: list[str]
    """Sequence numbers the handler reported as batch item failures."""
    events: list[EngineEvent] = field(default_factory=list)


@dataclass
class EngineObserved:
    """What the Detect engine part saw (``drill/engine.py``)."""

    batches: list[EngineBatch] = field(default_factory=list)
    contained: dict[str, Containment] = field(default_factory=dict)
    """Thing -> how and how fast the intake first contained it."""
    containments: list[str] = field(default_factory=list)
    """The thing of every alert the intake answered by containing it."""
    ignored: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    quarantined: frozenset[str] = frozenset()
    """The part's devices in the quarantine group at the end."""
    notifications: list[str] = field(default_factory=list)
    """Subjects of the responders notifications about the part's devices."""
    dead_letters: list[str] = field(default_factory=list)
    """Bodies in the engine's dead-letter queue."""
    in_alarm: frozenset[str] = frozenset()
    """The part's devices with a behavior in alarm in the engine's state table at the end."""


@dataclass
class DrillReport:
    scenario: Scenario
    observed: Observed
    timeline: Timeline
    emulator_url: str
    failures: list[str]
    ops_center: list[str] = field(default_factory=list)
    """The OpsCenter part's summary lines (``drill/opscenter.py``)."""
    engine: EngineObserved | None = None
    """The Detect engine part's observation (``drill/engine.py``)."""

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


@dataclass
class Run:
    scenario: Scenario
    clients: Clients
    plumbing: Plumbing
    timeline: Timeline
    logs: LogSink
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

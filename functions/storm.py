"""Alert storms: many devices alarming on the same behavior at once, answered in bulk.

A storm is N or more distinct in-alarm violations of one (security profile, behavior) within one batch
of the intake queue (N = STORM_THRESHOLD). The event source mapping's batching window is the storm
window, so a storm arrives together. Instead of one incident and three registry calls per device, a
storm gets:

* containment in bulk: Device Defender StartDetectMitigationActionsTask with the add-to-quarantine
  mitigation action, at most 25 violation ids per task (10,000 devices = 400 calls);
* one fleet incident per (security profile, behavior, storm period), the devices listed on it as
  related items (up to a per-batch budget) and each batch summarised in a timeline note; or, when
  Incident Manager is off, one readable notification per storm and batch on the responders topic.

Idempotency, so that a redelivered record (a failed chunk, a throttled call, a crash mid-storm) is safe:

* Task ids and client request tokens are digests of the task's sorted violation ids: the same chunk
  always gets the same task id. TaskAlreadyExistsException therefore means this chunk was already
  started, and counts as success. A redelivered subset forms different chunks and new tasks; adding a
  device to a group it is already in changes nothing.
* The fleet incident's clientToken is a digest of profile, behavior and the storm period (the hour of
  the earliest violation in the batch), and its request is identical for every batch, so later batches
  and redeliveries fold into the same incident. A storm that crosses an hour boundary may open a
  second incident; that bounds how long one incident keeps absorbing unrelated storms.
* Storm membership is decided per batch. Records that failed together become visible again together
  and normally return as a storm; a remainder below the threshold takes the per-device path (at most
  threshold - 1 incidents, each device contained again, which changes nothing for a quarantined one).

Violations of the fleetguard Detect engine (its own profile name, ``ENGINE_PROFILE_NAMES``) have ids
Device Defender never issued, so a mitigation task cannot target them. Their storms are contained one
device at a time with the same confirmed containment as a single alarm, paced at ``CONTAINMENT_RATE``
devices per second per invocation (the stack divides AddThingToThingGroup's account quota among the
intake's concurrent invocations). Devices the invocation has no time left for fail their records, which
the queue delivers again; a device already contained is contained again harmlessly. The fleet incident
or notification is the same as for a Device Defender storm.

The response plan should not set a template dedupeString: it is static (StartIncident cannot override
it), so it would fold every incident of the plan, single devices included, into whichever is open, and
the runbook of a folded incident is not there to contain that device. Folding is done with clientTokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from functions.aws_clients import Client
from functions.incidents import (
    AccountScope,
    add_device_request,
    digest,
    epoch_ms_to_datetime,
    iso_time,
    storm_incident_request,
    timeline_note_request,
)
from functions.messages import ViolationEvent, is_thing_name

MAX_VIOLATIONS_PER_TASK: Final = 25
"""StartDetectMitigationActionsTask target.violationIds holds at most 25 ids."""
STORM_PERIOD: Final = timedelta(hours=1)
DEVICES_LISTED_PER_BATCH: Final = 20
"""Devices added to the fleet incident's related items per batch (one UpdateRelatedItems call each);
the others are named in the batch's timeline note."""
DEVICES_NAMED_IN_SUMMARY: Final = 200
TASK_ID_PREFIX: Final = "fleetguard-storm-"


@dataclass(frozen=True, order=True)
class StormKey:
    security_profile_name: str
    behavior_name: str

    def __str__(self) -> str:
        return f"{self.behavior_name} of security profile {self.security_profile_name}"


def storm_key(violation: ViolationEvent) -> StormKey:
    return StormKey(violation.security_profile_name, violation.behavior.name)


def find_storms(violations: Iterable[ViolationEvent], threshold: int) -> dict[StormKey, list[ViolationEvent]]:
    """In-alarm violations grouped by (profile, behavior), for the groups with at least ``threshold``
    distinct violation ids. Each group keeps one violation per id, in order of arrival."""
    groups: dict[StormKey, dict[str, ViolationEvent]] = {}
    for violation in violations:
        if violation.is_in_alarm:
            groups.setdefault(storm_key(violation), {}).setdefault(violation.violation_id, violation)
    return {key: list(members.values()) for key, members in groups.items() if len(members) >= threshold}


def task_chunks(violation_ids: Iterable[str]) -> list[tuple[str, ...]]:
    """Distinct violation ids, sorted, in chunks of at most 25: the same ids always give the same chunks."""
    ordered = sorted(set(violation_ids))
    return [tuple(ordered[i : i + MAX_VIOLATIONS_PER_TASK]) for i in range(0, len(ordered), MAX_VIOLATIONS_PER_TASK)]


def task_id(chunk: Sequence[str]) -> str:
    """``fleetguard-storm-<sha256>``: 81 characters of [a-z0-9-], within the API's [a-zA-Z0-9_-]{1,128}."""
    return TASK_ID_PREFIX + digest(*chunk)


def client_request_token(chunk: Sequence[str]) -> str:
    """The chunk's digest: 64 characters of [0-9a-f], within the API's 1-64 of [a-zA-Z0-9-_]."""
    return digest(*chunk)


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str
    violation_ids: tuple[str, ...]
    error: str | None = None


def start_quarantine_tasks(iot: Client, chunks: Sequence[tuple[str, ...]], action_name: str) -> list[TaskOutcome]:
    """One StartDetectMitigationActionsTask per chunk. A chunk's failure (after the client's retries) is
    recorded in its outcome and does not stop the others."""
    outcomes = []
    for chunk in chunks:
        identifier = task_id(chunk)
        try:
            iot.start_detect_mitigation_actions_task(
                taskId=identifier,
                target={"violationIds": list(chunk)},
                actions=[action_name],
                # Quarantine holds even if an alarm has cleared by the time the task runs, as on the
                # per-device path.
                includeOnlyActiveViolations=False,
                clientRequestToken=client_request_token(chunk),
            )
        except iot.exceptions.TaskAlreadyExistsException:
            # A redelivered batch: the task this chunk needs already exists, which is what we wanted.
            outcomes.append(TaskOutcome(identifier, chunk))
        except Exception as error:  # any failure is reported per record through the batch response
            outcomes.append(TaskOutcome(identifier, chunk, error=describe(error)))
        else:
            outcomes.append(TaskOutcome(identifier, chunk))
    return outcomes


@dataclass(frozen=True)
class DeviceContainment:
    """One device of a storm contained on its own (violations no mitigation task accepts)."""

    thing_name: str
    violation_ids: tuple[str, ...]
    registered: bool = True
    error: str | None = None


@dataclass(frozen=True)
class Pace:
    """How fast one invocation may contain devices one by one, and when it must stop to answer in time."""

    per_second: int
    time_left_ms: Callable[[], int]
    """The invocation's remaining time (the Lambda context's)."""
    reserve_ms: int = 10_000
    """Time kept for the rest of the batch (the fleet incident, notices, the batch response)."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


DEFERRED: Final = "no time left in this invocation at the containment rate; the queue delivers it again"


def contain_one_by_one(
    violations: Sequence[ViolationEvent], contain: Callable[[ViolationEvent], bool], pace: Pace
) -> list[DeviceContainment]:
    """Contain each device of ``violations`` once with ``contain`` (True: contained, False: not a
    registered thing; raising: failed), starting at most ``pace.per_second`` devices a second. Devices
    left when the invocation's time runs short are reported as failed, to be delivered again."""
    by_device: dict[str, list[ViolationEvent]] = {}
    for violation in violations:
        by_device.setdefault(violation.thing_name, []).append(violation)
    outcomes = []
    started = pace.clock()
    for index, (thing_name, members) in enumerate(sorted(by_device.items())):
        ids = tuple(violation.violation_id for violation in members)
        if pace.time_left_ms() < pace.reserve_ms:
            outcomes.append(DeviceContainment(thing_name, ids, error=DEFERRED))
            continue
        # Evenly spaced starts: a burst of registry writes would be throttled, and retries cost more.
        wait = started + index / pace.per_second - pace.clock()
        if wait > 0:
            pace.sleep(wait)
        try:
            registered = contain(members[0])
        except Exception as error:  # any failure is reported per record through the batch response
            outcomes.append(DeviceContainment(thing_name, ids, error=describe(error)))
        else:
            outcomes.append(DeviceContainment(thing_name, ids, registered=registered))
    return outcomes


@dataclass
class StormResponse:
    """What was done for one storm in one batch, and which of its violations must be retried."""

    key: StormKey
    violations: list[ViolationEvent]
    tasks: list[TaskOutcome]
    incident_record_arn: str | None = None
    error: str | None = None
    """A failure that applies to every violation of the storm (the incident or notification)."""
    warnings: list[str] = field(default_factory=list)
    devices: list[DeviceContainment] = field(default_factory=list)
    """Devices contained one by one, for a storm no mitigation task can target (empty otherwise)."""

    def __post_init__(self) -> None:
        self._failed = {
            violation_id: f"mitigation task {task.task_id} failed: {task.error}"
            for task in self.tasks if task.error is not None for violation_id in task.violation_ids
        }
        self._failed.update({
            violation_id: f"containing {device.thing_name} failed: {device.error}"
            for device in self.devices if device.error is not None for violation_id in device.violation_ids
        })

    def failure_for(self, violation_id: str) -> str | None:
        if self.error is not None:
            return self.error
        return self._failed.get(violation_id)

    @property
    def period_start(self) -> datetime:
        earliest = min(violation.event_time_ms for violation in self.violations)
        period = int(STORM_PERIOD.total_seconds() * 1000)
        return epoch_ms_to_datetime(earliest - earliest % period)

    @property
    def thing_names(self) -> list[str]:
        return sorted({violation.thing_name for violation in self.violations})

    def summary(self, group_name: str) -> str:
        """Readable account of this batch of the storm, for responders."""
        times = [violation.event_time_ms for violation in self.violations]
        started = [task for task in self.tasks if task.error is None]
        failed = [task for task in self.tasks if task.error is not None]
        things = self.thing_names
        named = things[:DEVICES_NAMED_IN_SUMMARY]
        lines = [
            f"Alert storm: {len(self.violations)} in-alarm violations of behavior {self.key.behavior_name} "
            f"of security profile {self.key.security_profile_name} on {len(things)} device(s), "
            f"between {iso_time(epoch_ms_to_datetime(min(times)))} and {iso_time(epoch_ms_to_datetime(max(times)))}.",
        ]
        if self.devices:
            contained = [device for device in self.devices if device.error is None and device.registered]
            unregistered = [device for device in self.devices if device.error is None and not device.registered]
            retried = [device for device in self.devices if device.error is not None]
            lines.append(
                f"Containment device by device (fleetguard engine violations, which Device Defender mitigation "
                f"tasks do not accept): {len(contained)} of {len(self.devices)} device(s) confirmed in thing "
                f"group {group_name}, {len(unregistered)} not registered, {len(retried)} to be retried from "
                "the queue."
            )
        else:
            lines.append(
                f"Containment in bulk: {len(started)} of {len(self.tasks)} Device Defender mitigation task(s) "
                f"started to add the devices to thing group {group_name}."
            )
        if failed:
            lines.append(
                f"{len(failed)} task(s) failed and will be retried from the queue: "
                + "; ".join(f"{task.task_id}: {task.error}" for task in failed)
            )
        if self.tasks:
            lines.append("Tasks: " + ", ".join(task.task_id for task in self.tasks))
        more = f" and {len(things) - len(named)} more" if len(things) > len(named) else ""
        lines.append("Devices: " + ", ".join(named) + more)
        return "\n".join(lines)


def respond_to_storm(
    key: StormKey,
    violations: list[ViolationEvent],
    *,
    mitigation: Client,
    action_name: str,
    announce: Callable[[StormResponse], None],
    one_by_one: Callable[[Sequence[ViolationEvent]], list[DeviceContainment]] | None = None,
) -> StormResponse:
    """Contain the storm's devices in bulk (or with ``one_by_one`` when no mitigation task accepts its
    violations), then ``announce`` the storm (the fleet incident, or a responders notification);
    failures are recorded in the response, never raised."""
    if one_by_one is not None:
        response = StormResponse(key, violations, [], devices=one_by_one(violations))
    else:
        chunks = task_chunks(violation.violation_id for violation in violations)
        response = StormResponse(key, violations, start_quarantine_tasks(mitigation, chunks, action_name))
    try:
        announce(response)
    except Exception as error:  # any failure is reported per record through the batch response
        response.error = describe(error)
    return response


def open_fleet_incident(
    response: StormResponse,
    incidents: Client,
    *,
    response_plan_arn: str,
    impact: int,
    scope: AccountScope,
    log_group: str,
    group_name: str,
) -> None:
    """Start (or rejoin) the storm's fleet incident, list devices on it and note this batch.

    Only StartIncident failing fails the storm's records. The device list and the note are for
    responders; when one of those calls fails (a related-item limit, throttling past the retries) the
    failure is kept as a warning and the devices are still contained and named in the logs.
    """
    request = storm_incident_request(
        response.key.security_profile_name,
        response.key.behavior_name,
        response.period_start,
        response_plan_arn=response_plan_arn,
        impact=impact,
        scope=scope,
        log_group=log_group,
    )
    arn: str = incidents.start_incident(**request)["incidentRecordArn"]
    response.incident_record_arn = arn
    try:
        # A client id no thing can have has no thing ARN; the batch's note names it with the others.
        listed = [name for name in response.thing_names if is_thing_name(name)]
        for thing_name in listed[:DEVICES_LISTED_PER_BATCH]:
            incidents.update_related_items(**add_device_request(scope, arn, thing_name))
        incidents.create_timeline_event(
            **timeline_note_request(
                arn,
                response.summary(group_name),
                epoch_ms_to_datetime(max(violation.event_time_ms for violation in response.violations)),
                [task.task_id for task in response.tasks],
            )
        )
    except incidents.exceptions.ClientError as error:
        response.warnings.append(f"fleet incident {arn} not fully annotated: {describe(error)}")


def describe(error: BaseException) -> str:
    """``Code: message`` for an AWS error, else the exception's type and text."""
    details: Any = getattr(error, "response", None)
    if isinstance(details, dict) and "Error" in details:
        return f"{details['Error'].get('Code', 'Unknown')}: {details['Error'].get('Message', '')}"
    return f"{type(error).__name__}: {error}"

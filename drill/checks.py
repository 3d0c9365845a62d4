"""The drill's expectations, checked against what it observed: every difference as a readable sentence."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final

from drill.engine import DEVICES as ENGINE_DEVICES
from drill.engine import ENGINE_PROFILE, EXPECTED_EVENTS, EXPECTED_IN_ALARM_AT_END
from drill.observed import EngineObserved, Observed
from drill.scenario import AUDIT_TASK_ID, QUARANTINE_POLICY, Expectations, Scenario
from functions.containment import QUARANTINE_KEY, QUARANTINE_SHADOW_KEYS
from functions.contract_mitigation import mitigation_task_id
from functions.messages import VIOLATION_ID_PATTERN

MITIGATION_TASK_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
"""StartDetectMitigationActionsTask's taskId (iot service model, MitigationActionsTaskId)."""


def check_expectations(observed: Observed, scenario: Scenario) -> list[str]:
    """Every way the observation differs from the scenario's expectations, as readable sentences."""
    return [
        *_check_outcomes(observed, scenario.expectations),
        *_check_mitigation_tasks(observed, scenario),
        *_check_audit_mitigation_tasks(observed, scenario),
        *_check_suppressions(observed, scenario),
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


def _check_audit_mitigation_tasks(observed: Observed, scenario: Scenario) -> list[str]:
    """One task per mitigated check of the audit, named by the audit task and the check."""
    wanted = sorted(mitigation_task_id(AUDIT_TASK_ID, check) for check in scenario.expectations.audit_mitigations)
    made = sorted(task.task_id for task in observed.audit_mitigation_tasks)
    if made != wanted:
        return [f"audit mitigation tasks: expected {wanted}, got {made}"]
    return []


def _check_suppressions(observed: Observed, scenario: Scenario) -> list[str]:
    """Every declared suppression was created, and the checks it silences got no task and no mention."""
    failures: list[str] = []
    declared = sorted(f"{suppression.check}/{suppression.certificate_id}" for suppression in scenario.suppressions)
    if sorted(observed.suppressions) != declared:
        failures.append(f"audit suppressions: expected {declared}, got {sorted(observed.suppressions)}")
    for check in sorted(scenario.expectations.suppressed_checks):
        if any(check in task.actions_by_check for task in observed.audit_mitigation_tasks):
            failures.append(f"audit suppressions: a mitigation task was started for {check}, all of whose findings "
                            "are suppressed")
        if any(check in message for message in observed.notification_messages):
            failures.append(f"audit suppressions: a responders notification mentions {check}, all of whose "
                            "findings are suppressed")
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


def check_engine(observed: EngineObserved) -> list[str]:
    """Every way the Detect engine part differs from what it must show (``drill/engine.py``)."""
    failures = [f"engine batch {batch.name!r}: records reported failed: {batch.failed}"
                for batch in observed.batches if batch.failed]
    published = [frozenset((event.thing_name, event.behavior, event.event_type) for event in batch.events)
                 for batch in observed.batches]
    if published != list(EXPECTED_EVENTS):
        failures.append(f"engine events per batch: expected {_events(EXPECTED_EVENTS)}, got {_events(published)}")
    events = [event for batch in observed.batches for event in batch.events]
    failures += [f"engine event {event.violation_id} of {event.thing_name}: expected security profile "
                 f"{ENGINE_PROFILE}, got {event.profile}" for event in events if event.profile != ENGINE_PROFILE]
    failures += [f"engine event of {event.thing_name}: violation id {event.violation_id!r} does not match "
                 f"{VIOLATION_ID_PATTERN.pattern}" for event in events
                 if not VIOLATION_ID_PATTERN.fullmatch(event.violation_id)]
    ids: dict[tuple[str, str], set[str]] = {}
    for event in events:
        ids.setdefault((event.thing_name, event.behavior), set()).add(event.violation_id)
    failures += [f"engine violation of {device} ({behavior}): its events carry different ids {sorted(found)}"
                 for (device, behavior), found in ids.items() if len(found) > 1]
    devices = frozenset(ENGINE_DEVICES)
    if set(observed.contained) != devices or sorted(observed.containments) != sorted(devices):
        failures.append(f"engine part: expected the intake to contain each of {_names(devices)} once, got "
                        f"{sorted(observed.containments)}")
    if observed.quarantined != devices:
        failures.append(f"engine part, quarantine group: expected {_names(devices)}, "
                        f"got {_names(observed.quarantined)}")
    cleared = [label for label, reason in observed.ignored.items() if "alarm-cleared" not in reason]
    if len(observed.ignored) != 1 or cleared:
        failures.append(f"engine part, ignored alerts: expected the alarm-cleared event only, got {observed.ignored}")
    if observed.failures:
        failures.append(f"engine part, intake failures: {observed.failures}")
    contained_notices = sorted(subject for subject in observed.notifications if " contained " in subject)
    if len(contained_notices) != len(devices) or not all(any(device in subject for subject in contained_notices)
                                                         for device in devices):
        failures.append(f"engine part, responders notifications: expected one 'contained' per device, got "
                        f"{observed.notifications}")
    if observed.dead_letters:
        failures.append(f"engine dead-letter queue: expected empty, got {observed.dead_letters}")
    if observed.in_alarm != EXPECTED_IN_ALARM_AT_END:
        failures.append(f"engine state: expected in alarm {_names(EXPECTED_IN_ALARM_AT_END)}, "
                        f"got {_names(observed.in_alarm)}")
    return failures


def _events(batches: Iterable[frozenset[tuple[str, str, str]]]) -> list[list[str]]:
    return [sorted(" ".join(event) for event in batch) for batch in batches]

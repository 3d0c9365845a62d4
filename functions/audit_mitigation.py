"""Audit mitigation: Device Defender's mitigation actions applied to an audit's non-compliant checks.

For each check of a COMPLETED audit that ``AUDIT_MITIGATIONS`` maps and that reported non-compliant
findings not all suppressed (Device Defender skips suppressed findings, so a task would do nothing):

* automatic: StartAuditMitigationActionsTask for the audit task and that check, named by
  ``mitigation_task_id`` with a client token from the same pair. A redelivered notification, or the same
  one twice in a batch, names the same task: Device Defender answers TaskAlreadyExistsException (or
  repeats its answer for the repeated token) and starts nothing. Either way the task is then read back
  with DescribeAuditMitigationActionsTask before it is reported; a task still not visible after a few
  short pauses fails the record, whose redelivery finds it.
* approval required: nothing starts. The report names the Automation document and the parameters a
  responder runs it with; the document starts the same task id, so approving twice, or after the
  mapping changed to automatic, starts nothing twice.

The report is recorded where the audit's response is: a timeline event on its incident, operational
data on its OpsItem, or lines of the responders notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aws_lambda_powertools import Logger

from functions.aws_clients import Client
from functions.contract_mitigation import (
    AUDIT_TASK_ID_PARAMETER,
    CHECK_NAME_PARAMETER,
    MITIGATION_TASK_ID_PATTERN,
    AuditMitigationConfig,
    CheckActions,
    mitigation_task_id,
)
from functions.incidents import digest, epoch_ms_to_datetime, timeline_note_request
from functions.messages import AuditNotification
from functions.opscenter import MAX_DATA_VALUE, SEARCHABLE

COMPLETED: Final = "COMPLETED"
"""The audit task status whose findings are mitigated; a failed or canceled audit's findings are partial."""
CONFIRM_DELAYS_SECONDS: Final = (0.2, 0.5, 1.0)
"""Pauses between reads of a task just started that Device Defender does not show yet (eventual
consistency); after the last, the record fails and its redelivery confirms the task."""
MITIGATION_KEY: Final = "fleetguard:mitigation"
"""The OpsItem's operational data key holding the mitigation report."""

logger = Logger(child=True)


def pause(seconds: float) -> None:
    """Wait between reads of a task not visible yet (module level, so tests can replace it)."""
    time.sleep(seconds)


class MitigationError(Exception):
    """A mitigation task could not be started or confirmed; the record is retried."""


@dataclass(frozen=True)
class StartedTask:
    """A mitigation task that exists, as Device Defender describes it."""

    check_name: str
    task_id: str
    actions: tuple[str, ...]
    status: str
    """DescribeAuditMitigationActionsTask's taskStatus: IN_PROGRESS, COMPLETED, FAILED or CANCELED."""
    started_now: bool
    """False when a delivery or an approval before this one had started it."""


@dataclass(frozen=True)
class PendingApproval:
    """A check whose mitigation waits for a responder to run the approval document."""

    check_name: str
    actions: tuple[str, ...]
    document_name: str
    parameters: Mapping[str, str]

    def command(self) -> str:
        values = ",".join(f"{name}={value}" for name, value in self.parameters.items())
        return f"aws ssm start-automation-execution --document-name {self.document_name} --parameters {values}"


@dataclass(frozen=True)
class MitigationReport:
    audit_task_id: str
    started: tuple[StartedTask, ...]
    pending: tuple[PendingApproval, ...]

    @property
    def empty(self) -> bool:
        return not self.started and not self.pending

    def lines(self) -> list[str]:
        """What was done and what awaits approval, for people."""
        lines = [f"Mitigation of audit task {self.audit_task_id}:"]
        # Only what every delivery of the notification finds the same: the record is written once.
        for task in self.started:
            lines.append(f"- {task.check_name}: mitigation task {task.task_id} started ({', '.join(task.actions)}); "
                         f"aws iot describe-audit-mitigation-actions-task --task-id {task.task_id}")
        for approval in self.pending:
            lines.append(f"- {approval.check_name}: {', '.join(approval.actions)} await approval; to approve, run "
                         f"{approval.command()}")
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())


def mitigable(notification: AuditNotification, config: AuditMitigationConfig) -> list[tuple[str, CheckActions]]:
    """The mapped checks of a completed audit with unsuppressed non-compliant findings, in message order."""
    if notification.task_status != COMPLETED:
        return []
    return [
        (check.check_name, config.checks[check.check_name])
        for check in notification.actionable_checks
        if check.check_name in config.checks
    ]


def start_task_request(audit_task_id: str, check_name: str, actions: tuple[str, ...]) -> dict[str, Any]:
    """StartAuditMitigationActionsTask for one check's findings of one audit; the same pair always
    builds the same request."""
    task_id = mitigation_task_id(audit_task_id, check_name)
    if not MITIGATION_TASK_ID_PATTERN.fullmatch(task_id):
        raise MitigationError(f"mitigation task id {task_id!r} does not match {MITIGATION_TASK_ID_PATTERN.pattern}")
    return {
        "taskId": task_id,
        "target": {"auditTaskId": audit_task_id},
        "auditCheckToActionsMapping": {check_name: list(actions)},
        "clientRequestToken": digest(audit_task_id, check_name),
    }


@dataclass(frozen=True)
class AuditMitigation:
    """Starts (or finds) the automatic checks' tasks and lists the checks awaiting approval."""

    config: AuditMitigationConfig
    iot: Client

    def respond(self, notification: AuditNotification) -> MitigationReport:
        started, pending = [], []
        for check_name, entry in mitigable(notification, self.config):
            if entry.approval_required:
                pending.append(self._pending(notification.task_id, check_name, entry))
            else:
                started.append(self._start(notification.task_id, check_name, entry))
        report = MitigationReport(notification.task_id, tuple(started), tuple(pending))
        if not report.empty:
            logger.info(
                "audit mitigation",
                task_id=notification.task_id,
                started=[(task.task_id, task.started_now, task.status) for task in report.started],
                awaiting_approval=[approval.check_name for approval in report.pending],
            )
        return report

    def _pending(self, audit_task_id: str, check_name: str, entry: CheckActions) -> PendingApproval:
        if self.config.document_name is None:
            raise MitigationError(f"{check_name} needs approval but no approval document is configured")
        parameters = {AUDIT_TASK_ID_PARAMETER: audit_task_id, CHECK_NAME_PARAMETER: check_name}
        return PendingApproval(check_name, entry.actions, self.config.document_name, parameters)

    def _start(self, audit_task_id: str, check_name: str, entry: CheckActions) -> StartedTask:
        request = start_task_request(audit_task_id, check_name, entry.actions)
        task_id = request["taskId"]
        try:
            self.iot.start_audit_mitigation_actions_task(**request)
            started_now = True
        except self.iot.exceptions.TaskAlreadyExistsException:
            started_now = False
        described = self._described(task_id)
        target = described.get("target", {}).get("auditTaskId")
        if target != audit_task_id:
            raise MitigationError(f"mitigation task {task_id} exists but targets audit task {target!r}")
        actions = described.get("auditCheckToActionsMapping", {}).get(check_name, list(entry.actions))
        return StartedTask(check_name, task_id, tuple(actions), str(described.get("taskStatus")), started_now)


    def _described(self, task_id: str) -> Mapping[str, Any]:
        """The task as Device Defender describes it; a task just started may not be visible at once."""
        for delay in (*CONFIRM_DELAYS_SECONDS, None):
            try:
                described: Mapping[str, Any] = self.iot.describe_audit_mitigation_actions_task(taskId=task_id)
                return described
            except self.iot.exceptions.ResourceNotFoundException:
                if delay is None:
                    break
                pause(delay)
        raise MitigationError(f"mitigation task {task_id} is not visible yet; a redelivery confirms it")


def incident_record_request(
    incident_record_arn: str, notification: AuditNotification, report: MitigationReport, event_time: datetime
) -> dict[str, Any]:
    """CreateTimelineEvent with the report; its client token derives from the incident and the audit task
    (the report's text is the same on every delivery), so a redelivery adds no second event."""
    identity = ("audit-mitigation", notification.task_id)
    return timeline_note_request(incident_record_arn, report.text(), event_time, identity)


def ops_item_record_request(ops_item_id: str, report: MitigationReport) -> dict[str, Any]:
    """UpdateOpsItem putting the report under the item's operational data (a redelivery overwrites it)."""
    return {
        "OpsItemId": ops_item_id,
        "OperationalData": {MITIGATION_KEY: {"Value": report.text()[:MAX_DATA_VALUE], "Type": SEARCHABLE}},
    }


def record_report(
    report: MitigationReport, notification: AuditNotification, record_id: str, client: Callable[[], Client]
) -> None:
    """Record a non-empty report on the audit's incident (an incident record ARN: ``client`` is Incident
    Manager's) or OpsItem (an OpsItem id: ``client`` is Systems Manager's)."""
    if report.empty:
        return
    if record_id.startswith("arn:"):
        started = epoch_ms_to_datetime(notification.task_start_time_ms)
        client().create_timeline_event(**incident_record_request(record_id, notification, report, started))
    else:
        client().update_ops_item(**ops_item_record_request(record_id, report))

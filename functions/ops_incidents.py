"""Open an OpsCenter incident: the OpsItem, its runbook execution and its escalation schedules.

Every step is safe to repeat, so a redelivered alert opens nothing twice:

1. CreateOpsItem with the alert's dedup string. While an item with that string is Open or InProgress,
   OpsCenter creates no second one and answers OpsItemAlreadyExistsException with the existing item's id
   (the botocore model declares the member); the intake continues with that item.
2. For an item that already existed, GetOpsItem: if it lists a runbook execution, none is started.
   Otherwise StartAutomationExecution with a client token derived from the dedup string (a repeated
   token starts no second execution), then UpdateOpsItem lists the execution on the item.
3. CreateSchedule per escalation stage, from the item's creation time; a schedule that exists already
   (ConflictException) is left as it is. An existing item that is no longer Open gets none: someone
   acknowledged it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from functions.aws_clients import Client
from functions.contract_opscenter import EscalationStage, OpsCenterEnvironment, parse_escalation_stages
from functions.opscenter import (
    OPEN,
    OpsItemStyle,
    automation_request,
    escalation_schedule_requests,
    record_automation_request,
    recorded_automation,
)

logger = Logger(child=True)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OpsCenterSettings:
    """The intake's OpsCenter configuration, decoded."""

    style: OpsItemStyle
    runbook_name: str
    automation_role_arn: str
    schedule_group: str
    escalation_function_arn: str
    scheduler_role_arn: str
    stages: tuple[EscalationStage, ...]

    @classmethod
    def from_environment(cls, raw: OpsCenterEnvironment[str], responders_topic_arn: str) -> OpsCenterSettings:
        return cls(
            style=OpsItemStyle(raw.category, raw.severity_by_impact, responders_topic_arn, raw.ops_item_tags),
            runbook_name=raw.runbook_name,
            automation_role_arn=raw.automation_role_arn,
            schedule_group=raw.schedule_group,
            escalation_function_arn=raw.escalation_function_arn,
            scheduler_role_arn=raw.scheduler_role_arn,
            stages=parse_escalation_stages(raw.escalation_stages),
        )


@dataclass(frozen=True)
class OpenedOpsItem:
    ops_item_id: str
    created: bool
    """False when a delivery before this one had opened it."""
    automation_id: str | None


@dataclass(frozen=True)
class OpsIncidents:
    settings: OpsCenterSettings
    ssm: Client
    scheduler: Client
    clock: Callable[[], datetime] = _now

    def open(self, request: Mapping[str, Any], dedup: str, *, run_runbook: bool) -> OpenedOpsItem:
        """Open (or find) the OpsItem ``request`` describes, start its runbook unless told not to (a storm's
        or an audit's item names no device), and schedule its escalation."""
        now = self.clock()
        try:
            ops_item_id: str = self.ssm.create_ops_item(**request)["OpsItemId"]
            created = True
        except self.ssm.exceptions.OpsItemAlreadyExistsException as error:
            ops_item_id = error.response.get("OpsItemId") or ""
            if not ops_item_id:
                raise
            created = False
        existing: Mapping[str, Any] = {}
        if not created:
            existing = self.ssm.get_ops_item(OpsItemId=ops_item_id)["OpsItem"]
        automation_id = recorded_automation(existing) if existing else None
        if run_runbook and automation_id is None:
            automation_id = self._start_runbook(ops_item_id, dedup)
        if created or existing.get("Status") == OPEN:
            opened_at = existing.get("CreatedTime", now)
            self.schedule_escalation(ops_item_id, opened_at, now)
        logger.info(
            "OpsCenter incident", ops_item_id=ops_item_id, opened_now=created, automation_id=automation_id,
        )
        return OpenedOpsItem(ops_item_id, created, automation_id)

    def _start_runbook(self, ops_item_id: str, dedup: str) -> str:
        request = automation_request(
            ops_item_id, dedup, runbook_name=self.settings.runbook_name, role_arn=self.settings.automation_role_arn
        )
        execution_id: str = self.ssm.start_automation_execution(**request)["AutomationExecutionId"]
        self.ssm.update_ops_item(**record_automation_request(ops_item_id, execution_id))
        return execution_id

    def schedule_escalation(self, ops_item_id: str, opened_at: datetime, now: datetime) -> None:
        """One schedule per stage; one that exists already is kept."""
        requests = escalation_schedule_requests(
            ops_item_id,
            self.settings.stages,
            opened_at=opened_at,
            now=now,
            group=self.settings.schedule_group,
            function_arn=self.settings.escalation_function_arn,
            role_arn=self.settings.scheduler_role_arn,
        )
        for request in requests:
            try:
                self.scheduler.create_schedule(**request)
            except self.scheduler.exceptions.ConflictException:
                logger.info("escalation stage already scheduled", schedule=request["Name"])

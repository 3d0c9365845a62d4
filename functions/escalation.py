"""Lambda handler: one escalation stage of an OpsCenter incident, invoked by its EventBridge Scheduler schedule.

OpsCenter pages nobody, so when the intake opens an OpsItem it schedules one one-time schedule per stage
(``functions/opscenter.py``: ``<OpsItem id>-<stage>`` in ESCALATION_SCHEDULE_GROUP, deleted by the scheduler
after it runs). At each stage this function reads the OpsItem:

* still Open (nobody acknowledged it): publish a readable escalation notice, with the one CLI line that
  acknowledges it, to the stage's topic; the later stages stay scheduled.
* anything else (InProgress = acknowledged, Resolved, ...): delete the later stages' schedules (one already
  gone is fine) and notify nobody.

Event (the schedule's input): {"opsItemId": str, "stage": str}; an invalid event raises ValueError naming
the field (the scheduler's retry policy then gives up: a bad input does not get better).

Environment (``functions/contract_opscenter.py``): ESCALATION_SCHEDULE_GROUP, ESCALATION_STAGES,
POWERTOOLS_SERVICE_NAME, AWS_RETRY_MODE.

AWS calls: ssm:GetOpsItem, sns:Publish (the stage's topic), scheduler:DeleteSchedule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.aws_clients import Client
from functions.contract import RequestField
from functions.contract_opscenter import (
    ESCALATION_STAGE_KEY,
    OPS_ITEM_ID_PATTERN,
    EscalationEnvironment,
    EscalationOutcome,
    EscalationStage,
    parse_escalation_stages,
)
from functions.incidents import AccountScope, fit, single_line
from functions.notices import MAX_SUBJECT
from functions.opscenter import OPEN, escalation_message, schedule_name

logger = Logger()
OUTCOME_KEY = "outcome"
DELETED_KEY = "deletedSchedules"


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = EscalationEnvironment.from_environment(os.environ)
    stages = parse_escalation_stages(config.escalation_stages)
    ops_item_id, stage = parse_event(event, stages)
    logger.append_keys(ops_item_id=ops_item_id, stage=stage.name)
    scope = AccountScope.from_function_arn(context.invoked_function_arn)
    return escalate(
        ops_item_id, stage, stages,
        ssm=aws_clients.client("ssm"), sns=aws_clients.client("sns"), scheduler=aws_clients.client("scheduler"),
        group=config.schedule_group, scope=scope,
    )


def parse_event(event: object, stages: Sequence[EscalationStage]) -> tuple[str, EscalationStage]:
    """The OpsItem id and the configured stage the event names; ValueError naming the bad field."""
    fields = (RequestField.OPS_ITEM_ID.value, ESCALATION_STAGE_KEY)
    if not isinstance(event, Mapping) or sorted(event) != sorted(fields):
        raise ValueError(f"event: expected a JSON object with exactly {', '.join(fields)}")
    ops_item_id, stage_name = event[fields[0]], event[fields[1]]
    if not isinstance(ops_item_id, str) or not OPS_ITEM_ID_PATTERN.fullmatch(ops_item_id):
        raise ValueError(
            f"{fields[0]}: expected an OpsItem id matching {OPS_ITEM_ID_PATTERN.pattern}, got {ops_item_id!r}"
        )
    stage = next((stage for stage in stages if stage.name == stage_name), None)
    if stage is None:
        names = ", ".join(stage.name for stage in stages)
        raise ValueError(f"{fields[1]}: expected a configured escalation stage ({names}), got {stage_name!r}")
    return ops_item_id, stage


def escalate(
    ops_item_id: str,
    stage: EscalationStage,
    stages: Sequence[EscalationStage],
    *,
    ssm: Client,
    sns: Client,
    scheduler: Client,
    group: str,
    scope: AccountScope,
) -> dict[str, Any]:
    """Notify ``stage`` if the OpsItem is still Open, else cancel the stages after it."""
    ops_item = ssm.get_ops_item(OpsItemId=ops_item_id)["OpsItem"]
    status = ops_item.get("Status")
    result: dict[str, Any] = {RequestField.OPS_ITEM_ID.value: ops_item_id, ESCALATION_STAGE_KEY: stage.name}
    if status == OPEN:
        subject, message = escalation_message(ops_item, stage, scope)
        sns.publish(TopicArn=stage.topic_arn, Subject=fit(single_line(subject), MAX_SUBJECT), Message=message)
        logger.info("OpsItem unacknowledged; stage notified", topic_arn=stage.topic_arn)
        return {**result, OUTCOME_KEY: EscalationOutcome.NOTIFIED.value, DELETED_KEY: []}
    later = [later for later in stages if later.minutes > stage.minutes]
    deleted = []
    for later_stage in later:
        name = schedule_name(ops_item_id, later_stage)
        try:
            scheduler.delete_schedule(GroupName=group, Name=name)
            deleted.append(name)
        except scheduler.exceptions.ResourceNotFoundException:
            logger.info("escalation schedule already gone", schedule=name)
    logger.info("OpsItem acknowledged; escalation stopped", status=status, deleted_schedules=deleted)
    return {**result, OUTCOME_KEY: EscalationOutcome.STOPPED.value, DELETED_KEY: deleted}

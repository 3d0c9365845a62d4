"""Incidents without Incident Manager: OpsCenter OpsItems, a runbook to contain the device, and escalation
through enough stages that an unacknowledged incident reaches someone else.

The stack declares its OpsCenter escalation on the EventBridge Scheduler group the intake schedules each
OpsItem's stages in: ``fleetguard:role=escalation``, with the number of stages in
``fleetguard:escalation-stages``. Tags are literals, known at preview, whereas the stages' topic ARNs (and
so the functions' environment that lists them) are not known until the topics exist; and a stage may
notify a topic another stack owns, which no resource here would show.
"""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Report, StackContext, StackResource, each, option, stack_policy
from .controls import INCIDENT_RESPONSE
from .response import RESPONSE_PLAN
from .shared_facts import ESCALATION_ROLE, ESCALATION_STAGES_TAG_KEY, HAND_RUN_DOCUMENT_ROLES, ROLE_TAG_KEY
from .tagging import tag_map
from .values import InvalidProperty, known

SCHEDULE_GROUP: Final = "aws:scheduler/scheduleGroup:ScheduleGroup"
DOCUMENT: Final = "aws:ssm/document:Document"
AUTOMATION: Final = "Automation"

OPSCENTER_SCHEMA = PolicyConfigSchema(properties={
    "minimumEscalationStages": {
        "type": "integer",
        "minimum": 0,
        "maximum": 5,
        "description": ("Escalation stages each OpsCenter incident must go through when nobody acknowledges "
                        "it (the stack's incidentResponse.opsCenter.escalation)."),
        "default": 2,
    },
})


def escalation_groups(ctx: StackContext) -> list[StackResource]:
    """The schedule groups the stack declares as its OpsCenter escalation."""
    return [group for group in ctx.of_type(SCHEDULE_GROUP)
            if tag_map(group.props.get("tags"), f"tags of {group.name}").get(ROLE_TAG_KEY) == ESCALATION_ROLE]


def stage_count(group: StackResource) -> int:
    text = known(tag_map(group.props.get("tags"), f"tags of {group.name}").get(ESCALATION_STAGES_TAG_KEY),
                 f"{ESCALATION_STAGES_TAG_KEY} tag of {group.name}")
    if not isinstance(text, str) or not text.isdigit():
        raise InvalidProperty(f"schedule group {group.name} is tagged {ROLE_TAG_KEY}={ESCALATION_ROLE} but its "
                              f"{ESCALATION_STAGES_TAG_KEY} tag is {text!r}, not a number of stages")
    return int(text)


def has_runbook(ctx: StackContext) -> bool:
    """An Automation document other than those a responder runs by hand (which contain no device)."""
    return any(
        known(document.props.get("documentType"), f"documentType of {document.name}") == AUTOMATION
        and tag_map(document.props.get("tags"), f"tags of {document.name}").get(ROLE_TAG_KEY)
        not in HAND_RUN_DOCUMENT_ROLES
        for document in ctx.of_type(DOCUMENT)
    )


def check_ops_center(ctx: StackContext, report: Report) -> None:
    if ctx.of_type(RESPONSE_PLAN):
        ctx.not_applicable("the stack opens incidents with an Incident Manager response plan")
    ctx.require_iot("opscenter-incidents-ready")
    # Config numbers arrive as JSON numbers (floats on the wire).
    minimum = int(option(ctx.config, OPSCENTER_SCHEMA, "minimumEscalationStages"))
    groups = escalation_groups(ctx)
    if not groups:
        report("no Incident Manager response plan and no OpsCenter escalation (an "
               f"aws:scheduler/scheduleGroup:ScheduleGroup tagged {ROLE_TAG_KEY}={ESCALATION_ROLE}): an alert "
               "contains the device, but nobody is made to respond")
        return
    if not has_runbook(ctx):
        report("OpsCenter incidents have no runbook (no aws:ssm/document:Document of type Automation) to contain "
               "and investigate the device")

    def check(group: StackResource) -> None:
        stages = stage_count(group)
        if stages < minimum:
            report(f"OpsCenter escalation {group.name} has {stages} stage(s); this environment requires at least "
                   f"{minimum} so an unacknowledged incident reaches someone else", group.urn)

    each(groups, report, check)


def policies() -> list[Policy]:
    return [
        stack_policy(
            name="opscenter-incidents-ready",
            description=("Without Incident Manager, alerts open OpsCenter incidents with a runbook, and an "
                         "unacknowledged incident escalates through the required number of stages."),
            severity=Severity.HIGH,
            controls=INCIDENT_RESPONSE,
            remediation_steps=(
                "Leave incidentResponse.opsCenter enabled (the default when Incident Manager is off) and list at "
                "least minimumEscalationStages stages under incidentResponse.opsCenter.escalation, e.g. the on-call "
                "engineer after 5 minutes, then the security lead after 15. The stack then declares an "
                f"EventBridge Scheduler group tagged {ROLE_TAG_KEY}={ESCALATION_ROLE} with the stage count in "
                f"{ESCALATION_STAGES_TAG_KEY}, and the incident runbook."
            ),
            check=check_ops_center,
            config_schema=OPSCENTER_SCHEMA,
        ),
    ]

"""Incident Manager: when it is used, response plans engage people and run a runbook, and escalation
plans have a second stage to escalate to."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, Severity

from .building import Report, StackContext, StackResource, each, stack_policy
from .controls import INCIDENT_RESPONSE
from .values import UNKNOWN, has_value, known, path

RESPONSE_PLAN: Final = "aws:ssmincidents/responsePlan:ResponsePlan"
CONTACT: Final = "aws:ssmcontacts/contact:Contact"
PLAN: Final = "aws:ssmcontacts/plan:Plan"
MIN_ESCALATION_STAGES: Final = 2


def check_response_plan(plan: StackResource, report: Report) -> None:
    engagements = known(plan.props.get("engagements"), f"engagements of {plan.name}")
    if not engagements:
        report(f"response plan {plan.name} has no engagements: an incident would page nobody", plan.urn)
    automations = known(path(plan.props, "action", "ssmAutomations"), f"action.ssmAutomations of {plan.name}")
    if not automations:
        report(f"response plan {plan.name} has no runbook (action.ssmAutomations is empty)", plan.urn)
    for position, automation in enumerate(automations or [], start=1):
        where = f"response plan {plan.name} action.ssmAutomations[{position}]"
        for field in ("documentName", "roleArn"):
            if not has_value(path(automation, field)):
                report(f"{where}.{field} is missing", plan.urn)
        for parameter in known(path(automation, "parameters"), f"{where}.parameters") or []:
            if not has_value(path(parameter, "values")):
                report(f"{where} parameter {path(parameter, 'name')!r} has no values (Incident Manager rejects "
                       "empty automation parameters)", plan.urn)


def check_escalation(ctx: StackContext, report: Report) -> None:
    escalations = [contact for contact in ctx.of_type(CONTACT)
                   if known(contact.props.get("type"), f"type of contact {contact.name}") == "ESCALATION"]
    if not escalations:
        report("no escalation plan (aws:ssmcontacts/contact:Contact of type ESCALATION): an unanswered page "
               "goes no further")
        return
    plans = ctx.of_type(PLAN)

    def check(contact: StackResource) -> None:
        arn = contact.props.get("arn")
        own = [plan for plan in plans
               if plan.depends_on("contactId", contact)
               or (arn not in (None, UNKNOWN) and plan.props.get("contactId") == arn)]
        stages = max((len(known(plan.props.get("stages"), f"stages of {plan.name}") or []) for plan in own),
                     default=0)
        if stages < MIN_ESCALATION_STAGES:
            report(f"escalation plan {contact.name} has {stages} stage(s); it needs at least "
                   f"{MIN_ESCALATION_STAGES} so an unacknowledged engagement escalates", contact.urn)

    each(escalations, report, check)


def check_incident_response(ctx: StackContext, report: Report) -> None:
    plans = ctx.of_type(RESPONSE_PLAN)
    if not plans and not ctx.of_type(CONTACT):
        ctx.not_applicable("the stack does not use Incident Manager (no response plan or contact)")
    each(plans, report, lambda plan: check_response_plan(plan, report))
    check_escalation(ctx, report)


def policies() -> list[Policy]:
    return [
        stack_policy(
            name="incident-response-ready",
            description=("When Incident Manager is used, every response plan engages contacts and runs an SSM "
                         "Automation runbook, and an escalation plan has at least two stages."),
            severity=Severity.HIGH,
            controls=INCIDENT_RESPONSE,
            remediation_steps=(
                "Give each response plan at least one engagement (a contact or escalation plan ARN) and an "
                "action.ssmAutomations entry with documentName, roleArn and non-empty parameter values. Add an "
                "aws:ssmcontacts/contact:Contact of type ESCALATION with an aws:ssmcontacts/plan:Plan of at least "
                "two stages (e.g. on-call engineer, then the security lead)."
            ),
            check=check_incident_response,
        ),
    ]

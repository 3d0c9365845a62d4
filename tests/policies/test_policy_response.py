"""The Incident Manager stack rule over gRPC: complete response plans and a two-stage escalation plan."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyzer import PolicyPackProcess
from tests.policies.stack_builders import (
    changed,
    compliant_stack,
    contact,
    engagement_plan,
    incident_manager,
    kms_key,
    replace,
    response_plan,
    topic,
    unknown,
    violations,
    without,
)

RULE = "incident-response-ready"
INCIDENT_TYPES = ("aws:ssmincidents/responsePlan:ResponsePlan", "aws:ssmcontacts/contact:Contact",
                  "aws:ssmcontacts/plan:Plan")


def test_a_complete_incident_manager_setup_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


@pytest.mark.parametrize(("overrides", "reported"), [
    ({"engagements": []}, "has no engagements"),
    ({"engagements": None}, "has no engagements"),
    ({"action": None}, "has no runbook"),
    ({"action": {"ssmAutomations": []}}, "has no runbook"),
    ({"action": {"ssmAutomations": [{"roleArn": "arn:aws:iam::123456789012:role/r"}]}},
     "action.ssmAutomations[1].documentName is missing"),
    ({"action": {"ssmAutomations": [{"documentName": "contain"}]}}, "action.ssmAutomations[1].roleArn is missing"),
    ({"action": {"ssmAutomations": [{"documentName": "contain", "roleArn": "arn:aws:iam::123456789012:role/r",
                                     "parameters": [{"name": "Thing", "values": []}]}]}},
     "parameter 'Thing' has no values"),
])
def test_an_incomplete_response_plan_is_blocked(pack: PolicyPackProcess, overrides: dict[str, object],
                                                reported: str) -> None:
    stack = replace(compliant_stack(), changed(response_plan(), **overrides))

    messages = violations(pack.analyze_stack(stack), RULE)

    assert len(messages) == 1
    assert reported in messages[0]


def test_engagement_arns_unknown_at_preview_still_count(pack: PolicyPackProcess) -> None:
    stack = replace(compliant_stack(), response_plan(engagements=[unknown()]))

    assert not violations(pack.analyze_stack(stack), RULE)


def test_an_unknown_engagement_list_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack(replace(compliant_stack(), response_plan(engagements=unknown()))), RULE)

    assert message.startswith("cannot verify at the update")


def test_a_one_stage_escalation_plan_is_blocked(pack: PolicyPackProcess) -> None:
    escalation = contact("security-escalation", "ESCALATION")
    stack = replace(compliant_stack(), engagement_plan(escalation, 1))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "has 1 stage(s); it needs at least 2" in message


def test_an_escalation_contact_without_a_plan_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack(without(compliant_stack(), "aws:ssmcontacts/plan:Plan")), RULE)

    assert "has 0 stage(s)" in message


def test_incident_manager_without_an_escalation_plan_is_blocked(pack: PolicyPackProcess) -> None:
    stack = [item for item in compliant_stack() if item.name != "security-escalation"]
    stack = without(stack, "aws:ssmcontacts/plan:Plan")

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no escalation plan" in message


def test_a_plan_is_matched_to_its_contact_by_arn_when_no_dependency_is_recorded(pack: PolicyPackProcess) -> None:
    escalation = contact("security-escalation", "ESCALATION")
    plan = dataclasses.replace(engagement_plan(escalation, 2), property_dependencies={})

    assert not violations(pack.analyze_stack(replace(compliant_stack(), plan)), RULE)


def test_the_rule_does_not_apply_without_incident_manager(pack: PolicyPackProcess) -> None:
    assert RULE in pack.analyze_stack(without(compliant_stack(), *INCIDENT_TYPES)).not_applicable
    assert RULE in pack.analyze_stack([kms_key(), topic()]).not_applicable


def test_contacts_alone_make_the_rule_apply(pack: PolicyPackProcess) -> None:
    contacts_only = [item for item in incident_manager()
                     if item.type != "aws:ssmincidents/responsePlan:ResponsePlan"]

    result = pack.analyze_stack(contacts_only)

    assert RULE not in result.not_applicable
    assert not violations(result, RULE)

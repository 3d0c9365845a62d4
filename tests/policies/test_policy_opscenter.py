"""The OpsCenter stack rule over gRPC: without Incident Manager, OpsCenter incidents with a runbook and
enough escalation stages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess, PreviewReport, from_registrations
from harness.mockstack import Phase, run_stack
from settings.facts import AUDIT_MITIGATION_ROLE, ON_DEMAND_AUDIT_ROLE, ROLE_TAG_KEY
from tests.conftest import prod_ops_center_overrides
from tests.policies.stack_builders import (
    compliant_stack,
    escalation_schedule_group,
    judge_shipped,
    ops_center,
    replace,
    runbook,
    unknown,
    violations,
    without,
)

RULE = "opscenter-incidents-ready"
INCIDENT_MANAGER_TYPES = ("aws:ssmincidents/responsePlan:ResponsePlan", "aws:ssmcontacts/contact:Contact",
                          "aws:ssmcontacts/plan:Plan")


def ops_center_stack() -> list[AnalyzerResource]:
    return [*without(compliant_stack(), *INCIDENT_MANAGER_TYPES), *ops_center()]


def test_a_stack_with_incident_manager_is_not_judged(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert RULE in result.not_applicable
    assert not violations(result, RULE)


def test_opscenter_incidents_with_two_stages_pass(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(ops_center_stack())

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


def test_neither_incident_manager_nor_opscenter_is_blocked(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), *INCIDENT_MANAGER_TYPES)

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no Incident Manager response plan and no OpsCenter escalation" in message


def test_a_schedule_group_without_the_role_tag_does_not_count(pack: PolicyPackProcess) -> None:
    stack = [*without(compliant_stack(), *INCIDENT_MANAGER_TYPES), runbook(), escalation_schedule_group(marked=False)]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no OpsCenter escalation" in message


@pytest.mark.parametrize("stages", ["0", "1"])
def test_fewer_than_two_stages_are_blocked(pack: PolicyPackProcess, stages: str) -> None:
    stack = replace(ops_center_stack(), escalation_schedule_group(stages))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert f"has {stages} stage(s); this environment requires at least 2" in message


def test_the_minimum_is_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({"all": "mandatory", RULE: {"minimumEscalationStages": 1}})
    stack = replace(ops_center_stack(), escalation_schedule_group("1"))

    assert not violations(pack.analyze_stack(stack), RULE)


def test_opscenter_without_a_runbook_is_blocked(pack: PolicyPackProcess) -> None:
    stack = [*without(ops_center_stack(), "aws:ssm/document:Document"), runbook("Command")]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no runbook" in message


@pytest.mark.parametrize("role", [ON_DEMAND_AUDIT_ROLE, AUDIT_MITIGATION_ROLE])
def test_a_document_a_responder_runs_by_hand_is_not_a_runbook(pack: PolicyPackProcess, role: str) -> None:
    document = runbook()
    tagged = {**document.inputs, "tags": {**document.inputs["tags"], ROLE_TAG_KEY: role}}
    audit_document = dataclasses.replace(document, inputs=tagged, outputs=tagged)
    stack = [*without(ops_center_stack(), "aws:ssm/document:Document"), audit_document]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no runbook" in message


def test_a_stage_count_that_is_not_a_number_is_blocked(pack: PolicyPackProcess) -> None:
    stack = replace(ops_center_stack(), escalation_schedule_group("two"))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "not a number of stages" in message


def test_an_unknown_stage_count_fails_closed(pack: PolicyPackProcess) -> None:
    stack = replace(ops_center_stack(), escalation_schedule_group(unknown()))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("cannot verify at the update")


# --- the program's own stacks -------------------------------------------------------------------------------


def judged(pack: PolicyPackProcess, overrides: dict[str, Any], phase: Phase) -> PreviewReport:
    return judge_shipped(pack, "prod", from_registrations(run_stack("prod", overrides, phase=phase).resources))


@pytest.mark.parametrize("phase", list(Phase))
def test_prod_without_incident_manager_passes_in_both_phases(
    packs: dict[Phase, PolicyPackProcess], phase: Phase
) -> None:
    report = judged(packs[phase], prod_ops_center_overrides(), phase)

    assert not violations(report, RULE)
    assert not report.mandatory, [f"{item.policy_name}: {item.message}" for item in report.mandatory]


def test_prod_with_one_escalation_stage_is_blocked_already_at_preview(packs: dict[Phase, PolicyPackProcess]) -> None:
    overrides = prod_ops_center_overrides()
    section = overrides["incidentResponse"]["opsCenter"]
    section["escalation"] = section["escalation"][:1]

    report = judged(packs[Phase.PREVIEW], overrides, Phase.PREVIEW)

    assert [item.message.split("\n", 1)[-1] for item in report.mandatory if item.policy_name == RULE] == [
        "OpsCenter escalation fleetguard-prod-escalation-schedules has 1 stage(s); this environment requires at "
        "least 2 so an unacknowledged incident reaches someone else"
    ]

"""The pack over both runs of ``pulumi up`` on a new stack: the preview, where every value a provider
computes is unknown, and the update, where every value is known.

At preview a rule that cannot decide reports an advisory, once per resource and rule, and never blocks;
the update enforces. A value still unknown at the update fails closed.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest

from harness.analyzer import (
    AnalyzerResource,
    EnforcementLevel,
    PolicyPackProcess,
    from_registrations,
)
from harness.mockstack import Phase, StackRun, run_stack
from tests.policies.stack_builders import (
    allow,
    changed,
    compliant_stack,
    document,
    judge_shipped,
    kms_key,
    queue,
    security_hub,
    unknown,
    without,
)

STACKS = ("dev", "prod")
WILDCARD_RULE = "iam-no-wildcard-actions"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, Phase], StackRun]:
    return {(stack, phase): run_stack(stack, phase=phase) for stack in STACKS for phase in Phase}


@pytest.mark.parametrize("stack", STACKS)
def test_the_first_preview_reports_what_it_cannot_verify_as_advisory_and_blocks_nothing(
    preview_pack: PolicyPackProcess, runs: dict[tuple[str, Phase], StackRun], stack: str,
) -> None:
    report = judge_shipped(preview_pack, stack, from_registrations(runs[stack, Phase.PREVIEW].resources))

    assert not report.mandatory, [f"{item.policy_name}: {item.message}" for item in report.mandatory]
    assert report.diagnostics, "a new stack's preview has policy documents built from unknown ARNs"
    assert {item.enforcement_level for item in report.diagnostics} == {EnforcementLevel.ADVISORY}
    assert all("cannot verify until the update" in item.message for item in report.diagnostics)
    # Exactly once per resource and rule.
    repeats = [key for key, count in Counter((d.policy_name, d.urn) for d in report.diagnostics).items() if count > 1]
    assert not repeats


def test_the_prod_preview_defers_every_role_and_resource_policy_document_to_the_update(
    preview_pack: PolicyPackProcess, runs: dict[tuple[str, Phase], StackRun],
) -> None:
    resources = from_registrations(runs["prod", Phase.PREVIEW].resources)
    unknown_documents = {item.urn for item in resources if item.inputs.get("policy") is not None
                         and not isinstance(item.inputs["policy"], str | dict)}

    report = judge_shipped(preview_pack, "prod", resources)

    deferred = {item.urn for item in report.diagnostics if item.policy_name == WILDCARD_RULE}
    assert unknown_documents, "the preview run must leave ARN-built policy documents unknown"
    assert deferred == unknown_documents


@pytest.mark.parametrize("stack", STACKS)
def test_the_update_of_the_shipped_stack_has_no_violation_at_all(
    pack: PolicyPackProcess, runs: dict[tuple[str, Phase], StackRun], stack: str,
) -> None:
    report = judge_shipped(pack, stack, from_registrations(runs[stack, Phase.UPDATE].resources))

    assert not report.diagnostics, [f"{item.policy_name}: {item.message}" for item in report.diagnostics]


def with_wildcard_in(resources: list[AnalyzerResource], name: str) -> list[AnalyzerResource]:
    [target] = [item for item in resources if item.name == name]
    grant = json.loads(target.inputs["policy"])
    grant["Statement"].append(allow("*", "*"))
    policy = json.dumps(grant)
    edited = dataclasses.replace(target, inputs={**target.inputs, "policy": policy},
                                 outputs={**(target.outputs or {}), "policy": policy})
    return [edited if item.urn == target.urn else item for item in resources]


def test_a_wildcard_iam_action_is_still_blocked_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess, runs: dict[tuple[str, Phase], StackRun],
) -> None:
    name = "fleetguard-prod-intake-handler-policy"
    updated = with_wildcard_in(from_registrations(runs["prod", Phase.UPDATE].resources), name)

    report = judge_shipped(pack, "prod", updated)

    assert {(item.policy_name, item.urn.rsplit("::", 1)[-1]) for item in report.mandatory} == {(WILDCARD_RULE, name)}
    assert "allows wildcard action(s) *" in report.mandatory[0].message
    # At preview the same document is built from unknown ARNs: the preview cannot see the wildcard yet.
    preview = judge_shipped(preview_pack, "prod", from_registrations(runs["prod", Phase.PREVIEW].resources))
    assert not preview.mandatory


def test_a_value_still_unknown_at_the_update_is_blocked(
    pack: PolicyPackProcess, runs: dict[tuple[str, Phase], StackRun],
) -> None:
    resources = from_registrations(runs["prod", Phase.UPDATE].resources)
    [target] = [item for item in resources if item.name == "fleetguard-prod-intake-handler-policy"]
    stuck = dataclasses.replace(target, inputs={**target.inputs, "policy": unknown()})

    report = judge_shipped(pack, "prod", [stuck if item.urn == target.urn else item for item in resources])

    [blocked] = report.mandatory
    assert (blocked.policy_name, blocked.urn) == (WILDCARD_RULE, target.urn)
    assert "cannot verify at the update: the policy document in policy is unknown" in blocked.message


def test_a_preview_still_reports_what_it_can_decide_as_a_violation(preview_pack: PolicyPackProcess) -> None:
    # The key's rotation is known to be off; its description is the only unknown: the preview blocks.
    key = changed(kms_key(), enableKeyRotation=False, description=unknown())

    result = preview_pack.analyze(key)

    [rotation] = [item for item in result.diagnostics if item.policy_name == "kms-key-rotation"]
    assert rotation.enforcement_level is EnforcementLevel.MANDATORY


def test_a_resource_rule_with_several_unknowns_reports_one_advisory(preview_pack: PolicyPackProcess) -> None:
    work = queue("work", kmsMasterKeyId=unknown(), redrivePolicy=unknown(), policy=unknown())

    result = preview_pack.analyze(work)

    per_rule = Counter(item.policy_name for item in result.diagnostics)
    assert per_rule
    assert max(per_rule.values()) == 1
    assert all(item.enforcement_level is EnforcementLevel.ADVISORY for item in result.diagnostics)


def test_a_stack_rule_judges_every_resource_before_it_defers_the_unknown_ones(
    preview_pack: PolicyPackProcess, pack: PolicyPackProcess,
) -> None:
    # One subscription's product is unknown, and the detect integration is missing: at preview the rule
    # can only defer; at the update, with the value still unknown, it fails closed.
    hub, audit_subscription = security_hub(products=("iot-device-defender-audit",))
    stack = without(compliant_stack(), "aws:securityhub/productSubscription:ProductSubscription",
                    "aws:securityhub/account:Account")
    pending = changed(audit_subscription, productArn=unknown())
    rule = "securityhub-device-defender-integrations"

    at_preview = preview_pack.preview([*stack, hub, pending])
    at_update = pack.preview([*stack, hub, pending])

    [advisory] = [item for item in at_preview.diagnostics if item.policy_name == rule]
    assert advisory.enforcement_level is EnforcementLevel.ADVISORY
    assert f"productArn of {pending.name}" in advisory.message
    [blocked] = [item for item in at_update.diagnostics if item.policy_name == rule]
    assert blocked.enforcement_level is EnforcementLevel.MANDATORY
    assert blocked.message.endswith(f"cannot verify at the update: productArn of {pending.name}; nothing is left "
                                    "to resolve it at the update, so fleetguard fails closed: pass the value "
                                    "itself, or deploy what computes it first")


def test_a_document_built_from_a_known_value_is_judged_at_preview(preview_pack: PolicyPackProcess) -> None:
    role_policy = AnalyzerResource(
        urn="urn:pulumi:policytest::fleetguard::aws:iam/rolePolicy:RolePolicy::broad", type=ROLE_POLICY,
        name="broad", inputs={"role": unknown(), "policy": document(allow("s3:*", "*"))},
    )

    result = preview_pack.analyze(role_policy)

    [finding] = [item for item in result.diagnostics if item.policy_name == WILDCARD_RULE]
    assert finding.enforcement_level is EnforcementLevel.MANDATORY

"""The shipped stacks, run under mocks as a preview and judged over gRPC in their own environment's
policy config; then deliberately broken copies, which the prod config must block and the dev config must
only warn about. A broken stack is judged against the same stack unbroken under the same config, so the
dev stack judged by the prod config (which asks more of it, e.g. ML Detect) shows exactly what the
breakage added.

How each broken stack is made: the audit one through stack config (``config_overrides``: the program
disables a critical check, with the reason the program's own settings demand); the others by
post-processing what the program registered, the way a careless change to the program would look:
an added device policy allowing ``iot:*`` on ``*``, security profiles with their ``alertTargets``
removed, topics with ``kmsMasterKeyId`` removed, and the quarantine policy with its Deny statements
removed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    AnalyzerResource,
    PolicyPackProcess,
    PreviewReport,
    from_registrations,
    urn_for,
)
from harness.mockstack import StackRun, load_stack_config, run_stack
from tests.policies.stack_builders import allow, document, judge_shipped

STACKS = ("dev", "prod")
Breakage = Callable[[list[AnalyzerResource]], list[AnalyzerResource]]


@pytest.fixture(scope="module")
def previews() -> dict[str, StackRun]:
    return {stack: run_stack(stack) for stack in STACKS}


def edited(resource: AnalyzerResource, drop: tuple[str, ...] = (), **values: Any) -> AnalyzerResource:
    def edit(properties: dict[str, Any]) -> dict[str, Any]:
        return {**{key: value for key, value in properties.items() if key not in drop}, **values}

    return dataclasses.replace(resource, inputs=edit(dict(resource.inputs)),
                               outputs=edit(dict(resource.outputs or {})))


def of_type(resources: list[AnalyzerResource], resource_type: str) -> list[AnalyzerResource]:
    found = [item for item in resources if item.type == resource_type]
    assert found, f"the program registers no {resource_type}; the broken-stack test cannot apply"
    return found


def with_permissive_device_policy(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    template = of_type(resources, "aws:iot/policy:Policy")[0]
    stack = template.urn.split("::")[0].removeprefix("urn:pulumi:")
    name = f"fleetguard-{stack}-devices"
    permissive = AnalyzerResource(
        urn=urn_for(stack, "fleetguard", "aws:iot/policy:Policy", name), type="aws:iot/policy:Policy", name=name,
        inputs={"name": name, "policy": document(allow("iot:*", "*")), "tags": template.inputs["tags"]},
        outputs=None, parent=template.parent, provider=template.provider,
    )
    return [*resources, permissive]


def without_alert_targets(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    profiles = {item.urn for item in of_type(resources, "aws-native:iot:SecurityProfile")}
    return [edited(item, drop=("alertTargets",)) if item.urn in profiles else item for item in resources]


def with_unencrypted_topics(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    topics = {item.urn for item in of_type(resources, "aws:sns/topic:Topic")}
    return [edited(item, drop=("kmsMasterKeyId",)) if item.urn in topics else item for item in resources]


def with_quarantine_policy_without_deny(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    [quarantine] = [item for item in of_type(resources, "aws:iot/policy:Policy") if "quarantine" in item.name]
    statements = json.loads(quarantine.inputs["policy"])["Statement"]
    allow_only = json.dumps({"Version": "2012-10-17",
                             "Statement": [item for item in statements if item["Effect"] == "Allow"]})
    return [edited(item, policy=allow_only) if item.urn == quarantine.urn else item for item in resources]


BREAKAGES: dict[str, tuple[Breakage, set[str]]] = {
    "overly permissive IoT policy": (with_permissive_device_policy, {
        "iot-policy-no-wildcard-actions", "iot-policy-no-wildcard-resources", "iot-policy-client-id-bound-to-thing",
        # iot:* on * also grants every topic and every thing's shadows and jobs.
        "iot-policy-topic-scope", "iot-policy-own-thing-only",
    }),
    "security profile without alert target": (without_alert_targets, {"detect-profile-alert-target"}),
    "unencrypted topic": (with_unencrypted_topics, {"messaging-customer-managed-kms"}),
    "quarantine group without deny": (with_quarantine_policy_without_deny, {"containment-quarantine-group"}),
}


@pytest.mark.parametrize("stack", STACKS)
def test_the_shipped_stack_passes_its_own_policy_config(
    pack: PolicyPackProcess, previews: dict[str, StackRun], stack: str,
) -> None:
    report = judge_shipped(pack, stack, from_registrations(previews[stack].resources))

    assert report.resource_count == len(previews[stack].resources)
    # Not only no mandatory violation (dev's config makes every policy advisory): no violation at all.
    assert not report.diagnostics, [f"{item.policy_name}: {item.message}" for item in report.diagnostics]


def added_names(pack: PolicyPackProcess, stack: str, config: str, unbroken: list[AnalyzerResource],
                broken: list[AnalyzerResource]) -> tuple[set[str], set[str], PreviewReport]:
    """Policy names of the violations the broken stack adds over the unbroken one (mandatory ones, all
    of them), and the broken stack's report."""
    config_file = POLICY_CONFIG_DIR / f"{config}.json"
    before = judge_shipped(pack, stack, unbroken, config=config_file)
    after = judge_shipped(pack, stack, broken, config=config_file)
    seen = {(item.policy_name, item.urn, item.message) for item in before.diagnostics}
    added = [item for item in after.diagnostics if (item.policy_name, item.urn, item.message) not in seen]
    return {item.policy_name for item in added if item.mandatory}, {item.policy_name for item in added}, after


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_stack_is_blocked_in_prod_and_warned_in_dev(
    pack: PolicyPackProcess, previews: dict[str, StackRun], stack: str, breakage: str,
) -> None:
    breaks, expected = BREAKAGES[breakage]
    unbroken = from_registrations(previews[stack].resources)
    broken = breaks(unbroken)

    blocked, _, _ = added_names(pack, stack, "prod", unbroken, broken)
    _, warned, dev_report = added_names(pack, stack, "dev", unbroken, broken)

    assert blocked == expected
    assert not dev_report.mandatory
    assert warned == expected


def audit_with_disabled_check(stack: str, check: str) -> dict[str, Any]:
    audit: dict[str, Any] = json.loads(load_stack_config(stack)["fleetguard:audit"])
    audit.setdefault("checks", {})[check] = {
        "enabled": False, "exemptionReason": "Deliberately broken stack for the policy pack test"}
    # A disabled check cannot be mitigated (the settings refuse it), so its mitigation goes with it.
    audit.get("mitigations", {}).pop(check, None)
    return audit


@pytest.mark.parametrize("stack", STACKS)
def test_a_disabled_critical_audit_check_is_blocked_in_prod_and_warned_in_dev(
    pack: PolicyPackProcess, previews: dict[str, StackRun], stack: str,
) -> None:
    unbroken = from_registrations(previews[stack].resources)
    run = run_stack(stack, {"audit": audit_with_disabled_check(stack, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK")})
    broken = from_registrations(run.resources)

    blocked, _, prod_report = added_names(pack, stack, "prod", unbroken, broken)
    _, warned, dev_report = added_names(pack, stack, "dev", unbroken, broken)

    assert blocked == {"audit-critical-checks-enabled"}
    assert any("IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in item.message for item in prod_report.mandatory)
    assert not dev_report.mandatory
    assert warned == {"audit-critical-checks-enabled"}


def renamed_quarantine_group(stack: str, group_name: str) -> dict[str, Any]:
    """The stack's own quarantine settings with only the group's name changed."""
    quarantine: dict[str, Any] = json.loads(load_stack_config(stack)["fleetguard:quarantine"])
    return {**quarantine, "groupName": group_name}


def test_a_quarantine_group_of_any_valid_name_passes_and_still_needs_its_deny(pack: PolicyPackProcess) -> None:
    # The pack recognises the group the program tags, not a name: "ISOLATED" shares nothing with "quarantine".
    run = run_stack("prod", {"quarantine": renamed_quarantine_group("prod", "ISOLATED")})
    [group] = [item for item in run.resources if item.type == "aws:iot/thingGroup:ThingGroup"]
    assert group.inputs["name"] == "ISOLATED"
    renamed = from_registrations(run.resources)

    report = judge_shipped(pack, "prod", renamed)
    assert not report.diagnostics, [f"{item.policy_name}: {item.message}" for item in report.diagnostics]

    blocked, _, prod_report = added_names(pack, "prod", "prod", renamed,
                                          with_quarantine_policy_without_deny(renamed))
    assert blocked == {"containment-quarantine-group"}
    assert any("quarantine group" in item.message and "explicit Deny" in item.message
               for item in prod_report.mandatory)


def test_the_dev_exemption_covers_the_lab_certificate_check_only(pack: PolicyPackProcess) -> None:
    run = run_stack("dev", {"audit": audit_with_disabled_check("dev", "DEVICE_CERTIFICATE_SHARED_CHECK")})

    report = judge_shipped(pack, "dev", from_registrations(run.resources))

    assert "audit-critical-checks-enabled" not in report.policy_names()


def test_a_stack_that_leaves_account_singletons_to_their_owner_passes_when_the_config_says_so(
    pack: PolicyPackProcess,
) -> None:
    config = load_stack_config("prod")
    audit = {**json.loads(config["fleetguard:audit"]), "manageAccountConfiguration": False}
    quarantine = {**json.loads(config["fleetguard:quarantine"]), "manageAccountLogging": False,
                  "manageGroupLogging": False}
    quarantine.pop("groupLogLevel", None)
    run = run_stack("prod", {"audit": audit, "quarantine": quarantine})
    policy_config = json.loads((POLICY_CONFIG_DIR / "prod.json").read_text())

    pack.configure({**policy_config, "audit-scheduled-critical-checks": {
        **policy_config.get("audit-scheduled-critical-checks", {}), "auditConfigurationOwnedElsewhere": True,
    }, "containment-quarantine-group": {"accountLoggingOwnedElsewhere": True, "groupLoggingOwnedElsewhere": True}})
    pack.configure_stack("prod", "fleetguard")
    report = pack.preview(from_registrations(run.resources))

    assert not report.diagnostics, [f"{item.policy_name}: {item.message}" for item in report.diagnostics]
    # Without the owner's word, the same stack is blocked.
    assert judge_shipped(pack, "prod", from_registrations(run.resources)).policy_names(mandatory_only=True) == {
        "audit-scheduled-critical-checks", "containment-quarantine-group"}

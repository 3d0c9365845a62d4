"""The containment stack policy over gRPC: quarantine group, deny policy, group logging, mitigation."""

from __future__ import annotations

import dataclasses

import pytest

from tests.policies.stack_builders import (
    allow,
    changed,
    compliant_stack,
    containment,
    deny,
    document,
    kms_key,
    quarantine_policy,
    replace,
    resource,
    topic,
    unknown,
    violations,
    without,
)
from tools.analyzer_client import AnalyzerResource, PolicyPackProcess

RULE = "containment-quarantine-group"


def by_type(stack: list[AnalyzerResource], resource_type: str) -> AnalyzerResource:
    [found] = [item for item in stack if item.type == resource_type]
    return found


def test_a_complete_quarantine_setup_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


def test_a_stack_without_a_quarantine_group_is_blocked(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), "aws:iot/thingGroup:ThingGroup")

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no quarantine thing group" in message


def test_the_quarantine_group_name_is_configurable(pack: PolicyPackProcess) -> None:
    stack = [*without(compliant_stack(), *{item.type for item in containment()}), *containment("fleetguard-isolation")]

    assert violations(pack.analyze_stack(stack), RULE)

    pack.configure({RULE: {"quarantineGroupNameContains": "isolation"}})
    assert not violations(pack.analyze_stack(stack), RULE)


@pytest.mark.parametrize(("missing_type", "reported"), [
    ("aws:iot/policyAttachment:PolicyAttachment", "an IoT policy attached"),
    ("aws-native:iot:ResourceSpecificLogging", "resource-specific logging"),
    ("aws-native:iot:MitigationAction", "a mitigation action that puts things into it"),
    ("aws:iot/loggingOptions:LoggingOptions", "account-wide IoT v2 logging"),
])
def test_each_missing_piece_is_reported(pack: PolicyPackProcess, missing_type: str, reported: str) -> None:
    [message] = violations(pack.analyze_stack(without(compliant_stack(), missing_type)), RULE)

    assert reported in message


def test_an_attached_policy_without_a_deny_is_blocked(pack: PolicyPackProcess) -> None:
    stack = replace(compliant_stack(), quarantine_policy(document(allow("iot:Connect", "*"))))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "lacks an IoT policy attached" in message
    assert "explicit Deny statements cover iot:Publish, iot:Subscribe, iot:Receive" in message


def test_a_deny_of_something_harmless_does_not_restrict_the_device(pack: PolicyPackProcess) -> None:
    harmless = document(deny("iot:DeleteThingShadow", "*"), deny(["iot:Publish", "iot:Subscribe"], "*"))
    stack = replace(compliant_stack(), quarantine_policy(harmless))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "iot:Receive" in message


def test_a_deny_by_not_action_covers_what_it_does_not_exclude(pack: PolicyPackProcess) -> None:
    everything_but_connect = document({"Effect": "Deny", "NotAction": "iot:Connect", "Resource": "*"})
    only_connect_spared = replace(compliant_stack(), quarantine_policy(everything_but_connect))
    assert not violations(pack.analyze_stack(only_connect_spared), RULE)

    sparing_publish = document({"Effect": "Deny", "NotAction": ["iot:Connect", "iot:Pub*"], "Resource": "*"})
    stack = replace(compliant_stack(), quarantine_policy(sparing_publish))
    assert violations(pack.analyze_stack(stack), RULE)


def test_an_attachment_to_another_group_does_not_count(pack: PolicyPackProcess) -> None:
    stack = compliant_stack()
    attachment = by_type(stack, "aws:iot/policyAttachment:PolicyAttachment")
    elsewhere = dataclasses.replace(
        changed(attachment, target="arn:aws:iot:us-east-1:123456789012:thinggroup/production-fleet"),
        property_dependencies={},
    )

    [message] = violations(pack.analyze_stack(replace(stack, elsewhere)), RULE)

    assert "explicit Deny" in message


def test_references_are_followed_through_property_dependencies_when_arns_are_unknown(
    pack: PolicyPackProcess,
) -> None:
    # At a real preview the group's ARN is unknown; the engine still says the target depends on it.
    stack = compliant_stack()
    group = by_type(stack, "aws:iot/thingGroup:ThingGroup")
    attachment = by_type(stack, "aws:iot/policyAttachment:PolicyAttachment")
    stack = replace(stack, changed(attachment, target=unknown()),
                    changed(group, name=None))  # auto-named: no physical name at preview

    result = pack.analyze_stack(stack)

    assert not violations(result, RULE)


def test_an_unknown_target_without_a_dependency_fails_closed(pack: PolicyPackProcess) -> None:
    stack = compliant_stack()
    attachment = dataclasses.replace(
        changed(by_type(stack, "aws:iot/policyAttachment:PolicyAttachment"), target=unknown()),
        property_dependencies={},
    )

    [message] = violations(pack.analyze_stack(replace(stack, attachment)), RULE)

    assert message.startswith("cannot verify at the update")


def test_an_unknown_deny_policy_document_fails_closed(pack: PolicyPackProcess) -> None:
    stack = replace(compliant_stack(), quarantine_policy(unknown()))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("cannot verify at the update")
    assert "quarantine-deny" in message


def test_a_policy_defined_outside_the_stack_cannot_be_verified(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), "aws:iot/policy:Policy")

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("cannot verify at the update")
    assert "'fleetguard-quarantine-deny'" in message
    assert "not defined in this stack" in message


def test_logging_disabled_for_the_group_does_not_count(pack: PolicyPackProcess) -> None:
    stack = compliant_stack()
    logging = by_type(stack, "aws-native:iot:ResourceSpecificLogging")

    [message] = violations(pack.analyze_stack(replace(stack, changed(logging, logLevel="DISABLED"))), RULE)

    assert "resource-specific logging" in message


def test_a_dynamic_quarantine_group_is_blocked(pack: PolicyPackProcess) -> None:
    name = "fleetguard-dynamic-quarantine"
    dynamic = resource("aws-native:iot:ThingGroup", name, {"thingGroupName": name,
                                                          "queryString": "attributes.suspect:true"})
    stack = [*without(compliant_stack(), "aws:iot/thingGroup:ThingGroup"), dynamic]

    messages = violations(pack.analyze_stack(stack), RULE)

    assert any("dynamic thing group" in message for message in messages)


def test_the_containment_rule_ignores_stacks_without_iot(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([kms_key(), topic()])

    assert RULE in result.not_applicable


"""The containment stack policy over gRPC: quarantine group, deny policy, group logging, mitigation."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess
from tests.policies.stack_builders import (
    NATIVE_TAGS,
    QUARANTINE_MARK,
    allow,
    changed,
    compliant_stack,
    containment,
    deny,
    document,
    kms_key,
    quarantine_group,
    quarantine_policy,
    replace,
    resource,
    topic,
    unknown,
    violations,
    without,
)

RULE = "containment-quarantine-group"


def by_type(stack: list[AnalyzerResource], resource_type: str) -> AnalyzerResource:
    [found] = [item for item in stack if item.type == resource_type]
    return found


def test_a_complete_quarantine_setup_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


def with_containment(group_name: str, *, marked: bool = True) -> list[AnalyzerResource]:
    """The compliant stack with its containment resources built around another group."""
    return [*without(compliant_stack(), *{item.type for item in containment()}),
            *containment(group_name, marked=marked)]


def test_a_stack_without_a_quarantine_group_is_blocked(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), "aws:iot/thingGroup:ThingGroup")

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no quarantine thing group" in message
    assert "no thing group is tagged fleetguard:role=quarantine" in message


def test_the_group_the_program_tags_is_the_quarantine_group_whatever_its_name(pack: PolicyPackProcess) -> None:
    # The builders tag the group with the program's own constants: this fails if they drift from the pack's.
    stack = with_containment("ISOLATED")

    assert not violations(pack.analyze_stack(stack), RULE)


def test_a_tagged_group_named_unlike_quarantine_still_needs_its_deny(pack: PolicyPackProcess) -> None:
    stack = replace(with_containment("ISOLATED"), quarantine_policy(document(allow("iot:Connect", "*"))))

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("quarantine group ISOLATED lacks an IoT policy attached")


def test_the_group_is_recognised_by_its_tag_in_the_aws_native_shape_too(pack: PolicyPackProcess) -> None:
    name = "ISOLATED"
    tags = [*NATIVE_TAGS, *({"key": key, "value": value} for key, value in QUARANTINE_MARK.items())]
    native = resource("aws-native:iot:ThingGroup", name, {"thingGroupName": name, "tags": tags})
    untagged = resource("aws-native:iot:ThingGroup", name, {"thingGroupName": name, "tags": NATIVE_TAGS})
    others = without(compliant_stack(), "aws:iot/thingGroup:ThingGroup")

    # Judged as the quarantine group: nothing in the stack restricts, logs or fills this one.
    messages = violations(pack.analyze_stack([*others, native]), RULE)
    assert messages
    assert all(message.startswith("quarantine group ISOLATED lacks ") for message in messages)

    [message] = violations(pack.analyze_stack([*others, untagged]), RULE)
    assert "no quarantine thing group" in message


def test_an_untagged_group_named_quarantine_is_not_the_quarantine_group(pack: PolicyPackProcess) -> None:
    # Nothing restricts this group; it would be blocked if its name made it a quarantine group.
    decoy = quarantine_group("fleetguard-quarantine-archive", marked=False)
    stack = [*with_containment("ISOLATED"), decoy]

    assert not violations(pack.analyze_stack(stack), RULE)

    tagged_decoy = quarantine_group("fleetguard-quarantine-archive")
    messages = violations(pack.analyze_stack([*with_containment("ISOLATED"), tagged_decoy]), RULE)
    assert messages
    assert all(message.startswith("quarantine group fleetguard-quarantine-archive lacks ") for message in messages)


def test_the_name_fragment_is_only_a_fallback_for_stacks_that_tag_no_group(pack: PolicyPackProcess) -> None:
    untagged = with_containment("fleetguard-isolation", marked=False)

    assert violations(pack.analyze_stack(untagged), RULE)

    pack.configure({RULE: {"quarantineGroupNameContains": "isolation"}})
    assert not violations(pack.analyze_stack(untagged), RULE)
    # Once a group is tagged, the fragment no longer pulls in untagged groups.
    decoy = quarantine_group("fleetguard-isolation-archive", marked=False)
    assert not violations(pack.analyze_stack([*compliant_stack(), decoy]), RULE)


def test_a_group_whose_tag_declares_another_role_is_not_taken_by_its_name(pack: PolicyPackProcess) -> None:
    [key] = QUARANTINE_MARK
    group = quarantine_group("fleetguard-quarantine-review", marked=False)
    other_role = changed(group, tags={**group.inputs["tags"], key: "review"})
    stack = [*without(compliant_stack(), "aws:iot/thingGroup:ThingGroup"), other_role]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert "no quarantine thing group" in message


def test_a_group_with_unknown_tags_fails_closed(pack: PolicyPackProcess) -> None:
    stack = [*compliant_stack(), changed(quarantine_group("fleetguard-later", marked=False), tags=unknown())]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("cannot verify at the update: whether thing group fleetguard-later is the quarantine "
                              "group (its fleetguard:role tag)")


@pytest.mark.parametrize(("missing_type", "reported"), [
    ("aws:iot/policyAttachment:PolicyAttachment", "an IoT policy attached"),
    ("aws-native:iot:ResourceSpecificLogging", "resource-specific logging"),
    ("aws-native:iot:MitigationAction", "a mitigation action that puts things into it"),
    ("aws:iot/loggingOptions:LoggingOptions", "account-wide IoT v2 logging"),
])
def test_each_missing_piece_is_reported(pack: PolicyPackProcess, missing_type: str, reported: str) -> None:
    [message] = violations(pack.analyze_stack(without(compliant_stack(), missing_type)), RULE)

    assert reported in message


@pytest.mark.parametrize(("missing_type", "owned_elsewhere"), [
    ("aws-native:iot:ResourceSpecificLogging", "groupLoggingOwnedElsewhere"),
    ("aws:iot/loggingOptions:LoggingOptions", "accountLoggingOwnedElsewhere"),
])
def test_logging_the_stack_leaves_to_its_owner_is_not_required_when_the_config_says_so(
    pack: PolicyPackProcess, missing_type: str, owned_elsewhere: str,
) -> None:
    stack = without(compliant_stack(), missing_type)
    pack.configure({RULE: {owned_elsewhere: True}})

    assert not violations(pack.analyze_stack(stack), RULE)
    # Only that piece: the group still needs its deny policy.
    assert violations(pack.analyze_stack(without(stack, "aws:iot/policyAttachment:PolicyAttachment")), RULE)


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
    tags = [{"key": key, "value": value} for key, value in QUARANTINE_MARK.items()]
    dynamic = resource("aws-native:iot:ThingGroup", name, {"thingGroupName": name, "tags": tags,
                                                          "queryString": "attributes.suspect:true"})
    stack = [*without(compliant_stack(), "aws:iot/thingGroup:ThingGroup"), dynamic]

    messages = violations(pack.analyze_stack(stack), RULE)

    assert any("dynamic thing group" in message for message in messages)


def test_the_containment_rule_ignores_stacks_without_iot(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([kms_key(), topic()])

    assert RULE in result.not_applicable


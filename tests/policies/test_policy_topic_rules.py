"""Topic rule policies over gRPC: error action, pinned SQL version, no republish into reserved topics,
explicit enabled state, and roles without wildcard actions; for the classic and aws-native types."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess
from tests.policies.stack_builders import (
    IAM_PREFIX,
    allow,
    changed,
    document,
    iam_role,
    kms_key,
    native_topic_rule,
    resource,
    role_policy_for,
    rule_role,
    topic_rule,
    unknown,
    violations,
)

ERROR_ACTION = "topic-rule-error-action"
SQL_VERSION = "topic-rule-sql-version-pinned"
RESERVED = "topic-rule-no-reserved-republish"
ENABLED = "topic-rule-enabled-explicit"
ROLE_SCOPED = "topic-rule-role-scoped"
RESOURCE_RULES = (ERROR_ACTION, SQL_VERSION, RESERVED, ENABLED)
REPUBLISH_ROLE = f"{IAM_PREFIX}:role/fleet-rule-actions"


@pytest.mark.parametrize("rule", [topic_rule(), native_topic_rule()], ids=["classic", "native"])
def test_a_complete_topic_rule_passes(pack: PolicyPackProcess, rule: AnalyzerResource) -> None:
    result = pack.analyze(rule)

    assert not result.diagnostics
    assert not set(RESOURCE_RULES) & set(result.not_applicable)


@pytest.mark.parametrize(("rule", "reported"), [
    (topic_rule(errorAction=None), "errorAction is not set"),
    (topic_rule(errorAction={}), "errorAction is not set"),
    (native_topic_rule(errorAction=None), "topicRulePayload.errorAction is not set"),
])
def test_a_rule_without_an_error_action_is_blocked(
    pack: PolicyPackProcess, rule: AnalyzerResource, reported: str,
) -> None:
    [message] = violations(pack.analyze(rule), ERROR_ACTION)

    assert message.startswith(reported)


@pytest.mark.parametrize(("rule", "reported"), [
    (native_topic_rule(awsIotSqlVersion=None), "awsIotSqlVersion is not set, so AWS IoT uses 2015-10-08"),
    (native_topic_rule(awsIotSqlVersion="beta"), "awsIotSqlVersion is 'beta'"),
    (topic_rule(sqlVersion="2015-10-08"), "sqlVersion is '2015-10-08'; this environment allows 2016-03-23"),
])
def test_an_unpinned_or_disallowed_sql_version_is_blocked(
    pack: PolicyPackProcess, rule: AnalyzerResource, reported: str,
) -> None:
    [message] = violations(pack.analyze(rule), SQL_VERSION)

    assert reported in message


def test_the_allowed_sql_versions_are_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({SQL_VERSION: {"allowedSqlVersions": ["2015-10-08", "2016-03-23"]}})

    assert not violations(pack.analyze(topic_rule(sqlVersion="2015-10-08")), SQL_VERSION)


def republish(topic: str) -> dict[str, object]:
    return {"topic": topic, "roleArn": REPUBLISH_ROLE, "qos": 1}


@pytest.mark.parametrize("rule", [
    topic_rule(republishes=[republish("$$aws/things/${topic(2)}/shadow/update")]),
    topic_rule(republishes=[republish("$aws/events/presence/connected/x")]),
    topic_rule(errorAction={"republish": republish("$$aws/rules/other_rule")}),
    native_topic_rule(actions=[{"republish": republish("$$aws/things/x/jobs/notify")}]),
], ids=["classic", "single-dollar", "error-action", "native"])
def test_republishing_into_reserved_topics_is_blocked(pack: PolicyPackProcess, rule: AnalyzerResource) -> None:
    [message] = violations(pack.analyze(rule), RESERVED)

    assert "republishes into the reserved topic $" in message


def test_republishing_to_application_topics_passes(pack: PolicyPackProcess) -> None:
    rule = topic_rule(republishes=[republish("cmd/${topic(2)}/ack"), republish("$$custom/x")])

    assert not violations(pack.analyze(rule), RESERVED)


def test_a_configured_reserved_prefix_may_be_republished_to(pack: PolicyPackProcess) -> None:
    shadows = topic_rule(republishes=[republish("$$aws/things/${topic(2)}/shadow/update")])
    jobs = topic_rule(republishes=[republish("$$aws/things/x/jobs/notify")])
    pack.configure({RESERVED: {"allowedReservedTopicPrefixes": ["$aws/things/${topic(2)}/shadow/"]}})

    assert not violations(pack.analyze(shadows), RESERVED)
    assert violations(pack.analyze(jobs), RESERVED)


@pytest.mark.parametrize(("rule", "reported"), [
    (topic_rule(enabled=None), "enabled is not set"),
    (native_topic_rule(ruleDisabled=None), "topicRulePayload.ruleDisabled is not set"),
])
def test_an_implicit_enabled_state_is_blocked(pack: PolicyPackProcess, rule: AnalyzerResource, reported: str) -> None:
    [message] = violations(pack.analyze(rule), ENABLED)

    assert message.startswith(reported)


def test_a_deliberately_disabled_rule_passes(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(native_topic_rule(ruleDisabled=True)), ENABLED)
    assert not violations(pack.analyze(topic_rule(enabled=False)), ENABLED)


def test_topic_rule_policies_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(kms_key())

    for rule in RESOURCE_RULES:
        assert "does not govern aws:kms/key:Key" in result.not_applicable[rule]


def test_a_payload_unknown_at_preview_is_advisory(preview_pack: PolicyPackProcess) -> None:
    rule = resource("aws-native:iot:TopicRule", "fleet-telemetry-native-rule", {"topicRulePayload": unknown()})

    result = preview_pack.analyze(rule)

    assert {ERROR_ACTION, SQL_VERSION, RESERVED, ENABLED} == result.policy_names()
    assert not [item for item in result.diagnostics if item.mandatory]


def test_a_republish_topic_unknown_at_the_update_fails_closed(pack: PolicyPackProcess) -> None:
    rule = topic_rule(republishes=[{"topic": unknown(), "roleArn": REPUBLISH_ROLE}])

    [message] = violations(pack.analyze(rule), RESERVED)

    assert message.startswith("cannot verify at the update")


# -- roles (stack rule) -------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [topic_rule(), native_topic_rule()], ids=["classic", "native"])
def test_a_rule_whose_role_lists_its_actions_passes(pack: PolicyPackProcess, rule: AnalyzerResource) -> None:
    result = pack.analyze_stack([rule, *rule_role()])

    assert not violations(result, ROLE_SCOPED)
    assert ROLE_SCOPED not in result.not_applicable


@pytest.mark.parametrize("rule", [topic_rule(), native_topic_rule()], ids=["classic", "native"])
def test_a_rule_role_with_a_wildcard_action_is_blocked(pack: PolicyPackProcess, rule: AnalyzerResource) -> None:
    [message] = violations(pack.analyze_stack([rule, *rule_role(actions=["kinesis:*"])]), ROLE_SCOPED)

    assert "acts as role fleet-rule-actions" in message
    assert "wildcard action(s) kinesis:*" in message


def test_every_way_a_stack_attaches_permissions_to_the_role_is_judged(pack: PolicyPackProcess) -> None:
    role = iam_role("fleet-rule-actions", inlinePolicies=[{"name": "inline", "policy": document(allow("sqs:*", "*"))}],
                    managedPolicyArns=["arn:aws:iam::aws:policy/AmazonKinesisFullAccess"])
    managed = resource("aws:iam/policy:Policy", "fleet-rule-extra", {"policy": document(allow("s3:Put*", "*"))},
                       computed={"arn": f"{IAM_PREFIX}:policy/fleet-rule-extra"})
    attachment = resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "fleet-rule-extra-attachment",
                          {"role": "fleet-rule-actions", "policyArn": f"{IAM_PREFIX}:policy/fleet-rule-extra"})

    messages = violations(pack.analyze_stack([topic_rule(), role, managed, attachment]), ROLE_SCOPED)

    assert len(messages) == 3
    assert any("inline policy 1: statement #1 allows wildcard action(s) sqs:*" in item for item in messages)
    assert any("managed policy fleet-rule-extra: statement #1 allows wildcard action(s) s3:Put*" in item
               for item in messages)
    assert any("AmazonKinesisFullAccess" in item for item in messages)


def test_a_role_the_stack_does_not_manage_is_not_judged_here(pack: PolicyPackProcess) -> None:
    elsewhere = topic_rule(role_arn=f"{IAM_PREFIX}:role/managed-by-the-platform-team")

    assert not violations(pack.analyze_stack([elsewhere, *rule_role(actions=["kinesis:*"])]), ROLE_SCOPED)


def test_a_stack_without_topic_rules_is_not_applicable(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([kms_key(), *rule_role()])

    assert "has none" in result.not_applicable[ROLE_SCOPED]


def preview_of(rule: AnalyzerResource, role: AnalyzerResource, policy: AnalyzerResource) -> list[AnalyzerResource]:
    """The preview of a new stack: the role's ARN and the policy's document are unknown; the engine's
    property dependencies tell which role each refers to."""
    prop = "kineses" if rule.type == "aws:iot/topicRule:TopicRule" else "topicRulePayload"
    unknown_arn = (topic_rule(role_arn=unknown()) if prop == "kineses" else native_topic_rule(role_arn=unknown()))
    return [dataclasses.replace(unknown_arn, property_dependencies={prop: [role.urn], "errorAction": [role.urn]}),
            dataclasses.replace(role, outputs={**role.inputs, "arn": unknown()}), changed(policy, policy=unknown())]


def test_a_role_policy_unknown_at_preview_is_advisory(preview_pack: PolicyPackProcess) -> None:
    role, policy = rule_role(actions=["kinesis:*"])
    stack = preview_of(topic_rule(), role, role_policy_for(role, policy.inputs["policy"], by_dependency=True))

    result = preview_pack.analyze_stack(stack)

    [diagnostic] = [item for item in result.diagnostics if item.policy_name == ROLE_SCOPED]
    assert "cannot verify until the update" in diagnostic.message
    assert not diagnostic.mandatory


def test_the_preview_follows_dependencies_to_the_role_and_sees_a_known_wildcard(
    preview_pack: PolicyPackProcess,
) -> None:
    role, policy = rule_role(actions=["kinesis:*"])
    known_policy = role_policy_for(role, policy.inputs["policy"], by_dependency=True)
    rule, preview_role, _ = preview_of(native_topic_rule(), role, known_policy)

    [message] = violations(preview_pack.analyze_stack([rule, preview_role, known_policy]), ROLE_SCOPED)

    assert "wildcard action(s) kinesis:*" in message

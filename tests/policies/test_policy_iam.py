"""The IAM rule over gRPC: no wildcard actions in any policy document the stack writes."""

from __future__ import annotations

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess
from tests.policies.stack_builders import (
    allow,
    deny,
    document,
    kms_key,
    log_group,
    queue,
    resource,
    topic,
    unknown,
    violations,
)

RULE = "iam-no-wildcard-actions"
TRUST = document({"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"})
PUBLISH = document(allow(["sns:Publish"], "arn:aws:sns:us-east-1:123456789012:fleetguard-alerts"))


def role(**inputs: object) -> AnalyzerResource:
    return resource("aws:iam/role:Role", "fleetguard-role", {"assumeRolePolicy": TRUST, **inputs})


def role_policy(policy: object) -> AnalyzerResource:
    return resource("aws:iam/rolePolicy:RolePolicy", "fleetguard-role-policy", {"role": "r", "policy": policy})


def managed_policy(policy: object) -> AnalyzerResource:
    return resource("aws:iam/policy:Policy", "fleetguard-managed", {"policy": policy})


@pytest.mark.parametrize("compliant", [
    role(),
    role(inlinePolicies=[{"name": "publish", "policy": PUBLISH}]),
    role_policy(PUBLISH),
    managed_policy(PUBLISH),
    role_policy(document(deny("*", "*"), allow("sns:Publish", "*"))),
    topic(policy=PUBLISH),
    kms_key(policy=document(allow(["kms:Decrypt", "kms:GenerateDataKey"], "*"))),
])
def test_explicit_actions_pass(pack: PolicyPackProcess, compliant: AnalyzerResource) -> None:
    result = pack.analyze(compliant)

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


@pytest.mark.parametrize(("offender", "reported"), [
    (role_policy(document(allow("*", "*"))), "policy: statement #1 allows wildcard action(s) *"),
    (managed_policy(document(allow(["s3:GetObject", "iot:*"], "*"))), "wildcard action(s) iot:*"),
    (role(inlinePolicies=[{"name": "admin", "policy": document(allow("sns:*", "*"))}]),
     "inlinePolicies[1]: statement #1 allows wildcard action(s) sns:*"),
    (role(assumeRolePolicy=document({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"})),
     "assumeRolePolicy: statement #1 allows wildcard action(s) sts:*"),
    (role_policy(document({"Sid": "AllButDelete", "Effect": "Allow", "NotAction": "iam:Delete*", "Resource": "*"})),
     "statement 'AllButDelete' allows NotAction"),
    (queue("q", policy=document(allow("sqs:*", "*"))), "wildcard action(s) sqs:*"),
    (kms_key(policy=document(allow("kms:*", "*"))), "wildcard action(s) kms:*"),
])
def test_wildcard_actions_are_blocked(pack: PolicyPackProcess, offender: AnalyzerResource, reported: str) -> None:
    messages = violations(pack.analyze(offender), RULE)

    assert len(messages) == 1
    assert reported in messages[0]


def test_each_offending_document_is_reported_separately(pack: PolicyPackProcess) -> None:
    offender = role(assumeRolePolicy=document(allow("sts:*", "*")),
                    inlinePolicies=[{"name": "a", "policy": document(allow("*", "*"))}])

    assert len(violations(pack.analyze(offender), RULE)) == 2


def test_an_unknown_document_fails_closed_and_the_others_are_still_checked(pack: PolicyPackProcess) -> None:
    offender = role(inlinePolicies=[{"name": "later", "policy": unknown()},
                                    {"name": "admin", "policy": document(allow("*", "*"))}])

    messages = violations(pack.analyze(offender), RULE)

    assert len(messages) == 2
    assert messages[0].startswith("cannot verify at the update")
    assert "inlinePolicies[2]" in messages[1]


def test_an_unknown_resource_arn_does_not_hide_a_wildcard_action(pack: PolicyPackProcess) -> None:
    structured = resource("aws:iam/policy:Policy", "structured", {"policy": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": unknown()}]}})

    [message] = violations(pack.analyze(structured), RULE)

    assert "wildcard action(s) *" in message


def attachment(policy_arn: object) -> AnalyzerResource:
    return resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "fleetguard-attach",
                    {"role": "fleetguard-role", "policyArn": policy_arn})


@pytest.mark.parametrize(("offender", "reported"), [
    (attachment("arn:aws:iam::aws:policy/AdministratorAccess"), "AdministratorAccess"),
    (attachment("arn:aws-us-gov:iam::aws:policy/AWSIoTFullAccess"), "AWSIoTFullAccess"),
    (attachment("arn:aws:iam::aws:policy/AWSLambda_FullAccess"), "AWSLambda_FullAccess"),
    (role(managedPolicyArns=["arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
                             "arn:aws:iam::aws:policy/PowerUserAccess"]), "PowerUserAccess"),
])
def test_broad_aws_managed_policies_are_blocked(pack: PolicyPackProcess, offender: AnalyzerResource,
                                                reported: str) -> None:
    [message] = violations(pack.analyze(offender), RULE)

    assert f"attaches the AWS managed policy {reported}" in message


@pytest.mark.parametrize("policy_arn", [
    "arn:aws:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit",
    "arn:aws:iam::aws:policy/service-role/AWSIoTDeviceDefenderAddThingsToThingGroupMitigationAction",
    "arn:aws:iam::123456789012:policy/AdministratorAccess",  # a customer policy, checked where it is written
    unknown(),
])
def test_scoped_or_customer_policy_attachments_pass(pack: PolicyPackProcess, policy_arn: object) -> None:
    result = pack.analyze(attachment(policy_arn))

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


def test_the_iam_rule_does_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    assert RULE in pack.analyze(log_group()).not_applicable

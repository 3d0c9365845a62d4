"""Custom authorizer policies over gRPC: token signing, and the function's invoke permission scoped to
AWS IoT and the authorizer."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess
from tests.policies.stack_builders import (
    PREFIX,
    authorizer,
    authorizer_function,
    authorizer_permission,
    changed,
    kms_key,
    unknown,
    violations,
)

SIGNING = "authorizer-signing-enabled"
PERMISSION = "authorizer-function-permission-scoped"
NATIVE = "aws-native:iot:Authorizer"


@pytest.mark.parametrize("built", [authorizer(), authorizer(NATIVE)], ids=["classic", "native"])
def test_a_signing_authorizer_passes(pack: PolicyPackProcess, built: AnalyzerResource) -> None:
    result = pack.analyze(built)

    assert not result.diagnostics
    assert SIGNING not in result.not_applicable


@pytest.mark.parametrize(("built", "reported"), [
    (authorizer(signingDisabled=True), "signingDisabled is true"),
    (authorizer(NATIVE, signingDisabled=True), "signingDisabled is true"),
    (authorizer(tokenKeyName=None), "tokenKeyName is not set"),
    (authorizer(NATIVE, tokenSigningPublicKeys={}), "tokenSigningPublicKeys is not set"),
    (authorizer(tokenKeyName=None, tokenSigningPublicKeys=None), "tokenKeyName and tokenSigningPublicKeys are not"),
])
def test_an_authorizer_that_does_not_verify_tokens_is_blocked(
    pack: PolicyPackProcess, built: AnalyzerResource, reported: str,
) -> None:
    [message] = violations(pack.analyze(built), SIGNING)

    assert message.startswith(reported)


def test_signing_does_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    assert "does not govern aws:kms/key:Key" in pack.analyze(kms_key()).not_applicable[SIGNING]


def test_a_signing_flag_unknown_at_preview_is_advisory(preview_pack: PolicyPackProcess) -> None:
    result = preview_pack.analyze(authorizer(signingDisabled=unknown()))

    [diagnostic] = result.diagnostics
    assert diagnostic.policy_name == SIGNING
    assert not diagnostic.mandatory


# -- the function's permission (stack rule) -----------------------------------------------------------------

def fleet(*replacements: AnalyzerResource) -> list[AnalyzerResource]:
    by_type = {item.type: item for item in replacements}
    return [by_type.get(item.type, item) for item in (authorizer(), authorizer_function(), authorizer_permission())]


def test_a_permission_for_iot_and_the_authorizer_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(fleet())

    assert not violations(result, PERMISSION)
    assert PERMISSION not in result.not_applicable


def test_the_function_is_matched_by_name_or_arn_without_dependencies(pack: PolicyPackProcess) -> None:
    by_arn = dataclasses.replace(
        authorizer_permission(function="arn:aws:lambda:us-east-1:123456789012:function:fleet-authorizer:live",
                              principal="*"),
        property_dependencies={})
    plain_authorizer = dataclasses.replace(authorizer(), property_dependencies={})

    [message] = violations(pack.analyze_stack([plain_authorizer, by_arn]), PERMISSION)

    assert "principal is '*'" in message


@pytest.mark.parametrize(("permission", "reported"), [
    (authorizer_permission(principal="lambda.amazonaws.com"), "principal is 'lambda.amazonaws.com'"),
    (authorizer_permission(action="lambda:*"), "action is 'lambda:*'"),
    (dataclasses.replace(authorizer_permission(sourceArn=None), property_dependencies={"function": [
        authorizer_function().urn]}), "sourceArn is not set"),
    (dataclasses.replace(authorizer_permission(sourceArn=f"{PREFIX}:authorizer/*"), property_dependencies={
        "function": [authorizer_function().urn]}), "does not name the authorizer"),
])
def test_a_broader_permission_is_blocked(pack: PolicyPackProcess, permission: AnalyzerResource, reported: str) -> None:
    [message] = violations(pack.analyze_stack(fleet(permission)), PERMISSION)

    assert message.startswith("Lambda permission fleet-authorizer-invoke on authorizer fleet-authorizer's function")
    assert reported in message


def test_an_authorizer_without_a_permission_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack([authorizer(), authorizer_function()]), PERMISSION)

    assert message.startswith("no Lambda permission in the stack lets AWS IoT invoke authorizer fleet-authorizer")


def test_a_stack_without_authorizers_is_not_applicable(pack: PolicyPackProcess) -> None:
    assert "has none" in pack.analyze_stack([kms_key()]).not_applicable[PERMISSION]


def test_references_unknown_at_preview_follow_dependencies(preview_pack: PolicyPackProcess) -> None:
    # The function ARN and the authorizer ARN are unknown at preview; the dependencies name them.
    preview = fleet(changed(authorizer(), authorizerFunctionArn=unknown()),
                    changed(authorizer_permission(), function=unknown(), sourceArn=unknown()))

    result = preview_pack.analyze_stack(preview)

    assert not violations(result, PERMISSION)


def test_a_source_arn_unknown_without_a_dependency_is_advisory_at_preview(preview_pack: PolicyPackProcess) -> None:
    undecided = dataclasses.replace(changed(authorizer_permission(), sourceArn=unknown()),
                                    property_dependencies={"function": [authorizer_function().urn]})

    result = preview_pack.analyze_stack(fleet(undecided))

    [diagnostic] = [item for item in result.diagnostics if item.policy_name == PERMISSION]
    assert "cannot verify until the update" in diagnostic.message
    assert not diagnostic.mandatory

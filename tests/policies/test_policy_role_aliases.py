"""Role alias policies over gRPC: credential lifetime within the configured bound, and the aliased role
without wildcard actions; for the classic and aws-native types."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyzer import AnalyzerResource, PolicyPackProcess
from tests.policies.stack_builders import (
    credentials_role,
    kms_key,
    role_alias,
    role_policy_for,
    unknown,
    violations,
)

DURATION = "role-alias-credential-duration"
ROLE = "role-alias-role-no-wildcards"
NATIVE = "aws-native:iot:RoleAlias"


@pytest.mark.parametrize("alias", [role_alias(), role_alias(NATIVE, duration=900), role_alias(duration=None)],
                         ids=["classic", "native", "default-duration"])
def test_an_alias_within_the_bound_passes(pack: PolicyPackProcess, alias: AnalyzerResource) -> None:
    result = pack.analyze(alias)

    assert not result.diagnostics
    assert DURATION not in result.not_applicable


@pytest.mark.parametrize(("alias", "reported"), [
    (role_alias(duration=43200), "credentialDuration is 43200 s; this environment allows at most 3600 s"),
    (role_alias(NATIVE, duration=7200), "credentialDurationSeconds is 7200 s"),
])
def test_a_longer_credential_lifetime_is_blocked(
    pack: PolicyPackProcess, alias: AnalyzerResource, reported: str,
) -> None:
    [message] = violations(pack.analyze(alias), DURATION)

    assert message.startswith(reported)


def test_the_bound_is_configurable_and_the_aws_default_counts_against_it(pack: PolicyPackProcess) -> None:
    pack.configure({DURATION: {"maximumCredentialDurationSeconds": 900}})

    [message] = violations(pack.analyze(role_alias(duration=None)), DURATION)
    assert "AWS IoT's default 3600 s" in message
    assert not violations(pack.analyze(role_alias(NATIVE, duration=900)), DURATION)


def test_duration_does_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    assert "does not govern aws:kms/key:Key" in pack.analyze(kms_key()).not_applicable[DURATION]


def test_a_duration_unknown_at_preview_is_advisory(preview_pack: PolicyPackProcess) -> None:
    [diagnostic] = preview_pack.analyze(role_alias(duration=unknown())).diagnostics

    assert diagnostic.policy_name == DURATION
    assert not diagnostic.mandatory


# -- the aliased role (stack rule) --------------------------------------------------------------------------

@pytest.mark.parametrize("alias", [role_alias(), role_alias(NATIVE)], ids=["classic", "native"])
def test_an_alias_for_a_scoped_role_passes(pack: PolicyPackProcess, alias: AnalyzerResource) -> None:
    result = pack.analyze_stack([alias, *credentials_role()])

    assert not violations(result, ROLE)
    assert ROLE not in result.not_applicable


@pytest.mark.parametrize("actions", [["s3:*"], ["*"], ["s3:PutObject", "iot:Get*"]])
def test_an_alias_for_a_role_with_wildcard_actions_is_blocked(pack: PolicyPackProcess, actions: list[str]) -> None:
    [message] = violations(pack.analyze_stack([role_alias(), *credentials_role(actions)]), ROLE)

    assert message.startswith("role alias fleet-device-credentials-alias hands devices role fleet-device-credentials")
    assert "wildcard action(s)" in message


def test_a_stack_without_role_aliases_is_not_applicable(pack: PolicyPackProcess) -> None:
    assert "has none" in pack.analyze_stack([kms_key(), *credentials_role()]).not_applicable[ROLE]


def test_a_role_arn_unknown_at_preview_follows_its_dependency(preview_pack: PolicyPackProcess) -> None:
    role, policy = credentials_role(["s3:*"])
    alias = dataclasses.replace(role_alias(role_arn=unknown()), property_dependencies={"roleArn": [role.urn]})
    preview_role = dataclasses.replace(role, outputs={**role.inputs, "arn": unknown()})
    undecided = role_policy_for(role, unknown(), by_dependency=True)

    seen = preview_pack.analyze_stack([alias, preview_role, role_policy_for(role, policy.inputs["policy"],
                                                                            by_dependency=True)])
    deferred = preview_pack.analyze_stack([alias, preview_role, undecided])

    assert "wildcard action(s) s3:*" in violations(seen, ROLE)[0]
    [diagnostic] = [item for item in deferred.diagnostics if item.policy_name == ROLE]
    assert "cannot verify until the update" in diagnostic.message
    assert not diagnostic.mandatory


def test_a_role_arn_still_unknown_at_the_update_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack([role_alias(role_arn=unknown()), *credentials_role()]), ROLE)

    assert message.startswith("cannot verify at the update: roleArn of fleet-device-credentials-alias is unknown")

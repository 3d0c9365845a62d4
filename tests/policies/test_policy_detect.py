"""Detect rules over gRPC: alert target, targets, and ML Detect where the environment requires it."""

from __future__ import annotations

import pytest

from harness.analyzer import PolicyPackProcess
from tests.policies.stack_builders import (
    ML_BEHAVIOR,
    RULE_BEHAVIOR,
    changed,
    compliant_stack,
    kms_key,
    replace,
    security_profile,
    topic,
    unknown,
    violations,
    without,
)

ALERT = "detect-profile-alert-target"
TARGETS = "detect-profile-has-targets"
ML = "detect-ml-profile-present"


def test_a_profile_with_an_sns_alert_target_and_a_target_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(security_profile())

    assert not result.diagnostics
    assert ALERT not in result.not_applicable
    assert TARGETS not in result.not_applicable


@pytest.mark.parametrize(("alert_targets", "reported"), [
    (None, "no SNS target"),
    ({}, "no SNS target"),
    ({"SNS": {"roleArn": "arn:aws:iam::123456789012:role/r"}}, "alertTargets.SNS.alertTargetArn is missing"),
    ({"SNS": {"alertTargetArn": "arn:aws:sns:us-east-1:123456789012:t"}}, "alertTargets.SNS.roleArn is missing"),
])
def test_a_profile_that_alerts_nobody_is_blocked(pack: PolicyPackProcess, alert_targets: object, reported: str) -> None:
    profile = changed(security_profile(), alertTargets=alert_targets)

    [message] = violations(pack.analyze(profile), ALERT)

    assert reported in message


def test_alert_target_arns_unknown_at_preview_count_as_set(pack: PolicyPackProcess) -> None:
    profile = security_profile(alertTargets={"SNS": {"alertTargetArn": unknown(), "roleArn": unknown()}})

    assert not violations(pack.analyze(profile), ALERT)


def test_unknown_alert_targets_fail_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(security_profile(alertTargets=unknown())), ALERT)

    assert message.startswith("cannot verify at the update")


@pytest.mark.parametrize("target_arns", [None, []])
def test_a_profile_without_targets_is_blocked(pack: PolicyPackProcess, target_arns: object) -> None:
    [message] = violations(pack.analyze(changed(security_profile(), targetArns=target_arns)), TARGETS)

    assert "targetArns is empty" in message


def test_target_arns_that_are_unknown_elements_still_count(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(security_profile(targetArns=[unknown()])), TARGETS)


def test_an_unknown_target_list_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(security_profile(targetArns=unknown())), TARGETS)

    assert message.startswith("cannot verify at the update")


def test_detect_resource_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(kms_key())

    assert ALERT in result.not_applicable
    assert TARGETS in result.not_applicable


# -- ML Detect (a stack policy) -------------------------------------------------------------------------------

def test_ml_is_not_required_by_default(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), "aws-native:iot:SecurityProfile")

    result = pack.analyze_stack(stack)

    assert "does not require ML Detect" in result.not_applicable[ML]


def test_an_ml_profile_satisfies_an_environment_that_requires_it(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})

    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, ML)
    assert ML not in result.not_applicable


def test_rule_profiles_alone_are_blocked_where_ml_is_required(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})
    stack = replace(compliant_stack(), security_profile("ml", behaviors=[RULE_BEHAVIOR]))

    [message] = violations(pack.analyze_stack(stack), ML)

    assert "none of the 2 security profile(s)" in message


def test_no_profile_at_all_is_blocked_where_ml_is_required(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})

    [message] = violations(pack.analyze_stack(without(compliant_stack(), "aws-native:iot:SecurityProfile")), ML)

    assert "none of the 0 security profile(s)" in message


def test_unknown_behaviors_fail_closed_unless_another_profile_decides(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})
    unknown_rules = changed(security_profile(), behaviors=unknown())
    stack = replace(compliant_stack(), unknown_rules)

    assert not violations(pack.analyze_stack(stack), ML)

    only_unknown = replace(stack, security_profile("ml", behaviors=[RULE_BEHAVIOR]))
    [message] = violations(pack.analyze_stack(only_unknown), ML)
    assert message.startswith("cannot verify at the update")


def test_the_ml_rule_does_not_apply_to_stacks_without_iot(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})

    result = pack.analyze_stack([kms_key(), topic()])

    assert ML in result.not_applicable


def test_ml_behaviors_are_recognised_by_their_criteria(pack: PolicyPackProcess) -> None:
    pack.configure({ML: {"required": True}})
    mixed = security_profile("mixed", behaviors=[RULE_BEHAVIOR, ML_BEHAVIOR])
    stack = [*without(compliant_stack(), "aws-native:iot:SecurityProfile"), mixed]

    assert not violations(pack.analyze_stack(stack), ML)

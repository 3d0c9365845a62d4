"""Audit rules over gRPC: critical checks enabled (or exempted with a reason), notifications, schedule."""

from __future__ import annotations

import pytest

from harness.analyzer import PolicyConfigError, PolicyPackProcess
from tests.policies.stack_builders import (
    CRITICAL_CHECKS,
    audit_configuration,
    changed,
    compliant_stack,
    kms_key,
    replace,
    scheduled_audit,
    topic,
    unknown,
    violations,
    without,
)

CRITICAL = "audit-critical-checks-enabled"
NOTIFICATIONS = "audit-notifications-enabled"
SCHEDULED = "audit-scheduled-critical-checks"


def test_an_audit_configuration_with_every_critical_check_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(audit_configuration())

    assert not result.diagnostics
    assert CRITICAL not in result.not_applicable


@pytest.mark.parametrize("check", sorted(CRITICAL_CHECKS))
def test_each_disabled_critical_check_is_blocked(pack: PolicyPackProcess, check: str) -> None:
    [message] = violations(pack.analyze(audit_configuration(disabled=[check])), CRITICAL)

    assert check in message
    assert "no exemption" in message


def test_a_critical_check_left_out_of_the_configuration_counts_as_disabled(pack: PolicyPackProcess) -> None:
    configuration = audit_configuration()
    checks = dict(configuration.inputs["auditCheckConfigurations"])
    del checks["iotPolicyOverlyPermissiveCheck"]

    messages = violations(pack.analyze(changed(configuration, auditCheckConfigurations=checks)), CRITICAL)

    assert len(messages) == 1
    assert "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in messages[0]


def test_an_exemption_with_a_written_reason_allows_a_disabled_check(pack: PolicyPackProcess) -> None:
    pack.configure({CRITICAL: {"exemptions": {
        "DEVICE_CERTIFICATE_SHARED_CHECK": "Lab bench devices share one test certificate",
    }}})

    result = pack.analyze(audit_configuration(disabled=["DEVICE_CERTIFICATE_SHARED_CHECK"]))

    assert not violations(result, CRITICAL)


def test_an_exemption_covers_only_the_check_it_names(pack: PolicyPackProcess) -> None:
    pack.configure({CRITICAL: {"exemptions": {
        "DEVICE_CERTIFICATE_SHARED_CHECK": "Lab bench devices share one test certificate",
    }}})

    messages = violations(pack.analyze(audit_configuration(
        disabled=["DEVICE_CERTIFICATE_SHARED_CHECK", "CA_CERTIFICATE_KEY_QUALITY_CHECK"])), CRITICAL)

    assert len(messages) == 1
    assert "CA_CERTIFICATE_KEY_QUALITY_CHECK" in messages[0]


def test_an_exemption_reason_under_ten_characters_is_rejected_by_the_config_schema(pack: PolicyPackProcess) -> None:
    with pytest.raises(PolicyConfigError, match=r"audit-critical-checks-enabled: exemptions\.DEVICE_CERTIFICATE_"):
        pack.configure({CRITICAL: {"exemptions": {"DEVICE_CERTIFICATE_SHARED_CHECK": "lab"}}})


def test_a_blank_padded_reason_is_not_a_reason(pack: PolicyPackProcess) -> None:
    # Ten characters that pass the schema's minLength but say nothing.
    pack.configure({CRITICAL: {"exemptions": {"DEVICE_CERTIFICATE_SHARED_CHECK": "   lab    "}}})

    [message] = violations(pack.analyze(audit_configuration(disabled=["DEVICE_CERTIFICATE_SHARED_CHECK"])), CRITICAL)

    assert "at least 10 characters" in message


def test_only_critical_checks_can_be_exempted(pack: PolicyPackProcess) -> None:
    with pytest.raises(PolicyConfigError, match="exemptions"):
        pack.configure({CRITICAL: {"exemptions": {"LOGGING_DISABLED_CHECK": "We do not need this one"}}})


def test_an_unknown_enabled_flag_fails_closed(pack: PolicyPackProcess) -> None:
    configuration = audit_configuration()
    checks = dict(configuration.inputs["auditCheckConfigurations"])
    checks["deviceCertificateSharedCheck"] = {"enabled": unknown()}

    [message] = violations(pack.analyze(changed(configuration, auditCheckConfigurations=checks)), CRITICAL)

    assert message.startswith("cannot verify at the update")
    assert "deviceCertificateSharedCheck" in message


@pytest.mark.parametrize(("sns", "reported"), [
    (None, "auditNotificationTargetConfigurations.sns is missing"),
    ({"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "roleArn": "arn:aws:iam::123456789012:role/r",
      "enabled": False}, "enabled must be true"),
    ({"roleArn": "arn:aws:iam::123456789012:role/r", "enabled": True}, "sns.targetArn is missing"),
    ({"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "enabled": True}, "sns.roleArn is missing"),
])
def test_audit_notifications_must_be_on(pack: PolicyPackProcess, sns: object, reported: str) -> None:
    targets = {"sns": sns} if sns is not None else {}

    messages = violations(pack.analyze(audit_configuration(auditNotificationTargetConfigurations=targets)),
                          NOTIFICATIONS)

    assert any(reported in message for message in messages)


def test_notification_arns_that_are_unknown_at_preview_still_count_as_set(pack: PolicyPackProcess) -> None:
    configuration = audit_configuration(auditNotificationTargetConfigurations={"sns": {
        "targetArn": unknown(), "roleArn": unknown(), "enabled": True}})

    assert not violations(pack.analyze(configuration), NOTIFICATIONS)


def test_audit_resource_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(topic())

    assert CRITICAL in result.not_applicable
    assert NOTIFICATIONS in result.not_applicable


# -- the scheduled audit (a stack policy) -----------------------------------------------------------------

def test_a_daily_audit_of_every_critical_check_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, SCHEDULED)
    assert SCHEDULED not in result.not_applicable


def test_a_stack_without_scheduled_audits_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack(without(compliant_stack(), "aws-native:iot:ScheduledAudit")),
                           SCHEDULED)

    assert "no scheduled audit runs at least WEEKLY" in message


def test_a_schedule_rarer_than_the_configured_minimum_does_not_count(pack: PolicyPackProcess) -> None:
    stack = replace(compliant_stack(), scheduled_audit("WEEKLY"))
    pack.configure({SCHEDULED: {"minimumFrequency": "DAILY"}})

    [message] = violations(pack.analyze_stack(stack), SCHEDULED)

    assert "at least DAILY" in message


def test_a_monthly_schedule_does_not_meet_the_weekly_default(pack: PolicyPackProcess) -> None:
    assert violations(pack.analyze_stack(replace(compliant_stack(), scheduled_audit("MONTHLY"))), SCHEDULED)


def test_a_schedule_missing_a_critical_check_is_blocked(pack: PolicyPackProcess) -> None:
    partial = [name for name in CRITICAL_CHECKS if name != "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]

    [message] = violations(pack.analyze_stack(replace(compliant_stack(), scheduled_audit(checks=partial))), SCHEDULED)

    assert "misses IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in message


def test_a_check_the_account_configuration_disables_need_not_be_scheduled(pack: PolicyPackProcess) -> None:
    # Scheduled audits may only name enabled checks; the exemption itself is judged by the other rule.
    partial = [name for name in CRITICAL_CHECKS if name != "DEVICE_CERTIFICATE_SHARED_CHECK"]
    stack = replace(compliant_stack(), scheduled_audit(checks=partial),
                    audit_configuration(disabled=["DEVICE_CERTIFICATE_SHARED_CHECK"]))

    assert not violations(pack.analyze_stack(stack), SCHEDULED)


def test_a_stack_without_an_account_audit_configuration_is_blocked(pack: PolicyPackProcess) -> None:
    stack = without(compliant_stack(), "aws-native:iot:AccountAuditConfiguration")

    [message] = violations(pack.analyze_stack(stack), SCHEDULED)

    assert "no AccountAuditConfiguration" in message


def test_an_audit_configuration_owned_elsewhere_needs_schedules_covering_every_critical_check(
    pack: PolicyPackProcess,
) -> None:
    pack.configure({SCHEDULED: {"auditConfigurationOwnedElsewhere": True}})
    owned_elsewhere = without(compliant_stack(), "aws-native:iot:AccountAuditConfiguration")
    partial = [name for name in CRITICAL_CHECKS if name != "DEVICE_CERTIFICATE_SHARED_CHECK"]

    assert not violations(pack.analyze_stack(owned_elsewhere), SCHEDULED)
    [message] = violations(pack.analyze_stack(replace(owned_elsewhere, scheduled_audit(checks=partial))), SCHEDULED)
    assert "misses DEVICE_CERTIFICATE_SHARED_CHECK" in message


def test_unknown_scheduled_targets_fail_closed(pack: PolicyPackProcess) -> None:
    stack = replace(compliant_stack(), changed(scheduled_audit(), targetCheckNames=unknown()))

    [message] = violations(pack.analyze_stack(stack), SCHEDULED)

    assert message.startswith("cannot verify at the update")


def test_the_schedule_rule_does_not_apply_to_stacks_without_iot(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([kms_key(), topic()])

    assert SCHEDULED in result.not_applicable
    assert not violations(result, SCHEDULED)

"""Device Defender Audit: critical checks on, notifications on, and critical checks on a schedule."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import (
    Controls,
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    each,
    of_types,
    option,
    report_cannot_verify,
    resource_policy,
    stack_policy,
)
from .shared_facts import AUDIT_CHECKS_BY_NAME, CRITICAL_AUDIT_CHECKS, FREQUENCY_INTERVAL_DAYS, MIN_EXEMPTION_REASON
from .values import UNKNOWN, CannotVerify, has_value, known, path

ACCOUNT_AUDIT_CONFIGURATION: Final = "aws-native:iot:AccountAuditConfiguration"
SCHEDULED_AUDIT: Final = "aws-native:iot:ScheduledAudit"

CRITICAL_CHECK_KEYS: Final = {name: AUDIT_CHECKS_BY_NAME[name].native_property for name in CRITICAL_AUDIT_CHECKS}
"""Critical audit checks by API name, each with its key under auditCheckConfigurations."""

AUDIT_CONTROLS = Controls(
    pci=("2.2.1", "11.3.1"),
    hipaa=("164.308(a)(1)(ii)(D)", "164.308(a)(8)"),
    nist=("CA-7", "CM-6", "RA-5"),
)

EXEMPTIONS_SCHEMA = PolicyConfigSchema(properties={
    "exemptions": {
        "type": "object",
        "description": ("Critical checks this environment may leave disabled, by API name, each with the "
                        f"written reason (at least {MIN_EXEMPTION_REASON} characters)."),
        "propertyNames": {"enum": sorted(CRITICAL_CHECK_KEYS)},
        "additionalProperties": {"type": "string", "minLength": MIN_EXEMPTION_REASON},
        "default": {},
    },
})
SCHEDULE_SCHEMA = PolicyConfigSchema(properties={
    "minimumFrequency": {
        "type": "string",
        "enum": list(FREQUENCY_INTERVAL_DAYS),
        "description": "The least frequent schedule that counts as auditing the critical checks.",
        "default": "WEEKLY",
    },
    "auditConfigurationOwnedElsewhere": {
        "type": "boolean",
        "description": ("The account audit configuration is managed outside this stack (the stack's "
                        "audit.manageAccountConfiguration is false). The stack's schedules must then cover "
                        "every critical check, since the pack cannot see which ones the owner enables."),
        "default": False,
    },
})


def check_enabled(configuration: dict[str, Any], check_name: str) -> Any:
    """True, False, or ``UNKNOWN`` for one check; a check left out of the configuration is disabled."""
    enabled = path(configuration, "auditCheckConfigurations", CRITICAL_CHECK_KEYS[check_name], "enabled")
    return UNKNOWN if enabled is UNKNOWN else enabled is True


def check_critical_checks(ctx: ResourceContext, report: Report) -> None:
    exemptions: dict[str, Any] = dict(option(ctx.config, EXEMPTIONS_SCHEMA, "exemptions"))
    for check_name, key in CRITICAL_CHECK_KEYS.items():
        enabled = known(check_enabled(ctx.props, check_name),
                        f"auditCheckConfigurations.{key}.enabled")
        if enabled:
            continue
        reason = exemptions.get(check_name)
        if reason is None:
            report(f"critical audit check {check_name} (auditCheckConfigurations.{key}) is not enabled and has "
                   "no exemption in the policy config")
        elif not isinstance(reason, str) or len(reason.strip()) < MIN_EXEMPTION_REASON:
            report(f"critical audit check {check_name} is disabled with exemption reason {reason!r}; a reason "
                   f"must be at least {MIN_EXEMPTION_REASON} characters")


def check_notifications(ctx: ResourceContext, report: Report) -> None:
    sns = known(path(ctx.props, "auditNotificationTargetConfigurations", "sns"),
                "auditNotificationTargetConfigurations.sns")
    if not isinstance(sns, dict):
        report("auditNotificationTargetConfigurations.sns is missing: audit results would reach nobody")
        return
    if known(sns.get("enabled"), "auditNotificationTargetConfigurations.sns.enabled") is not True:
        report("auditNotificationTargetConfigurations.sns.enabled must be true")
    for field in ("targetArn", "roleArn"):
        if not has_value(sns.get(field)):
            report(f"auditNotificationTargetConfigurations.sns.{field} is missing")


def check_scheduled_audits(ctx: StackContext, report: Report) -> None:
    ctx.require_iot("audit-scheduled-critical-checks")
    configurations = ctx.of_type(ACCOUNT_AUDIT_CONFIGURATION)
    audits = ctx.of_type(SCHEDULED_AUDIT)
    enabled_critical: set[str] = set()
    if not configurations:
        if not option(ctx.config, SCHEDULE_SCHEMA, "auditConfigurationOwnedElsewhere"):
            report("the stack has no AccountAuditConfiguration; scheduled audits can only run checks it enables")
            return
        enabled_critical.update(CRITICAL_CHECK_KEYS)

    def collect(configuration: StackResource) -> None:
        for check_name, key in CRITICAL_CHECK_KEYS.items():
            if known(check_enabled(configuration.props, check_name), f"auditCheckConfigurations.{key}.enabled"):
                enabled_critical.add(check_name)

    each(configurations, report, collect)
    minimum = option(ctx.config, SCHEDULE_SCHEMA, "minimumFrequency")
    covered: list[set[str]] = []
    unverifiable: list[StackResource] = []
    for audit in audits:
        frequency = audit.props.get("frequency")
        targets = audit.props.get("targetCheckNames")
        if frequency is UNKNOWN or targets is UNKNOWN or UNKNOWN in (targets or []):
            unverifiable.append(audit)
        elif frequency in FREQUENCY_INTERVAL_DAYS and (
            FREQUENCY_INTERVAL_DAYS[frequency] <= FREQUENCY_INTERVAL_DAYS[minimum]
        ):
            covered.append(set(targets or []))
    gaps = [sorted(enabled_critical - targets) for targets in covered]
    if any(not gap for gap in gaps):
        return
    for audit in unverifiable:
        report_cannot_verify(report, CannotVerify(f"the frequency or targetCheckNames of {audit.name}"), audit.urn)
    if unverifiable:
        return
    if not gaps:
        report(f"no scheduled audit runs at least {minimum} ({len(audits)} scheduled audit(s) in the stack)")
    else:
        closest = min(gaps, key=len)
        report(f"no scheduled audit running at least {minimum} covers every enabled critical check; the closest "
               f"misses {', '.join(closest)}")


def policies() -> list[Policy]:
    governs = of_types(ACCOUNT_AUDIT_CONFIGURATION)
    return [
        resource_policy(
            name="audit-critical-checks-enabled",
            description="Every critical Device Defender audit check is enabled, unless exempted with a reason.",
            severity=Severity.CRITICAL,
            controls=AUDIT_CONTROLS,
            remediation_steps=(
                "Set enabled: true for each critical check under auditCheckConfigurations. If an environment "
                "must keep one off, add it to this policy's exemptions config with a written reason."
            ),
            governs=governs,
            check=check_critical_checks,
            config_schema=EXEMPTIONS_SCHEMA,
        ),
        resource_policy(
            name="audit-notifications-enabled",
            description="Audit results are sent to an SNS topic (notifications enabled, topic and role set).",
            severity=Severity.HIGH,
            controls=Controls(
                pci=("10.7.2", "12.10.5"),
                hipaa=("164.308(a)(1)(ii)(D)", "164.308(a)(6)(ii)"),
                nist=("CA-7", "SI-4(5)"),
            ),
            remediation_steps=(
                "Set auditNotificationTargetConfigurations.sns with enabled: true, the alert topic's ARN as "
                "targetArn and a role IoT can assume to publish to it as roleArn."
            ),
            governs=governs,
            check=check_notifications,
        ),
        stack_policy(
            name="audit-scheduled-critical-checks",
            description=("A scheduled audit runs every enabled critical check at least as often as the "
                         "configured minimum frequency."),
            severity=Severity.HIGH,
            controls=AUDIT_CONTROLS,
            remediation_steps=(
                "Add an aws-native:iot:ScheduledAudit whose frequency is at least minimumFrequency and whose "
                "targetCheckNames include every critical check the account audit configuration enables."
            ),
            check=check_scheduled_audits,
            config_schema=SCHEDULE_SCHEMA,
        ),
    ]

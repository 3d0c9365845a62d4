"""``fleetguard:audit``: which Device Defender audit checks run, with what options, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from settings import facts
from settings.audit_mitigations import CheckMitigation, parse_mitigations
from settings.audit_suppressions import SuppressionSetting, parse_suppressions, utc_today
from settings.reader import Node

CHECK_SELECTORS = ("critical", "enabled")
"""Shorthands a scheduled audit may use instead of listing check names: every enabled critical check,
or every enabled check."""


@dataclass(frozen=True)
class CheckSetting:
    """One audit check as the account audit configuration will set it."""

    name: str
    enabled: bool
    threshold_days: int | None = None
    """The check's numeric option (expiry or age threshold), when it takes one."""
    exemption_reason: str | None = None
    """Why a critical check is disabled: required (10+ characters) for critical checks, as in the policy
    pack's exemptions."""


@dataclass(frozen=True)
class ScheduledAuditSetting:
    """A recurring audit of a set of checks."""

    name: str
    frequency: str
    checks: tuple[str, ...]
    day_of_week: str | None = None
    day_of_month: str | None = None


@dataclass(frozen=True)
class AuditSettings:
    """Account audit configuration, notifications and schedules."""

    manage_account_configuration: bool
    """This stack owns the account's audit configuration (one per account and region). When false another
    stack, the console or the organisation owns it: ``checks`` then state what that owner is expected to
    enable, and the schedules are validated against them."""
    checks: tuple[CheckSetting, ...]
    notifications_enabled: bool
    """Only when this stack owns the configuration: send audit results to the alert topic."""
    schedules: tuple[ScheduledAuditSetting, ...]
    suppressions: tuple[SuppressionSetting, ...] = ()
    """Findings suppressed by check and resource (Device Defender audit suppressions)."""
    mitigations: tuple[CheckMitigation, ...] = ()
    """Per audit check: the mitigation actions its non-compliant findings get, and who starts them."""

    @property
    def enabled_checks(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if check.enabled)

    @property
    def on_demand_checks(self) -> tuple[str, ...]:
        """What the on-demand audit document runs by default: the enabled critical checks (every enabled
        check when all critical ones are exempted); AWS refuses to audit a check that is not enabled."""
        critical = tuple(name for name in self.enabled_checks if name in facts.CRITICAL_AUDIT_CHECKS)
        return critical or self.enabled_checks


def parse_audit(node: Node, today: date | None = None) -> AuditSettings:
    """``today`` (UTC) judges suppression expiry dates; tests pass a fixed day."""
    section = node.mapping(allowed_keys=(
        "manageAccountConfiguration", "enableAllChecks", "checks", "notifications", "schedules", "suppressions",
        "mitigations",
    ))
    manage = section.child("manageAccountConfiguration").boolean(True)
    enable_all = section.child("enableAllChecks").boolean(True)
    overrides = section.child("checks").mapping()
    for name, _ in overrides.items("CHECK_NAME"):
        if name not in facts.AUDIT_CHECKS_BY_NAME:
            overrides.problems.add(
                f"{overrides.path}.{name}",
                f"unknown audit check; expected one of {', '.join(facts.AUDIT_CHECKS_BY_NAME)}",
            )
    checks = tuple(
        _parse_check(check, overrides.entry(check.name, "CHECK_NAME"), enable_all) for check in facts.AUDIT_CHECKS
    )
    enabled = {check.name for check in checks if check.enabled}
    schedules = tuple(section.child("schedules").each(lambda item: _parse_schedule(item, enabled)))
    section.child("schedules").fail_duplicates([schedule.name for schedule in schedules], "scheduled audit name")
    notifications = section.child("notifications")
    notifications_enabled = notifications.boolean(True)
    if not notifications.missing and not manage:
        # The notification target is part of the account configuration, which this stack then leaves alone.
        notifications.fail("only applies when manageAccountConfiguration is true; remove it or set "
                           "manageAccountConfiguration: true")
    return AuditSettings(
        manage_account_configuration=manage,
        checks=checks,
        notifications_enabled=notifications_enabled,
        schedules=schedules,
        suppressions=parse_suppressions(section.child("suppressions"), enabled, today or utc_today()),
        mitigations=parse_mitigations(section.child("mitigations"), frozenset(enabled)),
    )


def _parse_check(check: facts.AuditCheck, node: Node, enable_all: bool) -> CheckSetting:
    setting = _read_check(check, node, enable_all)
    if check.name in facts.CRITICAL_AUDIT_CHECKS and not setting.enabled and (
        setting.exemption_reason is None or len(setting.exemption_reason.strip()) < facts.MIN_EXEMPTION_REASON
    ):
        # The same rule the policy pack enforces at deploy time, caught before anything is registered.
        node.fail(f"a critical check can be disabled only with an exemptionReason of at least "
                  f"{facts.MIN_EXEMPTION_REASON} characters: {{enabled: false, exemptionReason: <why>}}")
    return setting


def _read_check(check: facts.AuditCheck, node: Node, enable_all: bool) -> CheckSetting:
    # Unlisted checks follow enableAllChecks, so every check ends up set explicitly either way.
    default_enabled = enable_all
    if node.missing:
        return CheckSetting(check.name, default_enabled, _default_threshold(check))
    if isinstance(node.value, bool):
        return CheckSetting(check.name, node.value, _default_threshold(check))
    allowed = ["enabled", "exemptionReason"]
    option_key = _option_key(check)
    if option_key:
        allowed.append(option_key)
    entry = node.mapping(allowed_keys=allowed)
    enabled = entry.child("enabled").boolean(default_enabled)
    threshold = _default_threshold(check)
    if option_key:
        low, high = facts.CERT_THRESHOLD_DAYS
        threshold = entry.child(option_key).integer(threshold, minimum=low, maximum=high)
    reason = entry.child("exemptionReason").string()
    return CheckSetting(check.name, enabled, threshold, reason)


def _option_key(check: facts.AuditCheck) -> str | None:
    """Config spelling of the check's option: CloudFormation's name with a lower-case first letter."""
    if check.threshold_option is None:
        return None
    return check.threshold_option[0].lower() + check.threshold_option[1:]


def _default_threshold(check: facts.AuditCheck) -> int | None:
    return facts.CERT_THRESHOLD_DEFAULTS.get(check.threshold_option or "")


def _parse_schedule(node: Node, enabled: set[str]) -> ScheduledAuditSetting | None:
    item = node.mapping(allowed_keys=("name", "frequency", "dayOfWeek", "dayOfMonth", "checks"))
    name = item.child("name").required_string(pattern=facts.SCHEDULED_AUDIT_NAME_PATTERN)
    frequency = item.child("frequency").required_string(allowed=facts.AUDIT_FREQUENCIES)
    day_of_week = item.child("dayOfWeek").string(allowed=facts.DAYS_OF_WEEK)
    day_of_month = _day_of_month(item.child("dayOfMonth"))
    if frequency in ("WEEKLY", "BIWEEKLY") and day_of_week is None and item.child("dayOfWeek").missing:
        item.child("dayOfWeek").fail(f"required when frequency is {frequency}; expected one of "
                                     f"{', '.join(facts.DAYS_OF_WEEK)}")
    if frequency == "MONTHLY" and day_of_month is None and item.child("dayOfMonth").missing:
        item.child("dayOfMonth").fail("required when frequency is MONTHLY; expected 1-31 or LAST")
    if frequency != "MONTHLY" and not item.child("dayOfMonth").missing:
        item.child("dayOfMonth").fail(f"only allowed when frequency is MONTHLY (frequency is {frequency})")
    if frequency not in ("WEEKLY", "BIWEEKLY") and not item.child("dayOfWeek").missing:
        item.child("dayOfWeek").fail(f"only allowed when frequency is WEEKLY or BIWEEKLY (frequency is {frequency})")
    checks = _scheduled_checks(item.child("checks"), enabled)
    if not name or not frequency or not checks:
        return None
    return ScheduledAuditSetting(name, frequency, checks, day_of_week, day_of_month)


def _day_of_month(node: Node) -> str | None:
    node.record("integer or LAST", allowed="1..31, LAST")
    if node.missing:
        return None
    if node.value == "LAST":
        return "LAST"
    day = node.value if isinstance(node.value, int) and not isinstance(node.value, bool) else None
    if isinstance(node.value, str) and node.value.isdigit():
        day = int(node.value)
    if day is None or not 1 <= day <= 31:
        node.fail("expected a day of month 1-31 or LAST")
        return None
    return str(day)


def _scheduled_checks(node: Node, enabled: set[str]) -> tuple[str, ...]:
    node.record("string or list of strings (required)", allowed=f"{', '.join(CHECK_SELECTORS)}, or check names")
    if node.missing:
        node.fail(f"required: a list of check names, or one of {', '.join(CHECK_SELECTORS)}")
        return ()
    if isinstance(node.value, str):
        selector = node.string(allowed=CHECK_SELECTORS)
        if selector == "critical":
            return tuple(name for name in facts.CRITICAL_AUDIT_CHECKS if name in enabled)
        if selector == "enabled":
            return tuple(check.name for check in facts.AUDIT_CHECKS if check.name in enabled)
        return ()
    names = node.string_list(allowed=tuple(facts.AUDIT_CHECKS_BY_NAME))
    if not names and isinstance(node.value, list):
        node.fail("expected at least one audit check")
    for name in names:
        if name not in enabled:
            node.fail(f"{name} is scheduled but disabled in fleetguard:audit.checks; AWS rejects such a schedule")
    return tuple(names)

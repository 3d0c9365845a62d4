"""Device Defender audit finding suppressions: each one says why, and ends within a reviewed window unless
it is deliberately indefinite (with a reason)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, ResourceContext, of_types, option, resource_policy
from .shared_facts import MIN_EXEMPTION_REASON
from .values import known

AUDIT_SUPPRESSION: Final = "pulumi-python:dynamic/fleetguard:AuditSuppression"
"""The type the Python SDK gives fleetguard's ``AuditSuppression`` dynamic resource (module fleetguard)."""

WINDOW_SCHEMA = PolicyConfigSchema(properties={
    "maxDays": {
        "type": "integer",
        "minimum": 1,
        "description": ("Days after the deploy date a dated suppression may run; a longer one must be "
                        "renewed (or declared indefinite, with a reason) on review."),
        "default": 90,
    },
})


def deploy_day() -> date:
    """Today in UTC, the time zone the suppression's expiry is an instant of."""
    return datetime.now(UTC).date()


def _expiry(value: object) -> date | None:
    """The day of a declared expiry (YYYY-MM-DD, or the exact instant a refresh read back)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        return None


def check_suppression_justified(ctx: ResourceContext, report: Report) -> None:
    reason = known(ctx.props.get("description"), "description")
    indefinite = known(ctx.props.get("suppressIndefinitely"), "suppressIndefinitely") is True
    written = reason.strip() if isinstance(reason, str) else ""
    if len(written) < MIN_EXEMPTION_REASON:
        kind = "an indefinite" if indefinite else "a"
        report(f"{kind} suppression of {ctx.props.get('checkName')} has description {reason!r}; the reason must "
               f"be at least {MIN_EXEMPTION_REASON} characters")
    if indefinite:
        return
    declared = known(ctx.props.get("expirationDate"), "expirationDate")
    expires = _expiry(declared)
    max_days = int(option(ctx.config, WINDOW_SCHEMA, "maxDays"))
    latest = deploy_day() + timedelta(days=max_days)
    if expires is None:
        report(f"expirationDate {declared!r} is not a date and the suppression is not indefinite")
    elif expires > latest:
        report(f"expirationDate {expires.isoformat()} is more than {max_days} days after today; the latest "
               f"allowed is {latest.isoformat()}")


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="audit-suppression-justified",
            description=(f"Every audit finding suppression has a reason of {MIN_EXEMPTION_REASON}+ characters "
                         "and expires within maxDays, unless it is indefinite with that reason."),
            severity=Severity.HIGH,
            controls=Controls(pci=("6.3.1", "12.3.1"), hipaa=("164.308(a)(1)(ii)(B)",), nist=("CA-5", "RA-7")),
            remediation_steps=(
                "Give the suppression (fleetguard:audit.suppressions) a reason that says why the finding is "
                "acceptable, and an expires date within maxDays of the deploy; renew it on review, or set "
                "expires: indefinite where the finding is accepted for good."
            ),
            governs=of_types(AUDIT_SUPPRESSION),
            check=check_suppression_justified,
            config_schema=WINDOW_SCHEMA,
        ),
    ]

"""``fleetguard:audit.suppressions``: audit findings the stack suppresses, one check and one resource each,
until a date or indefinitely, always with a written reason.

Each entry reads ``{check, resource: {<kind>: <identifier>}, expires: YYYY-MM-DD | indefinite, reason}``.
The identifier kind must be one the check reports its findings by (``facts.AUDIT_CHECK_RESOURCE_KINDS``),
shaped as AWS accepts it, and the expiry must lie in the future: "today" is an argument, so a test (or a
stack file checked in today) is judged against a fixed day rather than the day it happens to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from settings import facts
from settings.reader import Node

INDEFINITE = "indefinite"
"""The ``expires`` value of a suppression with no end."""


def utc_today() -> date:
    """The day it is now in UTC, the time zone AWS's expiry timestamps are read in."""
    return datetime.now(UTC).date()



@dataclass(frozen=True)
class SuppressionSetting:
    """One audit finding suppression, validated."""

    check: str
    resource_identifier: Mapping[str, Any]
    """The API's ``resourceIdentifier``: one kind, with a string or (for a policy version or an issuer
    certificate) an object of strings."""
    expires: date | None
    """The day the suppression ends (at 00:00 UTC); ``None`` suppresses indefinitely."""
    reason: str
    """Why the finding is acceptable; sent as the suppression's description."""

    @property
    def key(self) -> str:
        """Check and identifier as one stable string: what makes a suppression the one it is."""
        return f"{self.check}:{json.dumps(self.resource_identifier, sort_keys=True, separators=(',', ':'))}"


def parse_suppressions(node: Node, enabled_checks: set[str], today: date) -> tuple[SuppressionSetting, ...]:
    """Every entry of ``audit.suppressions``; duplicates (same check and resource) are refused."""
    suppressions = tuple(node.each(lambda item: _parse_suppression(item, enabled_checks, today)))
    node.fail_duplicates([suppression.key for suppression in suppressions], "suppression (check and resource)")
    return suppressions


def _parse_suppression(node: Node, enabled_checks: set[str], today: date) -> SuppressionSetting | None:
    item = node.mapping(allowed_keys=("check", "resource", "expires", "reason"))
    check = item.child("check").required_string(allowed=tuple(facts.AUDIT_CHECKS_BY_NAME))
    if check and check not in enabled_checks:
        # AWS suppresses findings only of checks the account audit configuration enables.
        item.child("check").fail("a suppression needs its check enabled in fleetguard:audit.checks")
    identifier = _resource_identifier(item.child("resource"), check)
    valid_expiry, expires = _expiry(item.child("expires"), today)
    reason = _reason(item.child("reason"))
    if not check or identifier is None or not valid_expiry or reason is None:
        return None
    return SuppressionSetting(check, identifier, expires, reason)


def _reason(node: Node) -> str | None:
    node.record("string (required)", allowed=f"1..{facts.AUDIT_DESCRIPTION_MAX} printable ASCII characters")
    if not isinstance(node.value, str) or not node.value.strip():
        node.fail("expected a reason: why this finding is acceptable")
        return None
    if len(node.value) > facts.AUDIT_DESCRIPTION_MAX or not re.fullmatch(facts.PRINTABLE_TEXT, node.value):
        node.fail(f"expected at most {facts.AUDIT_DESCRIPTION_MAX} printable ASCII characters and spaces, "
                  "without line breaks (what AWS accepts as a suppression's description)")
        return None
    return node.value


def _resource_identifier(node: Node, check: str) -> dict[str, Any] | None:
    node.record("object (required)", allowed=", ".join(facts.RESOURCE_IDENTIFIER_KINDS))
    reported = facts.AUDIT_CHECK_RESOURCE_KINDS.get(check, tuple(facts.RESOURCE_IDENTIFIER_KINDS))
    expected = f"expected an object with one key, the kind {check or 'the check'} reports: {', '.join(reported)}"
    if not isinstance(node.value, dict) or len(node.value) != 1:
        node.fail(expected)
        return None
    [kind_name] = node.value
    kind = facts.RESOURCE_IDENTIFIER_KINDS.get(kind_name)
    if kind is None or (check and kind_name not in reported):
        node.fail(expected)
        return None
    entry = node.entry(kind_name, "KIND")
    entry.record("string, or object (policyVersionIdentifier, issuerCertificateIdentifier)",
                 allowed="the identifier, within AWS's length and pattern for its kind")
    parsed = _text(entry, kind.text) if kind.text else _fields(entry, kind)
    return None if parsed is None else {kind_name: parsed}


def _text(node: Node, limits: facts.TextLimits) -> str | None:
    value = node.string()
    if value is None or node.missing:
        if node.missing:
            node.fail("expected the resource's identifier")
        return None
    too_long = limits.max_length is not None and len(value) > limits.max_length
    if len(value) < limits.min_length or too_long or (limits.pattern and not re.fullmatch(limits.pattern, value)):
        length = f"{limits.min_length}..{'' if limits.max_length is None else limits.max_length} characters"
        node.fail(f"expected {length}" + (f" matching {limits.pattern}" if limits.pattern else ""))
        return None
    return value


def _fields(node: Node, kind: facts.IdentifierKind) -> dict[str, str] | None:
    names = [name for name, _ in kind.fields]
    entry = node.mapping(allowed_keys=names)
    values = {name: _text(entry.child(name), limits) for name, limits in kind.fields if not entry.child(name).missing}
    missing = [name for name in kind.required_fields if entry.child(name).missing]
    if missing or not values:
        node.fail(f"expected {', '.join(kind.required_fields or names)}"
                  + ("" if kind.required_fields else " (at least one)"))
        return None
    if None in values.values():
        return None
    return {name: value for name, value in values.items() if value is not None}


def _expiry(node: Node, today: date) -> tuple[bool, date | None]:
    """Whether ``expires`` is valid, and its day (``None`` for indefinite)."""
    node.record("date or indefinite (required)", allowed=f"YYYY-MM-DD after today (UTC), or {INDEFINITE}")
    value = node.value
    if value == INDEFINITE:
        return True, None
    day: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value  # a YAML reader may already have turned an unquoted date into one
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
    if day is None or day <= today:
        node.fail(f"expected a date YYYY-MM-DD after today ({today.isoformat()}, UTC) or {INDEFINITE}")
        return False, None
    return True, day

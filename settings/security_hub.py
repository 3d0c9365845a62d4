"""``fleetguard:securityHub``: who owns Security Hub in the account, which Device Defender integrations
send findings to it, and which new findings are routed to the responders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from settings.facts import DEVICE_DEFENDER_PRODUCTS
from settings.reader import Node

SEVERITY_LABELS: Final = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
"""ASFF ``Severity.Label`` values, lowest first."""

DEFAULT_SEVERITIES: Final = ("CRITICAL", "HIGH")


@dataclass(frozen=True)
class SecurityHubSettings:
    """Security Hub ownership, the Device Defender integrations and finding routing."""

    manage_account: bool
    """This stack enables Security Hub in the account. Off where the organisation enables it centrally:
    then the account must already have Security Hub on for the subscriptions to succeed."""
    enable_default_standards: bool
    """Only when this stack owns Security Hub: also turn on AWS's default security standards."""
    retain_account_on_delete: bool
    """Only when this stack owns Security Hub: leave it enabled when the stack is destroyed (disabling it
    discards every finding in the account, including other teams')."""
    subscribe_products: bool
    """Accept findings from the Device Defender products (the console's "Accept findings")."""
    products: tuple[str, ...]
    """Keys of DEVICE_DEFENDER_PRODUCTS whose findings are accepted and routed."""
    route_findings: bool
    """Send new, active findings of the chosen severities to the responders topic."""
    severities: tuple[str, ...]
    """Severity labels routed to responders."""


def parse_security_hub(node: Node) -> SecurityHubSettings:
    section = node.mapping(allowed_keys=(
        "manageAccount", "enableDefaultStandards", "retainAccountOnDelete", "subscribeProducts", "products",
        "routeFindings", "severities",
    ))
    manage = section.child("manageAccount").boolean(False)
    standards = _owner_only(section.child("enableDefaultStandards"), default=False, manage=manage)
    retain = _owner_only(section.child("retainAccountOnDelete"), default=True, manage=manage)
    return SecurityHubSettings(
        manage_account=manage,
        enable_default_standards=standards,
        retain_account_on_delete=retain,
        subscribe_products=section.child("subscribeProducts").boolean(True),
        products=_distinct_choices(section.child("products"), tuple(DEVICE_DEFENDER_PRODUCTS), ("audit", "detect")),
        route_findings=section.child("routeFindings").boolean(True),
        severities=_distinct_choices(section.child("severities"), SEVERITY_LABELS, DEFAULT_SEVERITIES),
    )


def _owner_only(node: Node, *, default: bool, manage: bool) -> bool:
    """A switch that only means something when this stack owns Security Hub; setting it otherwise is a
    mistake worth reporting (it would silently do nothing)."""
    value = node.boolean(default)
    if not node.missing and not manage:
        node.fail("only applies when manageAccount is true; remove it or set manageAccount: true")
        return default
    return value


def _distinct_choices(node: Node, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    if node.missing:
        node = node.with_value(list(default))
    chosen = node.string_list(allowed=allowed)
    if node.value == []:
        node.fail(f"expected at least one of {', '.join(allowed)}")
    for duplicate in sorted({value for value in chosen if chosen.count(value) > 1}):
        node.fail(f"{duplicate!r} is listed more than once")
    return tuple(dict.fromkeys(chosen))

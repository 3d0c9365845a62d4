"""``fleetguard:audit.mitigations``: which of the stack's mitigation actions apply to each audit check's
non-compliant findings, and whether the intake starts them itself or a responder approves them first.

::

    mitigations:
      LOGGING_DISABLED_CHECK: {actions: [enableLogging], approval: automatic}
      REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK: {actions: [deactivateCaCertificate], approval: required}

A check may name only enabled checks and the actions whose type Device Defender applies to that check
(``settings.facts.AUDIT_CHECK_MITIGATION_TYPES``); StartAuditMitigationActionsTask would reject the rest
when the finding arrives, long after the deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from settings import facts
from settings.reader import Node


class MitigationActionKey(StrEnum):
    """The stack's mitigation actions, as ``audit.mitigations`` names them."""

    ADD_TO_QUARANTINE = "addToQuarantine"
    DEACTIVATE_DEVICE_CERTIFICATE = "deactivateDeviceCertificate"
    ENABLE_LOGGING = "enableLogging"
    DEACTIVATE_CA_CERTIFICATE = "deactivateCaCertificate"
    REPLACE_DEFAULT_POLICY_VERSION = "replaceDefaultPolicyVersion"
    PUBLISH_FINDING = "publishFinding"


ACTION_TYPES: Final[dict[MitigationActionKey, str]] = {
    MitigationActionKey.ADD_TO_QUARANTINE: "ADD_THINGS_TO_THING_GROUP",
    MitigationActionKey.DEACTIVATE_DEVICE_CERTIFICATE: "UPDATE_DEVICE_CERTIFICATE",
    MitigationActionKey.ENABLE_LOGGING: "ENABLE_IOT_LOGGING",
    MitigationActionKey.DEACTIVATE_CA_CERTIFICATE: "UPDATE_CA_CERTIFICATE",
    MitigationActionKey.REPLACE_DEFAULT_POLICY_VERSION: "REPLACE_DEFAULT_POLICY_VERSION",
    MitigationActionKey.PUBLISH_FINDING: "PUBLISH_FINDING_TO_SNS",
}
"""Each of the stack's mitigation actions' Device Defender type."""


class Approval(StrEnum):
    """Who starts a check's mitigation task."""

    AUTOMATIC = "automatic"
    """The intake, as soon as an audit reports the check non-compliant."""
    REQUIRED = "required"
    """A responder, by running the audit mitigation Automation document; the intake only says how."""


@dataclass(frozen=True)
class CheckMitigation:
    """One audit check's mitigation."""

    check_name: str
    actions: tuple[MitigationActionKey, ...]
    approval: Approval


def parse_mitigations(node: Node, enabled_checks: frozenset[str]) -> tuple[CheckMitigation, ...]:
    section = node.mapping()
    mitigations = []
    for check_name, entry in section.items("CHECK_NAME"):
        mitigation = _parse_check(check_name, entry, enabled_checks)
        if mitigation is not None:
            mitigations.append(mitigation)
    return tuple(mitigations)


def _parse_check(check_name: str, node: Node, enabled_checks: frozenset[str]) -> CheckMitigation | None:
    entry = node.mapping(allowed_keys=("actions", "approval"))
    approval = entry.child("approval").required_string(allowed=tuple(Approval))
    actions_node = entry.child("actions")
    names = actions_node.string_list(allowed=tuple(MitigationActionKey))
    if check_name not in facts.AUDIT_CHECKS_BY_NAME:
        node.fail(f"unknown audit check; expected one of {', '.join(facts.AUDIT_CHECKS_BY_NAME)}")
        return None
    if check_name not in enabled_checks:
        node.fail("the check is disabled in fleetguard:audit.checks; no audit would report it")
    if not 1 <= len(names) <= facts.MAX_ACTIONS_PER_CHECK or len(set(names)) != len(names):
        actions_node.fail(f"expected 1-{facts.MAX_ACTIONS_PER_CHECK} different mitigation actions")
    applicable = facts.AUDIT_CHECK_MITIGATION_TYPES[check_name]
    for name in names:
        action_type = ACTION_TYPES[MitigationActionKey(name)]
        if action_type not in applicable:
            actions_node.fail(
                f"{name} is a {action_type} action; Device Defender applies only {', '.join(applicable)} "
                f"to {check_name}"
            )
    if not approval or not names:
        return None
    return CheckMitigation(check_name, tuple(MitigationActionKey(name) for name in names), Approval(approval))

"""Facts the policy pack and the program both judge by, kept in this one module.

The pack must install and run on its own (only ``policies/requirements.txt``, from ``policies/``), so the
facts it shares with the program live here, inside the pack; the program reads them through
``settings/facts.py``, which imports this module as ``policies.fleetguard_policies.shared_facts``. The
module therefore imports nothing outside the standard library, and the package's ``__init__`` imports
nothing at all, so the program can load it without pulumi-policy.

Audit checks, severities and frequencies are checked against the botocore model of the IoT API and the
CloudFormation schemas of AWS::IoT::AccountAuditConfiguration and ScheduledAudit by the contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    """Severity AWS assigns to an audit check's findings."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@dataclass(frozen=True)
class AuditCheck:
    """One Device Defender audit check."""

    name: str
    """API name, e.g. ``IOT_POLICY_OVERLY_PERMISSIVE_CHECK``."""
    severity: Severity
    cfn_property: str
    """Property name under ``AuditCheckConfigurations`` in CloudFormation."""
    threshold_option: str | None = None
    """The one numeric option the check takes, as it is spelled in CloudFormation, if any."""

    @property
    def native_property(self) -> str:
        """The check's key under ``auditCheckConfigurations`` as aws-native (and so the engine) spells it:
        the CloudFormation name with a lower-case first letter."""
        return self.cfn_property[0].lower() + self.cfn_property[1:]


AUDIT_CHECKS: Final[tuple[AuditCheck, ...]] = (
    AuditCheck("AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", Severity.CRITICAL,
               "AuthenticatedCognitoRoleOverlyPermissiveCheck"),
    AuditCheck("UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", Severity.CRITICAL,
               "UnauthenticatedCognitoRoleOverlyPermissiveCheck"),
    AuditCheck("CA_CERTIFICATE_KEY_QUALITY_CHECK", Severity.CRITICAL, "CaCertificateKeyQualityCheck"),
    AuditCheck("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", Severity.CRITICAL, "DeviceCertificateKeyQualityCheck"),
    AuditCheck("DEVICE_CERTIFICATE_SHARED_CHECK", Severity.CRITICAL, "DeviceCertificateSharedCheck"),
    AuditCheck("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", Severity.CRITICAL,
               "IntermediateCaRevokedForActiveDeviceCertificatesCheck"),
    AuditCheck("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", Severity.CRITICAL, "IotPolicyOverlyPermissiveCheck"),
    AuditCheck("IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", Severity.CRITICAL, "IotRoleAliasOverlyPermissiveCheck"),
    AuditCheck("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", Severity.CRITICAL,
               "RevokedCaCertificateStillActiveCheck"),
    AuditCheck("CONFLICTING_CLIENT_IDS_CHECK", Severity.HIGH, "ConflictingClientIdsCheck"),
    AuditCheck("CA_CERTIFICATE_EXPIRING_CHECK", Severity.MEDIUM, "CaCertificateExpiringCheck"),
    AuditCheck("DEVICE_CERTIFICATE_EXPIRING_CHECK", Severity.MEDIUM, "DeviceCertificateExpiringCheck",
               threshold_option="CertExpirationThresholdInDays"),
    # CloudFormation really does spell this one "MisConfiguration" with a capital C.
    AuditCheck("IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK", Severity.MEDIUM,
               "IoTPolicyPotentialMisConfigurationCheck"),
    AuditCheck("IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", Severity.MEDIUM,
               "IotRoleAliasAllowsAccessToUnusedServicesCheck"),
    AuditCheck("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", Severity.MEDIUM,
               "RevokedDeviceCertificateStillActiveCheck"),
    AuditCheck("LOGGING_DISABLED_CHECK", Severity.LOW, "LoggingDisabledCheck"),
    AuditCheck("DEVICE_CERTIFICATE_AGE_CHECK", Severity.LOW, "DeviceCertificateAgeCheck",
               threshold_option="CertAgeThresholdInDays"),
)
AUDIT_CHECKS_BY_NAME: Final[dict[str, AuditCheck]] = {check.name: check for check in AUDIT_CHECKS}
CRITICAL_AUDIT_CHECKS: Final[tuple[str, ...]] = tuple(
    check.name for check in AUDIT_CHECKS if check.severity is Severity.CRITICAL
)

MIN_EXEMPTION_REASON: Final = 10
"""Characters of written reason a disabled critical check needs, in the stack config and in the pack's
exemptions alike."""

FREQUENCY_INTERVAL_DAYS: Final[dict[str, int]] = {"DAILY": 1, "WEEKLY": 7, "BIWEEKLY": 14, "MONTHLY": 31}
"""Scheduled audit frequencies, each with the longest gap in days between two of its runs."""
AUDIT_FREQUENCIES: Final[tuple[str, ...]] = tuple(FREQUENCY_INTERVAL_DAYS)

IOT_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN", "ERROR")
"""AWS IoT v2 log levels that log something (every level but DISABLED)."""

DEVICE_DEFENDER_PRODUCTS: Final[dict[str, str]] = {
    "audit": "iot-device-defender-audit",
    "detect": "iot-device-defender-detect",
}
"""Config name -> Security Hub product id; the product ARN is
``arn:<partition>:securityhub:<region>::product/aws/<product id>``."""

ROLE_TAG_KEY: Final = "fleetguard:role"
QUARANTINE_ROLE: Final = "quarantine"
"""The tag ``fleetguard:role=quarantine`` declares the quarantine thing group to the pack, whatever the
group is named: a tag is a literal, known at preview, where the group names a mitigation action lists
may not be. The key is reserved: stack tags may not set it, or every tagged group would claim the role."""

ESCALATION_ROLE: Final = "escalation"
"""``fleetguard:role=escalation`` declares the schedule group OpsCenter incidents are escalated from: the
stack has OpsCenter incidents instead of Incident Manager."""
ESCALATION_STAGE_ROLE: Final = "escalation-stage"
"""``fleetguard:role=escalation-stage`` marks the SNS topics the stack creates for escalation stages."""
ESCALATION_STAGES_TAG_KEY: Final = "fleetguard:escalation-stages"
"""On the escalation schedule group: how many stages each OpsItem is escalated through (a literal the pack
reads at preview, where the stages' topic ARNs may still be unknown). Reserved like ``ROLE_TAG_KEY``."""
ON_DEMAND_AUDIT_ROLE: Final = "on-demand-audit"
"""``fleetguard:role=on-demand-audit`` marks the Automation document that runs on-demand audits."""
AUDIT_MITIGATION_ROLE: Final = "audit-mitigation"
"""``fleetguard:role=audit-mitigation`` marks the Automation document that starts an approved audit mitigation."""
HAND_RUN_DOCUMENT_ROLES: Final = frozenset({ON_DEMAND_AUDIT_ROLE, AUDIT_MITIGATION_ROLE})
"""Automation documents a responder runs by hand: none contains a device, so none is the incident runbook the
OpsCenter path needs."""

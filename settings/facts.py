"""AWS facts the configuration is validated against, kept in one place.

Sources: the Device Defender developer guide (audit checks, Detect metrics), the AWS IoT API reference
and the CloudFormation resource schemas for AWS::IoT::AccountAuditConfiguration, ScheduledAudit and
SecurityProfile (the contract tests re-check what the program registers against those schemas).
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
    """Property name under ``AuditCheckConfigurations`` in CloudFormation (aws-native: camelCase of it)."""
    threshold_option: str | None = None
    """The one numeric option the check takes, as it is spelled in CloudFormation, if any."""


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

CERT_THRESHOLD_DAYS: Final = (30, 3652)
"""Inclusive range AWS accepts for both certificate threshold options."""
CERT_THRESHOLD_DEFAULTS: Final[dict[str, int]] = {
    "CertExpirationThresholdInDays": 30,
    "CertAgeThresholdInDays": 365,
}

AUDIT_FREQUENCIES: Final = ("DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY")
DAYS_OF_WEEK: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
FREQUENCY_INTERVAL_DAYS: Final[dict[str, int]] = {"DAILY": 1, "WEEKLY": 7, "BIWEEKLY": 14, "MONTHLY": 31}


class ValueKind(StrEnum):
    """What a Detect behavior compares a metric against."""

    COUNT = "count"
    PORTS = "ports"
    CIDRS = "cidrs"


OPERATOR_VALUE_KIND: Final[dict[str, ValueKind]] = {
    "less-than": ValueKind.COUNT,
    "less-than-equals": ValueKind.COUNT,
    "greater-than": ValueKind.COUNT,
    "greater-than-equals": ValueKind.COUNT,
    "in-port-set": ValueKind.PORTS,
    "not-in-port-set": ValueKind.PORTS,
    "in-cidr-set": ValueKind.CIDRS,
    "not-in-cidr-set": ValueKind.CIDRS,
}
"""Operators for AWS-defined metrics (in-set/not-in-set exist only for custom metrics)."""

DURATIONS_SECONDS: Final = (300, 600, 900, 1800, 3600)
DATAPOINTS_RANGE: Final = (1, 10)
CONFIDENCE_LEVELS: Final = ("LOW", "MEDIUM", "HIGH")
STATISTICS: Final = ("Average", "p0", "p0.1", "p0.01", "p1", "p10", "p50", "p90", "p99", "p99.9", "p99.99", "p100")


class Duration(StrEnum):
    """Whether a rule-based behavior on a metric takes ``durationSeconds``."""

    REQUIRED = "required"
    """Counted over a time window (messages sent, bytes out...)."""
    NONE = "none"
    """A per-message or point-in-time value (message size, listening ports): no window."""


@dataclass(frozen=True)
class DetectMetric:
    """One AWS-defined Detect metric."""

    name: str
    value_kind: ValueKind
    duration: Duration
    ml: bool
    """ML Detect supports it."""
    device_side: bool
    """Needs the on-device Defender agent to publish metrics."""


DETECT_METRICS: Final[tuple[DetectMetric, ...]] = (
    DetectMetric("aws:message-byte-size", ValueKind.COUNT, Duration.NONE, ml=True, device_side=False),
    DetectMetric("aws:num-messages-sent", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=False),
    DetectMetric("aws:num-messages-received", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=False),
    DetectMetric("aws:num-authorization-failures", ValueKind.COUNT, Duration.REQUIRED, ml=True,
                 device_side=False),
    DetectMetric("aws:num-connection-attempts", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=False),
    DetectMetric("aws:num-disconnects", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=False),
    DetectMetric("aws:source-ip-address", ValueKind.CIDRS, Duration.NONE, ml=False, device_side=False),
    DetectMetric("aws:all-bytes-out", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=True),
    DetectMetric("aws:all-bytes-in", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=True),
    DetectMetric("aws:all-packets-out", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=True),
    DetectMetric("aws:all-packets-in", ValueKind.COUNT, Duration.REQUIRED, ml=True, device_side=True),
    DetectMetric("aws:destination-ip-addresses", ValueKind.CIDRS, Duration.NONE, ml=False, device_side=True),
    DetectMetric("aws:listening-tcp-ports", ValueKind.PORTS, Duration.NONE, ml=False, device_side=True),
    DetectMetric("aws:listening-udp-ports", ValueKind.PORTS, Duration.NONE, ml=False, device_side=True),
    DetectMetric("aws:num-listening-tcp-ports", ValueKind.COUNT, Duration.NONE, ml=True, device_side=True),
    DetectMetric("aws:num-listening-udp-ports", ValueKind.COUNT, Duration.NONE, ml=True, device_side=True),
    DetectMetric("aws:num-established-tcp-connections", ValueKind.COUNT, Duration.NONE, ml=True,
                 device_side=True),
)
DETECT_METRICS_BY_NAME: Final[dict[str, DetectMetric]] = {metric.name: metric for metric in DETECT_METRICS}
ML_METRICS: Final[tuple[str, ...]] = tuple(metric.name for metric in DETECT_METRICS if metric.ml)

MAX_BEHAVIORS_PER_PROFILE: Final = 100
MAX_PROFILES_PER_TARGET: Final = 5
BEHAVIOR_NAME_PATTERN: Final = r"[a-zA-Z0-9:_-]{1,128}"
PROFILE_NAME_PATTERN: Final = r"[a-zA-Z0-9:_-]{1,128}"
SCHEDULED_AUDIT_NAME_PATTERN: Final = r"[a-zA-Z0-9_-]{1,128}"
THING_GROUP_NAME_PATTERN: Final = r"[a-zA-Z0-9:_-]{1,128}"

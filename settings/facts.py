"""AWS facts the configuration is validated against, kept in one place.

What the fleetguard Detect engine can evaluate (``EVALUABLE_METRICS``, ``MESSAGE_METRICS``) is the
evaluator's own fact, ``functions/engine_behaviors.py`` (standard library only); it is re-exported here.

The facts the policy pack judges by as well (audit checks and frequencies, IoT log levels, the Device
Defender products in Security Hub, the quarantine role tag) have their one home in the pack,
``policies/fleetguard_policies/shared_facts.py``, which must install without the program; this module
imports them from there, and the rest of the program imports them from here.

Sources: the Device Defender developer guide (audit checks, Detect metrics), the AWS IoT API reference
and the CloudFormation resource schemas for AWS::IoT::AccountAuditConfiguration, ScheduledAudit and
SecurityProfile (the contract tests re-check what the program registers against those schemas).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from functions.engine_behaviors import EVALUABLE_METRICS, MESSAGE_METRICS
from policies.fleetguard_policies.shared_facts import (
    AUDIT_CHECKS,
    AUDIT_CHECKS_BY_NAME,
    AUDIT_FREQUENCIES,
    AUDIT_MITIGATION_ROLE,
    CRITICAL_AUDIT_CHECKS,
    DEVICE_DEFENDER_PRODUCTS,
    ESCALATION_ROLE,
    ESCALATION_STAGE_ROLE,
    ESCALATION_STAGES_TAG_KEY,
    FREQUENCY_INTERVAL_DAYS,
    IOT_LOG_LEVELS,
    MIN_EXEMPTION_REASON,
    ON_DEMAND_AUDIT_ROLE,
    QUARANTINE_ROLE,
    ROLE_TAG_KEY,
    AuditCheck,
)

ENGINE_FACTS: Final = ("EVALUABLE_METRICS", "MESSAGE_METRICS")
"""The Detect engine's facts, re-exported from ``functions/engine_behaviors.py``."""
# The shared and engine facts the program uses, re-exported so that the program imports every fact from here.
__all__ = [
    "AUDIT_CHECKS",
    "AUDIT_CHECKS_BY_NAME",
    "AUDIT_FREQUENCIES",
    "AUDIT_MITIGATION_ROLE",
    "CRITICAL_AUDIT_CHECKS",
    "DEVICE_DEFENDER_PRODUCTS",
    "ESCALATION_ROLE",
    "ESCALATION_STAGES_TAG_KEY",
    "ESCALATION_STAGE_ROLE",
    "EVALUABLE_METRICS",
    "FREQUENCY_INTERVAL_DAYS",
    "IOT_LOG_LEVELS",
    "MESSAGE_METRICS",
    "MIN_EXEMPTION_REASON",
    "ON_DEMAND_AUDIT_ROLE",
    "QUARANTINE_ROLE",
    "ROLE_TAG_KEY",
    "AuditCheck",
]

CERT_THRESHOLD_DAYS: Final = (30, 3652)
"""Inclusive range AWS accepts for both certificate threshold options."""
CERT_THRESHOLD_DEFAULTS: Final[dict[str, int]] = {
    "CertExpirationThresholdInDays": 30,
    "CertAgeThresholdInDays": 365,
}

DAYS_OF_WEEK: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

IOT_LOG_GROUP: Final = "AWSIotLogsV2"
"""The CloudWatch log group AWS IoT v2 logging writes to (its name is fixed by AWS IoT)."""
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
"""Retention periods CloudWatch Logs accepts (PutRetentionPolicy)."""
POWERTOOLS_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Levels the functions' logger takes (POWERTOOLS_LOG_LEVEL)."""


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


@dataclass(frozen=True)
class TextLimits:
    """What AWS accepts for one string of an audit resource identifier (botocore's ``iot`` model; where
    the model gives no pattern, the shape of the ARN or id the check reports, so a typo fails at once)."""

    min_length: int = 1
    max_length: int | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class IdentifierKind:
    """One member of the API's ``ResourceIdentifier``: a string, or an object of named strings."""

    name: str
    text: TextLimits | None = None
    """Limits of a string identifier."""
    fields: tuple[tuple[str, TextLimits], ...] = ()
    """Members of an object identifier, each with its limits."""
    required_fields: tuple[str, ...] = ()
    """Members an object identifier must have; with none required, it needs at least one."""


PRINTABLE_TEXT: Final = r"[\x20-\x7e]*"
"""The model's ``[\\p{Graph}\\x20]*`` (audit suppression descriptions, issuer subjects): printable ASCII and
space, no line breaks."""
AUDIT_DESCRIPTION_MAX: Final = 1000
"""Characters an audit suppression's description may have."""
_CERTIFICATE_ID: Final = TextLimits(64, 64, r"(0x)?[a-fA-F0-9]+")
_IOT_ARN: Final = r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:"

RESOURCE_IDENTIFIER_KINDS: Final[dict[str, IdentifierKind]] = {kind.name: kind for kind in (
    IdentifierKind("deviceCertificateId", _CERTIFICATE_ID),
    IdentifierKind("caCertificateId", _CERTIFICATE_ID),
    # The IoT model gives no limits; these are the Cognito Identity model's IdentityPoolId.
    IdentifierKind("cognitoIdentityPoolId", TextLimits(1, 55, r"[\w-]+:[0-9a-f-]+")),
    # The IoT model gives no limits; AWS IoT Core accepts MQTT client ids of up to 128 bytes.
    IdentifierKind("clientId", TextLimits(1, 128)),
    IdentifierKind("policyVersionIdentifier", fields=(
        ("policyName", TextLimits(1, 128, r"[\w+=,.@-]+")),
        ("policyVersionId", TextLimits(1, None, r"[0-9]+")),
    ), required_fields=("policyName", "policyVersionId")),
    IdentifierKind("account", TextLimits(12, 12, r"[0-9]+")),
    IdentifierKind("iamRoleArn", TextLimits(20, 2048, r"arn:aws[a-z-]*:iam::[0-9]{12}:role/.+")),
    IdentifierKind("roleAliasArn", TextLimits(1, 2048, _IOT_ARN + r"rolealias/.+")),
    IdentifierKind("issuerCertificateIdentifier", fields=(
        ("issuerCertificateSubject", TextLimits(1, 1000, PRINTABLE_TEXT)),
        ("issuerId", TextLimits(1, 64, r"(0x)?[a-fA-F0-9]+")),
        ("issuerCertificateSerialNumber", TextLimits(1, 20, r"[a-fA-F0-9:]+")),
    )),
    IdentifierKind("deviceCertificateArn", TextLimits(1, None, _IOT_ARN + r"cert/[a-fA-F0-9]{64}")),
)}
"""Every kind of resource an audit finding (and so a suppression) can name."""

_DEVICE_CERTIFICATE: Final = ("deviceCertificateId",)
_CA_CERTIFICATE: Final = ("caCertificateId",)
_ROLE_ALIAS: Final = ("roleAliasArn", "iamRoleArn")
AUDIT_CHECK_RESOURCE_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": ("cognitoIdentityPoolId",),
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": ("cognitoIdentityPoolId",),
    "CA_CERTIFICATE_KEY_QUALITY_CHECK": _CA_CERTIFICATE,
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK": _DEVICE_CERTIFICATE,
    "DEVICE_CERTIFICATE_SHARED_CHECK": _DEVICE_CERTIFICATE,
    # Reports the active device certificates below a revoked intermediate CA; the identifier kinds for
    # that CA (issuer, certificate ARN) were added to the API with this check.
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK": (
        "deviceCertificateId", "deviceCertificateArn", "issuerCertificateIdentifier",
    ),
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": ("policyVersionIdentifier",),
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK": _ROLE_ALIAS,
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": _CA_CERTIFICATE,
    "CONFLICTING_CLIENT_IDS_CHECK": ("clientId",),
    "CA_CERTIFICATE_EXPIRING_CHECK": _CA_CERTIFICATE,
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": _DEVICE_CERTIFICATE,
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": ("policyVersionIdentifier",),
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK": _ROLE_ALIAS,
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK": _DEVICE_CERTIFICATE,
    "LOGGING_DISABLED_CHECK": ("account",),
    "DEVICE_CERTIFICATE_AGE_CHECK": _DEVICE_CERTIFICATE,
}
"""Audit check -> the identifier kind(s) its findings name the noncompliant resource by (a suppression
matches a finding by check and identifier, so another kind would never match). From the Device Defender
audit check reference and the resource types its findings report."""
_DEVICE_CERTIFICATE_ACTIONS: Final = (
    "PUBLISH_FINDING_TO_SNS", "UPDATE_DEVICE_CERTIFICATE", "ADD_THINGS_TO_THING_GROUP",
)
_CA_CERTIFICATE_ACTIONS: Final = ("PUBLISH_FINDING_TO_SNS", "UPDATE_CA_CERTIFICATE")
_POLICY_ACTIONS: Final = ("PUBLISH_FINDING_TO_SNS", "REPLACE_DEFAULT_POLICY_VERSION")
_REPORT_ONLY: Final = ("PUBLISH_FINDING_TO_SNS",)
AUDIT_CHECK_MITIGATION_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": _REPORT_ONLY,
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK": _REPORT_ONLY,
    "CA_CERTIFICATE_KEY_QUALITY_CHECK": _CA_CERTIFICATE_ACTIONS,
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
    "DEVICE_CERTIFICATE_SHARED_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": _POLICY_ACTIONS,
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK": _REPORT_ONLY,
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": _CA_CERTIFICATE_ACTIONS,
    "CONFLICTING_CLIENT_IDS_CHECK": _REPORT_ONLY,
    "CA_CERTIFICATE_EXPIRING_CHECK": _CA_CERTIFICATE_ACTIONS,
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": _POLICY_ACTIONS,
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK": _REPORT_ONLY,
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
    "LOGGING_DISABLED_CHECK": ("PUBLISH_FINDING_TO_SNS", "ENABLE_IOT_LOGGING"),
    "DEVICE_CERTIFICATE_AGE_CHECK": _DEVICE_CERTIFICATE_ACTIONS,
}
"""Which mitigation action types Device Defender applies to each audit check's findings (the developer
guide's "Audit check to mitigation action mapping"; REVOKED_CA_CERT_CHECK there is the API's
REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK). StartAuditMitigationActionsTask rejects other pairings."""
MAX_ACTIONS_PER_CHECK: Final = 5
"""auditCheckToActionsMapping: 1-5 mitigation action names per check (botocore's MitigationActionNameList)."""

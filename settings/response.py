"""``fleetguard:incidentResponse``: how an alert becomes a contained device, an incident and engaged people.

Incident Manager (and so SSM Contacts) is closed to new AWS customers, so it is a per-environment switch:
off, the intake contains the device itself and notifies the responders topic, and (by default) opens an
OpsCenter OpsItem, starts the runbook and schedules escalation (``settings.opscenter``). The people a
response plan engages are read by ``settings.contacts``. Limits below come from the botocore model of ssm-incidents
(2018-05-10), the CloudFormation schemas of its resources (where they are stricter), and the Lambda/SQS
event source rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from settings import facts
from settings.contacts import EscalationPlan, PersonalContact, parse_contacts, parse_escalation
from settings.opscenter import OpsCenterSettings, parse_ops_center
from settings.reader import Node

IMPACT_RANGE: Final = (1, 5)
"""1 critical ... 5 no impact (ssm-incidents Impact)."""
MAX_ENGAGEMENTS: Final = 5
"""ssm-incidents EngagementSet: contacts or escalation plans a response plan engages."""
MAX_NOTIFICATION_TARGETS: Final = 10
"""ssm-incidents NotificationTargetSet (the responders topic is always one of them)."""
MAX_REPLICATION_REGIONS: Final = 3
TITLE_MAX: Final = 200
SUMMARY_MAX: Final = 4000
"""The API takes 8000; CloudFormation's schema 4000. Staying within both keeps the plan portable."""
DEDUPE_MAX: Final = 1000
RETRY_MODES: Final = ("standard", "adaptive")
KEY_CHOICES: Final = ("aws-owned", "customer")

REGION_PATTERN: Final = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]"
RESPONSE_PLAN_NAME_PATTERN: Final = r"[a-zA-Z0-9_-]{1,200}"
RUNBOOK_NAME_PATTERN: Final = r"[a-zA-Z0-9_.-]{3,128}"
RESERVED_DOCUMENT_PREFIXES: Final = ("aws", "amazon", "amzn")
"""SSM rejects document names starting with these (any case)."""
KMS_KEY_ARN_PATTERN: Final = r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:key/[a-zA-Z0-9-]+"

MAX_BATCH_SIZE: Final = 1000
"""The intake contract: up to 1000 records per invocation (Lambda allows 10000 for standard queues)."""
MAX_BATCHING_WINDOW_SECONDS: Final = 300
LARGE_BATCH: Final = 10
"""Lambda refuses an SQS batch size above 10 without a batching window of at least one second."""


@dataclass(frozen=True)
class ReplicationSetSettings:
    """The account's Incident Manager replication set (one per account)."""

    manage: bool
    """False when the account already has one (every remaining Incident Manager customer does): then the
    stack neither creates nor deletes it."""
    regions: tuple[str, ...]
    customer_key_arns: dict[str, str]
    """Region -> customer managed KMS key; empty means AWS-owned keys."""


@dataclass(frozen=True)
class IncidentTemplate:
    """What every incident the response plan opens starts with (StartIncident overrides title/impact)."""

    title: str
    summary: str
    dedupe_string: str | None
    """Unset by default. A template dedupe string is static, so Incident Manager would fold every incident
    of the plan into whichever is open, and that incident's runbook never contains the new device; the
    intake folds repeats and storms with client tokens instead (functions/storm.py)."""


@dataclass(frozen=True)
class IncidentManagerSettings:
    """Incident Manager and SSM Contacts: only for accounts that already use them."""

    enabled: bool
    response_plan_name: str
    replication_set: ReplicationSetSettings
    incident: IncidentTemplate
    contacts: tuple[PersonalContact, ...]
    escalation: EscalationPlan | None
    extra_notification_topic_arns: tuple[str, ...]
    """SNS topics notified of incident updates besides the responders topic."""


@dataclass(frozen=True)
class ImpactRules:
    """Incident impact: by security profile, else by ML confidence, else the default."""

    default: int
    by_profile: dict[str, int]
    by_confidence: dict[str, int]

    def to_json(self) -> str:
        """The ``IMPACT_RULES`` environment value of the intake contract."""
        return json.dumps(
            {"default": self.default, "byProfile": self.by_profile, "byConfidence": self.by_confidence},
            sort_keys=True,
        )


@dataclass(frozen=True)
class IntakeSettings:
    """The alert queue, its dead-letter queue and the intake function."""

    batch_size: int
    max_receive_count: int
    """Deliveries before a record moves to the dead-letter queue."""
    visibility_timeout_seconds: int
    retention_seconds: int
    max_concurrency: int
    """Concurrent intake invocations the queue may drive (fewer, larger batches keep a storm together)."""
    timeout_seconds: int
    memory_mb: int
    log_level: str
    retry_mode: str


@dataclass(frozen=True)
class IncidentResponseSettings:
    """Everything the intake, runbook, response plan and contacts need."""

    incident_manager: IncidentManagerSettings
    ops_center: OpsCenterSettings
    """OpsItems and scheduled escalation instead of Incident Manager (on by default when it is off)."""
    runbook_name: str
    impact_rules: ImpactRules
    audit_incident_checks: tuple[str, ...]
    """Non-compliant audit checks that open an incident; every other one is a notification."""
    storm_threshold: int
    """In-alarm violations of one (profile, behavior) in one batch that make a storm."""
    storm_window_seconds: int
    """The event source's batching window: how long the queue gathers a storm into one batch."""
    intake: IntakeSettings
    log_retention_days: int

    def audit_routing_json(self) -> str:
        """The ``AUDIT_ROUTING`` environment value of the intake contract."""
        return json.dumps({"incidentChecks": list(self.audit_incident_checks)})


def parse_incident_response(node: Node, environment: str) -> IncidentResponseSettings:
    section = node.mapping(allowed_keys=(
        "incidentManager", "opsCenter", "runbookName", "impactRules", "auditRouting", "storm", "queue",
        "intake", "logRetentionDays",
    ))
    intake = _parse_intake(section.child("queue"), section.child("intake"))
    storm = section.child("storm").mapping(allowed_keys=("threshold", "windowSeconds"))
    threshold = storm.child("threshold").bounded_integer(10, 2, MAX_BATCH_SIZE)
    window = storm.child("windowSeconds").bounded_integer(20, 0, MAX_BATCHING_WINDOW_SECONDS)
    if threshold > intake.batch_size:
        storm.child("threshold").fail(
            f"a storm must fit in one batch; expected at most queue.batchSize ({intake.batch_size})"
        )
    if intake.batch_size > LARGE_BATCH and window < 1:
        storm.child("windowSeconds").fail(
            f"Lambda needs a batching window of at least 1 second for a batch size above {LARGE_BATCH}"
        )
    incident_manager = _parse_incident_manager(section.child("incidentManager"), environment)
    return IncidentResponseSettings(
        incident_manager=incident_manager,
        ops_center=parse_ops_center(section.child("opsCenter"), incident_manager_enabled=incident_manager.enabled),
        runbook_name=_runbook_name(section.child("runbookName"), environment),
        impact_rules=_parse_impact_rules(section.child("impactRules")),
        audit_incident_checks=_parse_audit_routing(section.child("auditRouting")),
        storm_threshold=threshold,
        storm_window_seconds=window,
        intake=intake,
        log_retention_days=section.child("logRetentionDays").integer(30, allowed=facts.LOG_RETENTION_DAYS) or 30,
    )


def _runbook_name(node: Node, environment: str) -> str:
    name = node.string(f"fleetguard-{environment}-iot-incident", pattern=RUNBOOK_NAME_PATTERN) or ""
    if name.lower().startswith(RESERVED_DOCUMENT_PREFIXES):
        node.fail(f"SSM reserves document names starting with {', '.join(RESERVED_DOCUMENT_PREFIXES)}")
    return name


def _parse_intake(queue_node: Node, intake_node: Node) -> IntakeSettings:
    queue = queue_node.mapping(allowed_keys=(
        "batchSize", "maxReceiveCount", "visibilityTimeoutSeconds", "retentionSeconds", "maxConcurrency",
    ))
    function = intake_node.mapping(allowed_keys=("timeoutSeconds", "memoryMb", "logLevel", "retryMode"))
    timeout = function.child("timeoutSeconds").bounded_integer(120, 1, 900)
    # AWS's advice for SQS event sources: visibility at least six times the function timeout.
    visibility = queue.child("visibilityTimeoutSeconds").bounded_integer(6 * timeout, 0, 43200)
    if visibility < timeout:
        queue.child("visibilityTimeoutSeconds").fail(
            f"Lambda rejects an SQS event source whose visibility timeout is shorter than the function "
            f"timeout; expected at least intake.timeoutSeconds ({timeout})"
        )
    return IntakeSettings(
        batch_size=queue.child("batchSize").bounded_integer(100, 1, MAX_BATCH_SIZE),
        max_receive_count=queue.child("maxReceiveCount").bounded_integer(5, 1, 1000),
        visibility_timeout_seconds=visibility,
        retention_seconds=queue.child("retentionSeconds").bounded_integer(345600, 60, 1209600),
        max_concurrency=queue.child("maxConcurrency").bounded_integer(2, 2, 1000),
        timeout_seconds=timeout,
        memory_mb=function.child("memoryMb").bounded_integer(512, 128, 10240),
        log_level=function.child("logLevel").string("INFO", allowed=facts.POWERTOOLS_LOG_LEVELS) or "INFO",
        retry_mode=function.child("retryMode").string("standard", allowed=RETRY_MODES) or "standard",
    )


def _parse_impact_rules(node: Node) -> ImpactRules:
    section = node.mapping(allowed_keys=("default", "byProfile", "byConfidence"))
    low, high = IMPACT_RANGE
    by_profile: dict[str, int] = {}
    for profile, value in section.child("byProfile").mapping().items("profile"):
        if not re.fullmatch(facts.PROFILE_NAME_PATTERN, profile):
            value.problems.add(value.path, f"not a security profile name (expected {facts.PROFILE_NAME_PATTERN})")
            continue
        impact = value.integer(minimum=low, maximum=high)
        if impact is not None:
            by_profile[profile] = impact
        elif value.missing:
            value.fail(f"expected an impact {low}..{high}")
    confidence = section.child("byConfidence")
    confidence_values = confidence.mapping(allowed_keys=facts.CONFIDENCE_LEVELS)
    by_confidence: dict[str, int] = {"HIGH": 2, "MEDIUM": 3, "LOW": 4} if confidence.missing else {}
    for level, value in confidence_values.items("confidence"):
        impact = value.integer(minimum=low, maximum=high) if level in facts.CONFIDENCE_LEVELS else None
        if impact is not None:
            by_confidence[level] = impact
    return ImpactRules(
        default=section.child("default").bounded_integer(3, low, high),
        by_profile=by_profile,
        by_confidence=by_confidence,
    )


def _parse_audit_routing(node: Node) -> tuple[str, ...]:
    section = node.mapping(allowed_keys=("incidentChecks",))
    checks = section.child("incidentChecks")
    if checks.missing:
        return facts.CRITICAL_AUDIT_CHECKS
    return tuple(checks.string_list(allowed=tuple(facts.AUDIT_CHECKS_BY_NAME)))


def _parse_incident_manager(node: Node, environment: str) -> IncidentManagerSettings:
    section = node.mapping(allowed_keys=(
        "enabled", "responsePlanName", "replicationSet", "incident", "contacts", "escalation",
        "notificationTopicArns",
    ))
    enabled = section.child("enabled").boolean(False)
    contacts_node = section.child("contacts")
    contacts = parse_contacts(contacts_node)
    escalation_node = section.child("escalation")
    escalation = parse_escalation(escalation_node, contacts)
    if enabled and (contacts_node.missing or contacts_node.value == []):
        contacts_node.fail("Incident Manager must engage someone; expected at least one contact")
    if escalation_node.missing and len(contacts) > MAX_ENGAGEMENTS:
        contacts_node.fail(
            f"a response plan engages at most {MAX_ENGAGEMENTS} contacts; add an escalation plan to chain more"
        )
    topics = section.child("notificationTopicArns")
    topic_arns = tuple(topics.string_list(pattern=r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}"))
    if len(topic_arns) > MAX_NOTIFICATION_TARGETS - 1:
        topics.fail(f"the responders topic plus these may not exceed {MAX_NOTIFICATION_TARGETS} notification "
                    f"targets; expected at most {MAX_NOTIFICATION_TARGETS - 1}")
    return IncidentManagerSettings(
        enabled=enabled,
        response_plan_name=section.child("responsePlanName").string(
            f"fleetguard-{environment}-iot-device-compromise", pattern=RESPONSE_PLAN_NAME_PATTERN
        ) or "",
        replication_set=_parse_replication_set(section.child("replicationSet"), required=enabled),
        incident=_parse_incident_template(section.child("incident"), environment),
        contacts=contacts,
        escalation=escalation,
        extra_notification_topic_arns=topic_arns,
    )


def _parse_replication_set(node: Node, *, required: bool) -> ReplicationSetSettings:
    section = node.mapping(allowed_keys=("manage", "regions", "key", "customerKeyArns"))
    regions_node = section.child("regions")
    regions = tuple(regions_node.string_list(pattern=REGION_PATTERN))
    if required and regions_node.missing:
        regions_node.fail("required when Incident Manager is enabled: the stack's region first, then up to "
                          f"{MAX_REPLICATION_REGIONS - 1} more")
    elif isinstance(regions_node.value, list) and not 1 <= len(regions_node.value) <= MAX_REPLICATION_REGIONS:
        regions_node.fail(f"expected 1 to {MAX_REPLICATION_REGIONS} regions")
    regions_node.fail_duplicates(regions, "region")
    key = section.child("key").string("aws-owned", allowed=KEY_CHOICES)
    keys_node = section.child("customerKeyArns")
    customer_keys: dict[str, str] = {}
    if key == "customer":
        customer_keys = _parse_customer_keys(keys_node, regions)
    elif not keys_node.missing:
        keys_node.fail(f"only allowed when key is customer (key is {key})")
    return ReplicationSetSettings(
        manage=section.child("manage").boolean(True),
        regions=regions,
        customer_key_arns=customer_keys,
    )


def _parse_customer_keys(node: Node, regions: tuple[str, ...]) -> dict[str, str]:
    """Region -> customer managed key; each replication region needs its own key in that region."""
    keys: dict[str, str] = {}
    for region, arn_node in node.mapping().items("region"):
        match = re.fullmatch(KMS_KEY_ARN_PATTERN, arn_node.string(pattern=KMS_KEY_ARN_PATTERN) or "")
        if match is None:
            if arn_node.missing:
                arn_node.fail("expected a KMS key ARN")
        elif match.group("region") != region:
            arn_node.fail(f"a replication region needs a key in that region ({region})")
        elif region not in regions:
            arn_node.fail(f"{region} is not one of replicationSet.regions")
        else:
            keys[region] = match.group(0)
    for region in regions:
        if node.child(region).missing:
            node.child(region).fail("required when key is customer: a KMS key ARN in this region")
    return keys


def _parse_incident_template(node: Node, environment: str) -> IncidentTemplate:
    section = node.mapping(allowed_keys=("title", "summary", "dedupeString"))

    def text(key: str, default: str, maximum: int) -> str:
        child = section.child(key)
        value = child.string(default, min_length=1) or default
        if len(value) > maximum:
            child.fail(f"expected at most {maximum} characters")
        return value

    return IncidentTemplate(
        title=text("title", f"IoT device security violation ({environment})", TITLE_MAX),
        summary=text(
            "summary",
            "AWS IoT Device Defender reported a device behaving outside its security profile. The runbook "
            "quarantines the devices named in the related items; follow its Analysis and Recovery steps.",
            SUMMARY_MAX,
        ),
        dedupe_string=_optional_text(section.child("dedupeString"), DEDUPE_MAX),
    )


def _optional_text(node: Node, maximum: int) -> str | None:
    value = node.string(None, min_length=1)
    if value is not None and len(value) > maximum:
        node.fail(f"expected at most {maximum} characters")
    return value

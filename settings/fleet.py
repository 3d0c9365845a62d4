"""``fleetguard:fleet``: fleet indexing, the dynamic thing groups responders query, fleet metrics with
alarms for the fleet's KPIs, and the firmware recovery job template (staged rollout, automatic abort)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from settings.reader import Node


class Kpi(StrEnum):
    """A question responders ask about the fleet: each can be a dynamic thing group and a fleet metric."""

    IN_VIOLATION = "inViolation"
    """Devices with at least one active Device Defender Detect violation."""
    DISCONNECTED = "disconnected"
    """Devices whose last lifecycle event is a disconnect."""
    WATCHED_FIRMWARE = "watchedFirmware"
    """Devices reporting the watched firmware version (typically one with a known flaw)."""


KPI_PREREQUISITE: Final[dict[Kpi, str]] = {
    Kpi.IN_VIOLATION: "indexing.deviceDefenderViolations",
    Kpi.DISCONNECTED: "indexing.connectivity",
    Kpi.WATCHED_FIRMWARE: "firmware.watchedVersion",
}
"""The setting each KPI's query depends on (the index field it reads, or the version it looks for)."""

# Registry attribute names usable as fleet indexing custom fields (``attributes.<name>``).
ATTRIBUTE_NAME_PATTERN: Final = r"[a-zA-Z0-9_-]{1,64}"
# Registry attribute values allow [a-zA-Z0-9_.,@/:#-]; versions keep to the characters that need no
# escaping in the job document and stay short enough for the names derived from them.
FIRMWARE_VERSION_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,19}"
S3_BUCKET_PATTERN: Final = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
# Keys limited to S3's "safe" characters, so the presigned-URL placeholder needs no URL encoding.
S3_KEY_PATTERN: Final = r"[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]{0,1023}"
SHA256_PATTERN: Final = r"[0-9a-f]{64}"

FLEET_METRIC_PERIOD_RANGE: Final = (60, 86400)
"""Fleet metrics emit every 60 s to 1 day, in whole minutes."""
ALARM_WINDOW_MAX_SECONDS: Final = 86400
"""CloudWatch limits period x evaluation periods to one day."""
ROLLOUT_RATE_RANGE: Final = (1, 1000)
INCREMENT_FACTOR_RANGE: Final = (1.1, 5.0)
IN_PROGRESS_TIMEOUT_RANGE: Final = (1, 10080)
PRESIGNED_URL_EXPIRY_RANGE: Final = (60, 3600)
INDEX_READY_TIMEOUT_KEY: Final = "fleetguard:fleet.indexing.readyTimeoutSeconds"
"""How long a deploy waits for the fleet index to be ACTIVE; named in the deploy-time error when it runs out."""
INDEX_READY_TIMEOUT_RANGE: Final = (60, 21600)
"""At least one poll of the index, at most six hours (building the index of a large fleet takes a while)."""
DEFAULT_INDEX_READY_TIMEOUT_SECONDS: Final = 1800
ABORT_FAILURE_TYPES: Final = ("FAILED", "REJECTED", "TIMED_OUT", "ALL")
RETRY_FAILURE_TYPES: Final = ("FAILED", "TIMED_OUT", "ALL")
MAX_RETRY_CRITERIA: Final = 2
MAX_RETRIES: Final = 10

DEFAULT_METRIC_THRESHOLDS: Final[dict[Kpi, int]] = {
    Kpi.IN_VIOLATION: 10,
    Kpi.DISCONNECTED: 50,
    Kpi.WATCHED_FIRMWARE: 0,
}


@dataclass(frozen=True)
class IndexingSettings:
    """Which data sources the account's fleet index holds, and whether this stack sets them."""

    manage: bool
    """This stack owns the account-wide indexing configuration. When false another stack (or the
    console) does, and the flags below state what it is expected to index."""
    shadow: bool
    connectivity: bool
    device_defender_violations: bool
    ready_timeout_seconds: int
    """How long a deploy waits for the index to be ACTIVE before creating the fleet metrics and dynamic
    groups that query it (the index is rebuilt after every indexing configuration change)."""


@dataclass(frozen=True)
class FirmwareSettings:
    """The registry attribute devices report their firmware version in, and the version to watch."""

    attribute: str
    watched_version: str | None


@dataclass(frozen=True)
class MetricSettings:
    """One KPI as a fleet metric (a count of matching devices) and the alarm on it."""

    kpi: Kpi
    period_seconds: int
    threshold: int
    """The alarm fires when the count is above this."""
    evaluation_periods: int
    datapoints_to_alarm: int


@dataclass(frozen=True)
class RolloutSettings:
    """Staged rollout: start slow, speed up only after successes, never exceed a ceiling."""

    base_rate_per_minute: int
    increment_factor: float
    increase_after_succeeded: int
    """The rate grows by increment_factor each time this many more devices have succeeded."""
    maximum_per_minute: int


@dataclass(frozen=True)
class AbortCriterion:
    """Cancel the job when this share of executions has failed this way (after a minimum sample)."""

    failure_type: str
    threshold_percent: int
    min_executed_things: int


@dataclass(frozen=True)
class RetryCriterion:
    failure_type: str
    retries: int


@dataclass(frozen=True)
class RecoverySettings:
    """The job template that returns devices to a known-good firmware."""

    enabled: bool
    firmware_version: str
    firmware_bucket: str
    firmware_key: str
    firmware_sha256: str | None
    presigned_url_expiry_seconds: int
    in_progress_timeout_minutes: int
    rollout: RolloutSettings
    abort: tuple[AbortCriterion, ...]
    retry: tuple[RetryCriterion, ...]
    continuous: bool = False
    """Keep a continuous job from the template on the watched-firmware dynamic group: a device on the
    watched version gets the recovery firmware when it connects."""


@dataclass(frozen=True)
class FleetSettings:
    """Fleet-wide visibility and recovery."""

    indexing: IndexingSettings
    firmware: FirmwareSettings
    dynamic_groups: tuple[Kpi, ...]
    metrics: tuple[MetricSettings, ...]
    recovery: RecoverySettings | None


def parse_fleet(node: Node, *, detect_enabled: bool) -> FleetSettings:
    """``detect_enabled``: whether this stack runs Device Defender Detect. Without it there are no
    violations to index, so violation indexing (and the inViolation group and metric) default to off;
    set ``indexing.deviceDefenderViolations`` when another stack runs Detect in the account."""
    section = node.mapping(allowed_keys=("indexing", "firmware", "dynamicGroups", "metrics", "recovery"))
    indexing_node = section.child("indexing").mapping(
        allowed_keys=("manage", "shadow", "connectivity", "deviceDefenderViolations", "readyTimeoutSeconds")
    )
    violations_node = indexing_node.child("deviceDefenderViolations")
    violations_node.record("boolean", "fleetguard:detect.enabled")
    indexing = IndexingSettings(
        manage=indexing_node.child("manage").boolean(True),
        shadow=indexing_node.child("shadow").boolean(True),
        connectivity=indexing_node.child("connectivity").boolean(True),
        device_defender_violations=violations_node.boolean(detect_enabled),
        ready_timeout_seconds=indexing_node.child("readyTimeoutSeconds").integer(
            DEFAULT_INDEX_READY_TIMEOUT_SECONDS,
            minimum=INDEX_READY_TIMEOUT_RANGE[0],
            maximum=INDEX_READY_TIMEOUT_RANGE[1],
        ) or DEFAULT_INDEX_READY_TIMEOUT_SECONDS,
    )
    firmware_node = section.child("firmware").mapping(allowed_keys=("attribute", "watchedVersion"))
    firmware = FirmwareSettings(
        attribute=firmware_node.child("attribute").string("firmwareVersion", pattern=ATTRIBUTE_NAME_PATTERN)
        or "firmwareVersion",
        watched_version=firmware_node.child("watchedVersion").string(pattern=FIRMWARE_VERSION_PATTERN),
    )
    available = {
        Kpi.IN_VIOLATION: indexing.device_defender_violations,
        Kpi.DISCONNECTED: indexing.connectivity,
        Kpi.WATCHED_FIRMWARE: firmware.watched_version is not None,
    }
    recovery = _parse_recovery(section.child("recovery"))
    if recovery and firmware.watched_version == recovery.firmware_version:
        section.child("recovery").child("firmwareVersion").fail(
            "must differ from firmware.watchedVersion (recovery rolls devices off the watched version)"
        )
    dynamic_groups = _parse_groups(section.child("dynamicGroups"), available)
    if recovery and recovery.continuous and Kpi.WATCHED_FIRMWARE not in dynamic_groups:
        # Without a watched version there is no group either, so one message covers both.
        section.child("recovery").child("continuous").fail(
            "needs a group to target: fleetguard:fleet.firmware.watchedVersion set and watchedFirmware among "
            "fleetguard:fleet.dynamicGroups"
        )
    return FleetSettings(
        indexing=indexing,
        firmware=firmware,
        dynamic_groups=dynamic_groups,
        metrics=_parse_metrics(section.child("metrics"), available),
        recovery=recovery,
    )


def _unavailable(node: Node, kpi: Kpi) -> None:
    prerequisite = KPI_PREREQUISITE[kpi]
    wanted = "set" if kpi is Kpi.WATCHED_FIRMWARE else "true"
    node.fail(f"{kpi.value} needs fleetguard:fleet.{prerequisite} to be {wanted}")


def _parse_groups(node: Node, available: dict[Kpi, bool]) -> tuple[Kpi, ...]:
    if node.missing:
        node = node.with_value([kpi.value for kpi in Kpi if available[kpi]])
    chosen: list[Kpi] = []
    for element in node.elements():
        name = element.string(allowed=[kpi.value for kpi in Kpi])
        if name is None:
            continue
        kpi = Kpi(name)
        if kpi in chosen:
            element.fail(f"{name!r} is listed more than once")
        elif not available[kpi]:
            _unavailable(element, kpi)
        else:
            chosen.append(kpi)
    return tuple(chosen)


def _parse_metrics(node: Node, available: dict[Kpi, bool]) -> tuple[MetricSettings, ...]:
    section = node.mapping(allowed_keys=[kpi.value for kpi in Kpi])
    metrics: list[MetricSettings] = []
    for kpi in Kpi:
        entry = section.child(kpi.value)
        item = entry.mapping(allowed_keys=(
            "enabled", "periodSeconds", "threshold", "evaluationPeriods", "datapointsToAlarm",
        ))
        # A KPI is measured by default when its data is there; configuring it asks for it explicitly.
        if not item.child("enabled").boolean(available[kpi] or not entry.missing):
            continue
        if not available[kpi]:
            _unavailable(item, kpi)
            continue
        metric = _parse_metric(item, kpi)
        if metric is not None:
            metrics.append(metric)
    return tuple(metrics)


def _parse_metric(item: Node, kpi: Kpi) -> MetricSettings | None:
    low, high = FLEET_METRIC_PERIOD_RANGE
    period_node = item.child("periodSeconds")
    period = period_node.integer(300, minimum=low, maximum=high) or 300
    if period % 60:
        period_node.fail("expected a whole number of minutes in seconds (a multiple of 60)")
        return None
    threshold = item.child("threshold").integer(DEFAULT_METRIC_THRESHOLDS[kpi], minimum=0)
    evaluations_node = item.child("evaluationPeriods")
    evaluations = evaluations_node.integer(1, minimum=1) or 1
    if period * evaluations > ALARM_WINDOW_MAX_SECONDS:
        evaluations_node.fail(
            f"periodSeconds x evaluationPeriods must not exceed {ALARM_WINDOW_MAX_SECONDS} seconds (one day)"
        )
        return None
    datapoints_node = item.child("datapointsToAlarm")
    datapoints = datapoints_node.integer(evaluations, minimum=1) or evaluations
    if datapoints > evaluations:
        datapoints_node.fail(f"must not exceed evaluationPeriods ({evaluations})")
        return None
    if threshold is None:
        return None
    return MetricSettings(kpi, period, threshold, evaluations, datapoints)


def _decimal(node: Node, default: float, *, minimum: float, maximum: float) -> float:
    """A number that may have a fractional part (the reader's integer() rejects those)."""
    node.record("number", default, f"{minimum}..{maximum}")
    if node.missing:
        return default
    if isinstance(node.value, bool) or not isinstance(node.value, int | float):
        node.fail("expected a number")
        return default
    if not minimum <= node.value <= maximum:
        node.fail(f"expected a number in {minimum}..{maximum}")
        return default
    return float(node.value)


def _parse_recovery(node: Node) -> RecoverySettings | None:
    section = node.mapping(allowed_keys=(
        "enabled", "firmwareVersion", "firmwareBucket", "firmwareKey", "firmwareSha256",
        "presignedUrlExpirySeconds", "inProgressTimeoutMinutes", "rollout", "abort", "retry", "continuous",
    ))
    continuous_node = section.child("continuous")
    continuous = continuous_node.boolean(False)
    if not section.child("enabled").boolean(True) or node.missing:
        if continuous:
            continuous_node.fail("needs the recovery job template: set fleetguard:fleet.recovery.enabled to true")
        return None
    version = section.child("firmwareVersion").required_string(pattern=FIRMWARE_VERSION_PATTERN)
    bucket = section.child("firmwareBucket").required_string(pattern=S3_BUCKET_PATTERN)
    key = section.child("firmwareKey").required_string(pattern=S3_KEY_PATTERN)
    sha256 = section.child("firmwareSha256").string(pattern=SHA256_PATTERN)
    expiry = section.child("presignedUrlExpirySeconds").integer(
        3600, minimum=PRESIGNED_URL_EXPIRY_RANGE[0], maximum=PRESIGNED_URL_EXPIRY_RANGE[1]
    ) or 3600
    timeout = section.child("inProgressTimeoutMinutes").integer(
        60, minimum=IN_PROGRESS_TIMEOUT_RANGE[0], maximum=IN_PROGRESS_TIMEOUT_RANGE[1]
    ) or 60
    rollout = _parse_rollout(section.child("rollout"))
    abort = _parse_abort(section.child("abort"))
    retry = _parse_retry(section.child("retry"))
    if not (version and bucket and key):
        return None
    return RecoverySettings(
        enabled=True,
        firmware_version=version,
        firmware_bucket=bucket,
        firmware_key=key,
        firmware_sha256=sha256,
        presigned_url_expiry_seconds=expiry,
        in_progress_timeout_minutes=timeout,
        rollout=rollout,
        abort=abort,
        retry=retry,
        continuous=continuous,
    )


def _parse_rollout(node: Node) -> RolloutSettings:
    section = node.mapping(allowed_keys=(
        "baseRatePerMinute", "incrementFactor", "increaseAfterSucceeded", "maximumPerMinute",
    ))
    low, high = ROLLOUT_RATE_RANGE
    base = section.child("baseRatePerMinute").integer(5, minimum=low, maximum=high) or 5
    maximum_node = section.child("maximumPerMinute")
    maximum = maximum_node.integer(100, minimum=low, maximum=high) or 100
    if maximum < base:
        maximum_node.fail(f"must be at least baseRatePerMinute ({base})")
    factor_node = section.child("incrementFactor")
    factor = _decimal(factor_node, 2.0, minimum=INCREMENT_FACTOR_RANGE[0], maximum=INCREMENT_FACTOR_RANGE[1])
    if round(factor, 1) != factor:
        factor_node.fail("AWS IoT takes one digit after the decimal point (e.g. 1.5, not 1.55)")
        factor = 2.0
    return RolloutSettings(
        base_rate_per_minute=base,
        increment_factor=factor,
        increase_after_succeeded=section.child("increaseAfterSucceeded").integer(10, minimum=1) or 10,
        maximum_per_minute=max(maximum, base),
    )


def _parse_abort(node: Node) -> tuple[AbortCriterion, ...]:
    if node.missing:
        node = node.with_value([{"failureType": "ALL", "thresholdPercent": 10, "minExecutedThings": 10}])
    criteria = node.each(_parse_abort_criterion)
    if node.value == []:
        node.fail("expected at least one abort criterion; a firmware rollout must stop itself on failures")
    node.fail_duplicates([criterion.failure_type for criterion in criteria], "failure type")
    return tuple(criteria)


def _parse_abort_criterion(node: Node) -> AbortCriterion | None:
    item = node.mapping(allowed_keys=("failureType", "thresholdPercent", "minExecutedThings"))
    failure_type = item.child("failureType").required_string(allowed=ABORT_FAILURE_TYPES)
    threshold = item.child("thresholdPercent").required_integer(minimum=1, maximum=100)
    minimum = item.child("minExecutedThings").integer(10, minimum=1) or 10
    if not failure_type or not threshold:
        return None
    return AbortCriterion(failure_type, threshold, minimum)


def _parse_retry(node: Node) -> tuple[RetryCriterion, ...]:
    if node.missing:
        node = node.with_value([{"failureType": "TIMED_OUT", "retries": 1}])
    criteria = node.each(_parse_retry_criterion)
    if isinstance(node.value, list) and len(node.value) > MAX_RETRY_CRITERIA:
        node.fail(f"expected at most {MAX_RETRY_CRITERIA} retry criteria")
    node.fail_duplicates([criterion.failure_type for criterion in criteria], "failure type")
    return tuple(criteria[:MAX_RETRY_CRITERIA])


def _parse_retry_criterion(node: Node) -> RetryCriterion | None:
    item = node.mapping(allowed_keys=("failureType", "retries"))
    failure_type = item.child("failureType").required_string(allowed=RETRY_FAILURE_TYPES)
    retries = item.child("retries").integer(1, minimum=0, maximum=MAX_RETRIES)
    if not failure_type or retries is None:
        return None
    return RetryCriterion(failure_type, retries)

"""``fleetguard:detect.engine`` and the options of fleetguard's own Detect engine.

Device Defender Detect is closed to new AWS customers; in such an account fleetguard evaluates the same
rule behaviors itself: devices publish Device Defender metrics reports to a Basic Ingest topic, IoT rules
and a log subscription feed one Kinesis stream, and an evaluator function raises ViolationEvents on the
alert topic. What the engine can evaluate is the evaluator's own fact (``settings.facts`` re-exports
it from ``functions/engine_behaviors.py``); a behavior it cannot evaluate is a config error here, never
silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from settings import facts
from settings.facts import EVALUABLE_METRICS, MESSAGE_METRICS
from settings.reader import Node


class Engine(StrEnum):
    """Who evaluates the rule behaviors."""

    DEVICE_DEFENDER = "deviceDefender"
    """AWS IoT Device Defender Detect security profiles (accounts onboarded before 2026-08-31)."""
    FLEETGUARD = "fleetguard"
    """fleetguard's own engine: Basic Ingest, Kinesis, an evaluator function and a DynamoDB state table."""


MAX_MESSAGE_TOPIC_FILTERS: Final = 10
"""Each filter is one topic rule that fires on every matching message; ten keeps the cost deliberate."""
TOPIC_FILTER_MAX_BYTES: Final = 256
"""AWS IoT topic names are at most 256 bytes (UTF-8)."""
TOPIC_FILTER_MAX_SLASHES: Final = 7
"""AWS IoT topics have at most 8 levels (7 forward slashes) besides the reserved prefixes."""
STREAM_SHARDS_RANGE: Final = (0, 64)
"""0 = on-demand capacity; 1.. = provisioned shards (each takes 1 MB/s or 1,000 records/s in)."""
STREAM_RETENTION_HOURS_RANGE: Final = (24, 8760)
"""Kinesis data stream retention: 24 hours to 365 days."""
BATCH_SIZE_RANGE: Final = (1, 10_000)
"""Kinesis event source mapping BatchSize."""
BATCH_WINDOW_SECONDS_RANGE: Final = (0, 300)
"""MaximumBatchingWindowInSeconds."""
PARALLELIZATION_FACTOR_RANGE: Final = (1, 10)
"""Concurrent batches per shard; records of one partition key (one device) stay in order at any factor."""
RETRY_ATTEMPTS_RANGE: Final = (0, 10_000)
"""MaximumRetryAttempts of a Kinesis event source mapping (-1, infinite, is deliberately not offered)."""
SWEEP_INTERVAL_MINUTES_RANGE: Final = (5, 1440)
FUNCTION_TIMEOUT_RANGE: Final = (10, 900)
FUNCTION_MEMORY_RANGE: Final = (128, 10_240)


@dataclass(frozen=True)
class EngineOptions:
    """How the fleetguard engine runs (defaults fit a fleet reporting every five minutes)."""

    sweep_interval_minutes: int
    """How often the sweep looks for devices silent for two days (their alarms become alarm-invalidated)."""
    stream_shards: int
    """0: on-demand stream; otherwise provisioned with this many shards."""
    stream_retention_hours: int
    batch_size: int
    batch_window_seconds: int
    parallelization_factor: int
    maximum_retry_attempts: int
    function_memory_mb: int
    function_timeout_seconds: int
    point_in_time_recovery: bool
    log_level: str
    log_retention_days: int


@dataclass(frozen=True)
class EngineSettings:
    """Which engines run, and what the fleetguard engine needs."""

    engines: tuple[Engine, ...]
    profile_name: str
    """The securityProfileName of the fleetguard engine's violations (tells them apart side by side)."""
    message_topic_filters: tuple[str, ...]
    """Topic filters whose messages count for aws:num-messages-sent and aws:message-byte-size."""
    options: EngineOptions

    @property
    def device_defender(self) -> bool:
        return Engine.DEVICE_DEFENDER in self.engines

    @property
    def fleetguard(self) -> bool:
        return Engine.FLEETGUARD in self.engines


def parse_engines(node: Node) -> tuple[Engine, ...]:
    """``"deviceDefender"``, ``"fleetguard"`` or a list of both (a side-by-side migration)."""
    choices = tuple(engine.value for engine in Engine)
    node.record("string or list of strings", Engine.DEVICE_DEFENDER.value, ", ".join(choices))
    if node.missing:
        return (Engine.DEVICE_DEFENDER,)
    names = [node.value] if isinstance(node.value, str) else node.value
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        node.fail(f"expected one of {', '.join(choices)}, or a list of them")
        return (Engine.DEVICE_DEFENDER,)
    unknown = [name for name in names if name not in choices]
    if unknown:
        node.fail(f"expected one of {', '.join(choices)}; unknown: {', '.join(unknown)}")
        return (Engine.DEVICE_DEFENDER,)
    node.fail_duplicates(names, "engine")
    return tuple(Engine(name) for name in dict.fromkeys(names))


def parse_topic_filters(node: Node) -> tuple[str, ...]:
    node.record("list of strings", [], f"MQTT topic filters (+ and # wildcards), at most {MAX_MESSAGE_TOPIC_FILTERS}")
    filters: list[str] = []
    elements = node.elements()
    for element in elements:
        text = element.string()
        if text is None:
            continue
        problem = topic_filter_problem(text)
        if problem:
            element.fail(problem)
        else:
            filters.append(text)
    if len(elements) > MAX_MESSAGE_TOPIC_FILTERS:
        node.fail(f"at most {MAX_MESSAGE_TOPIC_FILTERS} topic filters (each is a topic rule billed per message)")
    node.fail_duplicates(filters, "topic filter")
    return tuple(filters)


def topic_filter_problem(text: str) -> str | None:
    """Why ``text`` is not an MQTT topic filter a topic rule can select from, or None."""
    levels = text.split("/")
    checks = (
        (not text or len(text.encode()) > TOPIC_FILTER_MAX_BYTES,
         f"expected a topic filter of 1-{TOPIC_FILTER_MAX_BYTES} bytes"),
        (text.startswith("$"),
         "reserved topics ($aws/...) are not device messages; list the topics devices publish to"),
        ("'" in text or "\\" in text, "quotes and backslashes cannot appear in a topic rule's FROM clause"),
        (re.search(r"[\x00-\x1f]", text) is not None, "control characters are not allowed in topics"),
        (len(levels) > TOPIC_FILTER_MAX_SLASHES + 1,
         f"AWS IoT topics have at most {TOPIC_FILTER_MAX_SLASHES + 1} levels"),
        (any(("+" in level or "#" in level) and level not in ("+", "#") for level in levels),
         "a wildcard (+ or #) must fill a whole level"),
        ("#" in levels[:-1], "# may only be the last level"),
    )
    return next((problem for failed, problem in checks if failed), None)


def parse_options(node: Node) -> EngineOptions:
    section = node.mapping(allowed_keys=(
        "sweepIntervalMinutes", "streamShards",
        "streamRetentionHours", "batchSize", "batchWindowSeconds", "parallelizationFactor",
        "maximumRetryAttempts", "functionMemoryMb", "functionTimeoutSeconds",
        "pointInTimeRecovery", "logLevel", "logRetentionDays",
    ))

    def bounded(key: str, default: int, limits: tuple[int, int]) -> int:
        return section.child(key).bounded_integer(default, *limits)

    return EngineOptions(
        sweep_interval_minutes=bounded("sweepIntervalMinutes", 60, SWEEP_INTERVAL_MINUTES_RANGE),
        stream_shards=bounded("streamShards", 0, STREAM_SHARDS_RANGE),
        stream_retention_hours=bounded("streamRetentionHours", 24, STREAM_RETENTION_HOURS_RANGE),
        batch_size=bounded("batchSize", 500, BATCH_SIZE_RANGE),
        batch_window_seconds=bounded("batchWindowSeconds", 5, BATCH_WINDOW_SECONDS_RANGE),
        parallelization_factor=bounded("parallelizationFactor", 1, PARALLELIZATION_FACTOR_RANGE),
        maximum_retry_attempts=bounded("maximumRetryAttempts", 3, RETRY_ATTEMPTS_RANGE),
        function_memory_mb=bounded("functionMemoryMb", 512, FUNCTION_MEMORY_RANGE),
        function_timeout_seconds=bounded("functionTimeoutSeconds", 60, FUNCTION_TIMEOUT_RANGE),
        # A restored table keeps every device's alarms; without it a lost table re-raises them all.
        point_in_time_recovery=section.child("pointInTimeRecovery").boolean(True),
        log_level=section.child("logLevel").string("INFO", allowed=facts.POWERTOOLS_LOG_LEVELS) or "INFO",
        # A year, as the pack asks of security logs in production.
        log_retention_days=section.child("logRetentionDays").integer(365, allowed=facts.LOG_RETENTION_DAYS) or 365,
    )


def check_evaluable(
    rules_node: Node,
    behaviors: list[tuple[int, str, str | None]],
    *,
    message_filters: tuple[str, ...],
) -> None:
    """Every rule behavior (index, metric, statistic) is one the fleetguard engine evaluates exactly as
    Device Defender would; otherwise a problem naming the behavior's key and why."""
    problems = rules_node.problems
    for index, metric, statistic in behaviors:
        where = f"{rules_node.path}[{index}]"
        if statistic is not None:
            problems.add(
                f"{where}.statistic",
                "the fleetguard engine cannot evaluate statistical thresholds: a percentile is taken over the "
                "datapoints of every device Device Defender watches, which one device's stream does not hold; "
                "use a value, or keep deviceDefender in detect.engine",
            )
        if metric in MESSAGE_METRICS and not message_filters:
            problems.add(
                f"{where}.metric",
                f"the fleetguard engine counts {metric} only on the topics listed in detect.messageTopicFilters "
                "(each is a topic rule billed per message); list them or remove this behavior",
            )
        elif metric not in EVALUABLE_METRICS:
            problems.add(
                f"{where}.metric",
                f"the fleetguard engine has no source for {metric}: AWS IoT publishes no event a rule or log "
                "subscription can count for it; remove this behavior or keep deviceDefender in detect.engine",
            )

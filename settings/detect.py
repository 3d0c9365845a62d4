"""``fleetguard:detect``: rule-based and ML Detect security profiles and what they watch."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from settings import facts
from settings.detect_engine import (
    Engine,
    EngineSettings,
    check_evaluable,
    parse_engines,
    parse_options,
    parse_topic_filters,
)
from settings.reader import Node

# Defaults drawn from AWS's public material on Device Defender: the authorized listening ports of AWS's
# incident-response sample (TCP 22/53/443; its UDP 90 is replaced by DNS/NTP here), the message-count and
# authorization-failure behaviors of the Device Defender Detect workshop, and the connection attempts and
# message size of AWS's IoT incident-response blog post.
DEFAULT_RULE_BEHAVIORS: tuple[dict[str, object], ...] = (
    {"name": "AuthorizedListeningTcpPorts", "metric": "aws:listening-tcp-ports",
     "operator": "in-port-set", "value": [22, 53, 443]},
    {"name": "AuthorizedListeningUdpPorts", "metric": "aws:listening-udp-ports",
     "operator": "in-port-set", "value": [53, 123]},
    {"name": "MaxMessageSize", "metric": "aws:message-byte-size", "operator": "less-than-equals",
     "value": 65536},
    {"name": "MessagesSent", "metric": "aws:num-messages-sent", "operator": "less-than-equals",
     "value": 100, "durationSeconds": 300},
    {"name": "AuthorizationFailures", "metric": "aws:num-authorization-failures", "operator": "less-than",
     "value": 5, "durationSeconds": 300},
    {"name": "ConnectionAttempts", "metric": "aws:num-connection-attempts", "operator": "less-than-equals",
     "value": 10, "durationSeconds": 300},
)
DEFAULT_ML_BEHAVIORS: tuple[dict[str, object], ...] = (
    {"name": "MlBytesOut", "metric": "aws:all-bytes-out", "confidence": "HIGH"},
    {"name": "MlAuthorizationFailures", "metric": "aws:num-authorization-failures", "confidence": "HIGH"},
    {"name": "MlConnectionAttempts", "metric": "aws:num-connection-attempts", "confidence": "MEDIUM"},
)


@dataclass(frozen=True)
class RuleBehavior:
    """A rule-based behavior: a threshold value, or a statistical threshold over the fleet."""

    name: str
    metric: str
    operator: str
    count: int | None = None
    ports: tuple[int, ...] | None = None
    cidrs: tuple[str, ...] | None = None
    statistic: str | None = None
    duration_seconds: int | None = None
    datapoints_to_alarm: int = 1
    datapoints_to_clear: int = 1
    suppress_alerts: bool = False


@dataclass(frozen=True)
class MlBehavior:
    """An ML Detect behavior: AWS learns the normal range; we choose how confident it must be."""

    name: str
    metric: str
    confidence: str
    datapoints_to_alarm: int = 1
    datapoints_to_clear: int = 1
    suppress_alerts: bool = False


@dataclass(frozen=True)
class DetectSettings:
    """Detect is optional per environment: it is closed to new AWS customers since 2026-08-31."""

    enabled: bool
    target_groups: tuple[str, ...]
    """Thing groups the profiles attach to; empty means every thing in the account."""
    rule_profile_name: str
    rule_behaviors: tuple[RuleBehavior, ...]
    ml_enabled: bool
    ml_profile_name: str
    ml_behaviors: tuple[MlBehavior, ...]
    metrics_to_retain: tuple[str, ...]
    engine: EngineSettings
    """Who evaluates the rule behaviors: Device Defender, fleetguard's engine, or both side by side."""

    @property
    def device_defender(self) -> bool:
        """Whether this stack deploys Device Defender Detect security profiles."""
        return self.enabled and self.engine.device_defender

    @property
    def fleetguard_engine(self) -> bool:
        """Whether this stack deploys fleetguard's own Detect engine."""
        return self.enabled and self.engine.fleetguard

    @property
    def profile_names(self) -> tuple[str, ...]:
        """The Device Defender security profiles this stack deploys (none when Detect is off or only the
        fleetguard engine runs)."""
        if not self.device_defender:
            return ()
        return (self.rule_profile_name, self.ml_profile_name) if self.ml_enabled else (self.rule_profile_name,)

    @property
    def engine_profile_names(self) -> tuple[str, ...]:
        """The profile name the fleetguard engine's violations carry (none when it does not run)."""
        return (self.engine.profile_name,) if self.fleetguard_engine else ()


def parse_detect(node: Node, environment: str) -> DetectSettings:
    section = node.mapping(allowed_keys=(
        "enabled", "targets", "ruleProfileName", "ruleBehaviors", "ml", "metricsToRetain",
        "engine", "engineProfileName", "messageTopicFilters", "engineOptions",
    ))
    enabled = section.child("enabled").boolean(True)
    engines = parse_engines(section.child("engine"))
    targets = _parse_targets(section.child("targets"))
    rules_node = section.child("ruleBehaviors")
    if rules_node.missing:
        rules_node = rules_node.with_value(list(DEFAULT_RULE_BEHAVIORS))
    indexed_rules = [
        (index, behavior)
        for index, element in enumerate(rules_node.elements())
        if (behavior := _parse_rule(element)) is not None
    ]
    rule_behaviors = tuple(behavior for _, behavior in indexed_rules)
    ml = section.child("ml").mapping(allowed_keys=("enabled", "profileName", "behaviors"))
    ml_node = ml.child("behaviors")
    if ml_node.missing:
        ml_node = ml_node.with_value(list(DEFAULT_ML_BEHAVIORS))
    ml_behaviors = tuple(ml_node.each(_parse_ml))
    ml_enabled_node = ml.child("enabled")
    ml_enabled_node.record("boolean", "true when deviceDefender is in detect.engine")
    ml_enabled = ml_enabled_node.boolean(Engine.DEVICE_DEFENDER in engines)
    _check_behavior_list(rules_node, [b.name for b in rule_behaviors], required=True)
    _check_behavior_list(ml_node, [b.name for b in ml_behaviors], required=ml_enabled)
    rule_profile_name = section.child("ruleProfileName").string(
        f"fleetguard-{environment}-rules", pattern=facts.PROFILE_NAME_PATTERN
    ) or ""
    ml_profile_name = ml.child("profileName").string(
        f"fleetguard-{environment}-ml", pattern=facts.PROFILE_NAME_PATTERN
    ) or ""
    engine = EngineSettings(
        engines=engines,
        profile_name=section.child("engineProfileName").string(
            f"fleetguard-{environment}-engine", pattern=facts.PROFILE_NAME_PATTERN
        ) or "",
        message_topic_filters=parse_topic_filters(section.child("messageTopicFilters")),
        options=parse_options(section.child("engineOptions")),
    )
    if enabled and engine.fleetguard:
        _check_engine_can_run(section, engine, indexed_rules, ml_enabled=ml_enabled,
                              device_defender_names=(rule_profile_name, ml_profile_name))
    return DetectSettings(
        enabled=enabled,
        target_groups=targets,
        rule_profile_name=rule_profile_name,
        rule_behaviors=rule_behaviors,
        ml_enabled=ml_enabled,
        ml_profile_name=ml_profile_name,
        ml_behaviors=ml_behaviors,
        metrics_to_retain=tuple(
            section.child("metricsToRetain").string_list(allowed=tuple(facts.DETECT_METRICS_BY_NAME))
        ),
        engine=engine,
    )


def _check_engine_can_run(
    section: Node,
    engine: EngineSettings,
    indexed_rules: list[tuple[int, RuleBehavior]],
    *,
    ml_enabled: bool,
    device_defender_names: tuple[str, str],
) -> None:
    """With the fleetguard engine every configured behavior must be one it evaluates as Device Defender
    would, and its violations must be told apart from Device Defender's."""
    check_evaluable(
        section.child("ruleBehaviors"),
        [(index, behavior.metric, behavior.statistic) for index, behavior in indexed_rules],
        message_filters=engine.message_topic_filters,
    )
    if ml_enabled and not engine.device_defender:
        section.child("ml").child("enabled").fail(
            "ML Detect behaviors are models Device Defender trains on the fleet's data; the fleetguard engine "
            "has none. Set false, or keep deviceDefender in detect.engine"
        )
    if engine.device_defender and engine.profile_name in device_defender_names:
        section.child("engineProfileName").fail(
            "must differ from the Device Defender profile names, so that each engine's violations are told apart"
        )


def _parse_targets(node: Node) -> tuple[str, ...]:
    node.record('"all" or list of thing group names', default="all")
    if node.missing or node.value == "all":
        return ()
    if isinstance(node.value, str):
        node.fail('expected "all" or a list of thing group names')
        return ()
    groups = node.string_list(pattern=facts.THING_GROUP_NAME_PATTERN)
    if not groups:
        node.fail('expected "all" or at least one thing group name')
    return tuple(groups)


def _check_behavior_list(node: Node, names: list[str], *, required: bool) -> None:
    if required and node.value == []:
        node.fail("expected at least one behavior")
    if len(names) > facts.MAX_BEHAVIORS_PER_PROFILE:
        node.fail(f"a security profile takes at most {facts.MAX_BEHAVIORS_PER_PROFILE} behaviors")
    for duplicate in sorted({name for name in names if names.count(name) > 1}):
        node.fail(f"behavior name {duplicate!r} is used more than once")


def _datapoints(node: Node) -> int:
    low, high = facts.DATAPOINTS_RANGE
    return node.integer(1, minimum=low, maximum=high) or 1


def _parse_rule(node: Node) -> RuleBehavior | None:
    item = node.mapping(allowed_keys=(
        "name", "metric", "operator", "value", "statistic", "durationSeconds",
        "datapointsToAlarm", "datapointsToClear", "suppressAlerts",
    ))
    name = item.child("name").required_string(pattern=facts.BEHAVIOR_NAME_PATTERN)
    metric_name = item.child("metric").required_string(allowed=tuple(facts.DETECT_METRICS_BY_NAME))
    metric = facts.DETECT_METRICS_BY_NAME.get(metric_name)
    operator = item.child("operator").required_string(allowed=tuple(facts.OPERATOR_VALUE_KIND))
    kind = facts.OPERATOR_VALUE_KIND.get(operator)
    if metric and kind and metric.value_kind is not kind:
        allowed = sorted(op for op, op_kind in facts.OPERATOR_VALUE_KIND.items() if op_kind is metric.value_kind)
        item.child("operator").fail(
            f"{metric.name} is compared with {metric.value_kind.value}; expected one of {', '.join(allowed)}"
        )
        kind = None
    value_node, statistic_node = item.child("value"), item.child("statistic")
    statistic = statistic_node.string(allowed=facts.STATISTICS)
    if value_node.missing == statistic_node.missing:
        item.problems.add(item.path, "expected exactly one of value or statistic")
    if not statistic_node.missing and kind is not facts.ValueKind.COUNT and kind is not None:
        statistic_node.fail(f"a statistical threshold needs a numeric operator, not {operator}")
    count, ports, cidrs = _parse_value(value_node, kind)
    duration = _parse_duration(item.child("durationSeconds"), metric, statistical=not statistic_node.missing)
    to_alarm = _datapoints(item.child("datapointsToAlarm"))
    to_clear = _datapoints(item.child("datapointsToClear"))
    suppress = item.child("suppressAlerts").boolean(False)
    if not (name and metric and kind) or (count is None and ports is None and cidrs is None and statistic is None):
        return None
    return RuleBehavior(
        name=name,
        metric=metric.name,
        operator=operator,
        count=count,
        ports=ports,
        cidrs=cidrs,
        statistic=statistic,
        duration_seconds=duration,
        datapoints_to_alarm=to_alarm,
        datapoints_to_clear=to_clear,
        suppress_alerts=suppress,
    )


def _parse_value(
    node: Node, kind: facts.ValueKind | None
) -> tuple[int | None, tuple[int, ...] | None, tuple[str, ...] | None]:
    node.record("integer, or list (ports / CIDRs)", allowed="count 0.. for numeric operators; ports 0..65535 "
                "for port sets; CIDR blocks for CIDR sets")
    if node.missing or kind is None:
        return None, None, None
    if kind is facts.ValueKind.COUNT:
        return node.integer(minimum=0), None, None
    if not isinstance(node.value, list) or not node.value:
        node.fail(f"expected a non-empty list of {kind.value}")
        return None, None, None
    if kind is facts.ValueKind.PORTS:
        ports = [element.integer(minimum=0, maximum=65535) for element in node.elements()]
        return None, tuple(port for port in ports if port is not None), None
    cidrs = []
    for element in node.elements():
        text = element.string()
        try:
            cidrs.append(str(ipaddress.ip_network(text or "", strict=True)))
        except ValueError:
            element.fail("expected a CIDR block such as 10.0.0.0/8")
    return None, None, tuple(cidrs)


def _parse_duration(node: Node, metric: facts.DetectMetric | None, *, statistical: bool) -> int | None:
    duration = node.integer(allowed=facts.DURATIONS_SECONDS)
    if metric is None:
        return duration
    needs_window = statistical or metric.duration is facts.Duration.REQUIRED
    if needs_window and node.missing:
        reason = "a statistical threshold" if statistical else metric.name
        node.fail(f"required for {reason}; expected one of {', '.join(map(str, facts.DURATIONS_SECONDS))}")
    if not needs_window and not node.missing:
        node.fail(f"{metric.name} is not measured over a time window; remove durationSeconds")
        return None
    return duration


def _parse_ml(node: Node) -> MlBehavior | None:
    item = node.mapping(allowed_keys=(
        "name", "metric", "confidence", "datapointsToAlarm", "datapointsToClear", "suppressAlerts",
    ))
    name = item.child("name").required_string(pattern=facts.BEHAVIOR_NAME_PATTERN)
    item.child("metric").record("string (required)", allowed=", ".join(facts.ML_METRICS))
    metric = item.child("metric").required_string()
    if metric and metric not in facts.ML_METRICS:
        supported = ", ".join(facts.ML_METRICS)
        item.child("metric").fail(f"ML Detect does not support this metric; expected one of {supported}")
        metric = ""
    confidence = item.child("confidence").required_string(allowed=facts.CONFIDENCE_LEVELS)
    to_alarm = _datapoints(item.child("datapointsToAlarm"))
    to_clear = _datapoints(item.child("datapointsToClear"))
    suppress = item.child("suppressAlerts").boolean(False)
    if not (name and metric and confidence):
        return None
    return MlBehavior(name, metric, confidence, to_alarm, to_clear, suppress)

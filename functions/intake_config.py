"""The intake function's configuration, read from its environment and validated.

Every variable is a string set by the stack (see the intake contract in ``functions/intake.py``). A bad
value raises ValueError naming the variable and what was expected: the whole invocation then fails and
the queue redelivers the batch, which is right for a deployment error (no record is judged by a broken
configuration).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.messages import THING_NAME_PATTERN, ViolationEvent

QUARANTINE_GROUP_NAME: Final = "QUARANTINE_GROUP_NAME"
INCIDENT_MANAGER_ENABLED: Final = "INCIDENT_MANAGER_ENABLED"
RESPONSE_PLAN_ARN: Final = "RESPONSE_PLAN_ARN"
RESPONDERS_TOPIC_ARN: Final = "RESPONDERS_TOPIC_ARN"
IMPACT_RULES: Final = "IMPACT_RULES"
AUDIT_ROUTING: Final = "AUDIT_ROUTING"
IOT_LOG_GROUP: Final = "IOT_LOG_GROUP"
STORM_THRESHOLD: Final = "STORM_THRESHOLD"
ADD_TO_QUARANTINE_ACTION_NAME: Final = "ADD_TO_QUARANTINE_ACTION_NAME"
NOTICE_LEDGER_TABLE: Final = "NOTICE_LEDGER_TABLE"

RESPONSE_PLAN_ARN_PATTERN: Final = re.compile(
    r"arn:aws(-cn|-us-gov)?:ssm-incidents::[0-9]{12}:response-plan/[a-zA-Z0-9_-]{1,200}"
)
TOPIC_ARN_PATTERN: Final = re.compile(r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,256}")
# CloudWatch Logs group names: 1-512 characters of [.-_/#A-Za-z0-9].
LOG_GROUP_PATTERN: Final = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
MITIGATION_ACTION_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
TABLE_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
AUDIT_CHECK_NAME_PATTERN: Final = re.compile(r"[A-Z0-9_]{1,128}_CHECK")
IMPACT_MIN, IMPACT_MAX = 1, 5
CONFIDENCE_LEVELS: Final = frozenset({"LOW", "MEDIUM", "HIGH"})
MIN_STORM_THRESHOLD: Final = 2
"""A storm of one device is a single alarm; the threshold must be at least two."""


@dataclass(frozen=True)
class ImpactRules:
    """Incident impact (1 critical ... 5 no impact) chosen per violation."""

    default: int
    by_profile: Mapping[str, int]
    by_confidence: Mapping[str, int]

    def for_violation(self, violation: ViolationEvent) -> int:
        """The security profile's impact, else (ML behaviors) the confidence level's, else the default.

        An ML violation's own confidence level counts; without one, the behavior's configured level."""
        confidence = violation.confidence_level if violation.behavior.kind == "ml" else None
        return self.for_behavior(violation, confidence or configured_confidence(violation))

    def for_behavior(self, violation: ViolationEvent, confidence: str | None) -> int:
        """Impact for the violation's profile and the given ML confidence level (None for rules)."""
        if violation.security_profile_name in self.by_profile:
            return self.by_profile[violation.security_profile_name]
        if confidence is not None and confidence in self.by_confidence:
            return self.by_confidence[confidence]
        return self.default


def configured_confidence(violation: ViolationEvent) -> str | None:
    """The ML confidence level the behavior is configured with (criteria.mlDetectionConfig); None for
    rule and statistical behaviors. The same for every violation of the behavior."""
    if violation.behavior.kind != "ml":
        return None
    level = violation.behavior.criteria.get("mlDetectionConfig", {}).get("confidenceLevel")
    return level if isinstance(level, str) else None


@dataclass(frozen=True)
class IntakeConfig:
    quarantine_group_name: str
    incident_manager_enabled: bool
    response_plan_arn: str | None
    """Set exactly when Incident Manager is enabled."""
    responders_topic_arn: str
    impact_rules: ImpactRules
    audit_incident_checks: frozenset[str]
    """Non-compliant audit checks that open an incident (when Incident Manager is enabled)."""
    iot_log_group: str
    storm_threshold: int
    """N or more in-alarm violations of one (security profile, behavior) in a batch form a storm."""
    add_to_quarantine_action_name: str
    notice_ledger_table: str
    """The DynamoDB table that records which responders notices were sent (functions/notice_ledger.py)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IntakeConfig:
        enabled = _choice(env, INCIDENT_MANAGER_ENABLED, ("true", "false")) == "true"
        plan_arn = None
        if enabled:
            plan_arn = _matching(
                env, RESPONSE_PLAN_ARN, RESPONSE_PLAN_ARN_PATTERN, "an Incident Manager response plan ARN"
            )
        elif env.get(RESPONSE_PLAN_ARN):
            raise ValueError(f"{RESPONSE_PLAN_ARN}: must be unset when {INCIDENT_MANAGER_ENABLED} is false")
        return cls(
            quarantine_group_name=_matching(env, QUARANTINE_GROUP_NAME, THING_NAME_PATTERN, "a thing group name"),
            incident_manager_enabled=enabled,
            response_plan_arn=plan_arn,
            responders_topic_arn=_matching(env, RESPONDERS_TOPIC_ARN, TOPIC_ARN_PATTERN, "an SNS topic ARN"),
            impact_rules=_impact_rules(_json_object(env, IMPACT_RULES)),
            audit_incident_checks=_audit_incident_checks(_json_object(env, AUDIT_ROUTING)),
            iot_log_group=_matching(env, IOT_LOG_GROUP, LOG_GROUP_PATTERN, "a CloudWatch Logs group name"),
            storm_threshold=_storm_threshold(env),
            add_to_quarantine_action_name=_matching(
                env, ADD_TO_QUARANTINE_ACTION_NAME, MITIGATION_ACTION_NAME_PATTERN, "a mitigation action name"
            ),
            notice_ledger_table=_matching(env, NOTICE_LEDGER_TABLE, TABLE_NAME_PATTERN, "a DynamoDB table name"),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ValueError(f"{name}: environment variable is not set")
    return value


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = _required(env, name)
    if not pattern.fullmatch(value):
        raise ValueError(f"{name}: expected {what} matching {pattern.pattern}, got {value!r}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _required(env, name)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _json_object(env: Mapping[str, str], name: str) -> dict[str, Any]:
    text = _required(env, name)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a JSON object, got {type(value).__name__}")
    return value


def _impact(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not IMPACT_MIN <= value <= IMPACT_MAX:
        raise ValueError(f"{where}: expected an impact integer {IMPACT_MIN}-{IMPACT_MAX}, got {value!r}")
    return value


def _impact_map(rules: Mapping[str, Any], key: str, allowed: frozenset[str] | None) -> dict[str, int]:
    where = f"{IMPACT_RULES}.{key}"
    entries = rules.get(key, {})
    if not isinstance(entries, dict):
        raise ValueError(f"{where}: expected an object, got {type(entries).__name__}")
    if allowed is not None:
        unknown = sorted(set(entries) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")
    return {name: _impact(impact, f"{where}.{name}") for name, impact in entries.items()}


def _impact_rules(rules: Mapping[str, Any]) -> ImpactRules:
    unknown = sorted(set(rules) - {"default", "byProfile", "byConfidence"})
    if unknown:
        raise ValueError(
            f"{IMPACT_RULES}: unknown key(s) {', '.join(unknown)}; expected default, byProfile, byConfidence"
        )
    if "default" not in rules:
        raise ValueError(f"{IMPACT_RULES}.default: required field is missing")
    return ImpactRules(
        default=_impact(rules["default"], f"{IMPACT_RULES}.default"),
        by_profile=_impact_map(rules, "byProfile", None),
        by_confidence=_impact_map(rules, "byConfidence", CONFIDENCE_LEVELS),
    )


def _audit_incident_checks(routing: Mapping[str, Any]) -> frozenset[str]:
    unknown = sorted(set(routing) - {"incidentChecks"})
    if unknown:
        raise ValueError(f"{AUDIT_ROUTING}: unknown key(s) {', '.join(unknown)}; expected incidentChecks")
    checks = routing.get("incidentChecks", [])
    if not isinstance(checks, list):
        raise ValueError(f"{AUDIT_ROUTING}.incidentChecks: expected an array, got {type(checks).__name__}")
    for index, check in enumerate(checks):
        if not isinstance(check, str) or not AUDIT_CHECK_NAME_PATTERN.fullmatch(check):
            raise ValueError(
                f"{AUDIT_ROUTING}.incidentChecks[{index}]: expected an audit check name matching "
                f"{AUDIT_CHECK_NAME_PATTERN.pattern}, got {check!r}"
            )
    return frozenset(checks)


def _storm_threshold(env: Mapping[str, str]) -> int:
    text = _required(env, STORM_THRESHOLD)
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < MIN_STORM_THRESHOLD:
        raise ValueError(f"{STORM_THRESHOLD}: expected an integer >= {MIN_STORM_THRESHOLD}, got {text!r}")
    return int(text)

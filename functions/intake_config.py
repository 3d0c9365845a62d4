"""The intake function's configuration, read from its environment and validated.

Every variable is a string set by the stack (their names and the scalar checks are in
``functions/contract.py``; the impact rules and audit routing documents are decoded here). A bad value
raises ValueError naming the variable and what was expected: the whole invocation then fails and
the queue redelivers the batch, which is right for a deployment error (no record is judged by a broken
configuration).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.contract import EnvVar, IntakeEnvironment
from functions.contract_mitigation import AUDIT_CHECK_NAME_PATTERN, AuditMitigationConfig, AuditMitigationEnvironment
from functions.contract_opscenter import OpsCenterEnvironment
from functions.messages import ViolationEvent
from functions.ops_incidents import OpsCenterSettings

IMPACT_MIN, IMPACT_MAX = 1, 5
CONFIDENCE_LEVELS: Final = frozenset({"LOW", "MEDIUM", "HIGH"})


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
    ops_center: OpsCenterSettings | None = None
    """Set when incidents are OpsCenter OpsItems (Incident Manager off)."""
    engine_profile_names: frozenset[str] = frozenset()
    """Profiles of the fleetguard Detect engine: Device Defender's mitigation tasks do not accept their
    violation ids, so storms of them are contained one device at a time."""
    containment_rate: int = 1
    """Devices per second one invocation contains on that path."""
    audit_mitigation: AuditMitigationConfig | None = None
    """Per audit check, the mitigation actions its findings get and who starts them; None maps no check."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IntakeConfig:
        raw = IntakeEnvironment.from_environment(env)
        ops_center = OpsCenterEnvironment.from_environment(env)
        return cls(
            quarantine_group_name=raw.quarantine_group_name,
            incident_manager_enabled=raw.incident_manager_enabled,
            response_plan_arn=raw.response_plan_arn,
            responders_topic_arn=raw.responders_topic_arn,
            impact_rules=_impact_rules(_json_object(EnvVar.IMPACT_RULES, raw.impact_rules)),
            audit_incident_checks=_audit_incident_checks(_json_object(EnvVar.AUDIT_ROUTING, raw.audit_routing)),
            iot_log_group=raw.iot_log_group,
            storm_threshold=raw.storm_threshold,
            add_to_quarantine_action_name=raw.add_to_quarantine_action_name,
            notice_ledger_table=raw.notice_ledger_table,
            ops_center=None if ops_center is None else OpsCenterSettings.from_environment(
                ops_center, raw.responders_topic_arn
            ),
            engine_profile_names=frozenset(raw.engine_profile_names),
            containment_rate=raw.containment_rate or 1,
            audit_mitigation=AuditMitigationEnvironment.from_environment(env),
        )


def _json_object(name: EnvVar, text: str) -> dict[str, Any]:
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
    where = f"{EnvVar.IMPACT_RULES}.{key}"
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
            f"{EnvVar.IMPACT_RULES}: unknown key(s) {', '.join(unknown)}; expected default, byProfile, byConfidence"
        )
    if "default" not in rules:
        raise ValueError(f"{EnvVar.IMPACT_RULES}.default: required field is missing")
    return ImpactRules(
        default=_impact(rules["default"], f"{EnvVar.IMPACT_RULES}.default"),
        by_profile=_impact_map(rules, "byProfile", None),
        by_confidence=_impact_map(rules, "byConfidence", CONFIDENCE_LEVELS),
    )


def _audit_incident_checks(routing: Mapping[str, Any]) -> frozenset[str]:
    unknown = sorted(set(routing) - {"incidentChecks"})
    if unknown:
        raise ValueError(f"{EnvVar.AUDIT_ROUTING}: unknown key(s) {', '.join(unknown)}; expected incidentChecks")
    checks = routing.get("incidentChecks", [])
    if not isinstance(checks, list):
        raise ValueError(f"{EnvVar.AUDIT_ROUTING}.incidentChecks: expected an array, got {type(checks).__name__}")
    for index, check in enumerate(checks):
        if not isinstance(check, str) or not AUDIT_CHECK_NAME_PATTERN.fullmatch(check):
            raise ValueError(
                f"{EnvVar.AUDIT_ROUTING}.incidentChecks[{index}]: expected an audit check name matching "
                f"{AUDIT_CHECK_NAME_PATTERN.pattern}, got {check!r}"
            )
    return frozenset(checks)

"""The contract for OpsCenter incidents and their escalation (Incident Manager off): the intake's OpsCenter
settings, the escalation function's configuration, the escalation stages both read, and what the
escalation function answers.

Beside ``functions/contract.py`` (whose ``EnvVar`` names every variable), with the same rules: standard
library only, so the Pulumi program renders these objects without the functions' run-time dependencies.
The stack renders ``OpsCenterEnvironment`` into the intake's environment next to ``IntakeEnvironment``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic

from functions.contract import (
    _BOOLEANS,
    TOPIC_ARN_PATTERN,
    EnvVar,
    Value,
    _matching,
    _optional,
    _required,
    _runtime_environment,
)

# SSM document names, IAM role ARNs, Lambda function ARNs, EventBridge Scheduler group names (botocore models).
DOCUMENT_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
ROLE_ARN_PATTERN: Final = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
FUNCTION_ARN_PATTERN: Final = re.compile(
    r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:function:[a-zA-Z0-9-_]+"
    r"(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
SCHEDULE_GROUP_PATTERN: Final = re.compile(r"[0-9a-zA-Z-_.]{1,64}")
OPS_ITEM_ID_PATTERN: Final = re.compile(r"oi-[0-9a-f]{12}")
"""SSM OpsItemId (``^(oi)-[0-9a-f]{12}$``)."""
OPS_ITEM_CATEGORIES: Final = ("Availability", "Cost", "Performance", "Recovery", "Security")
OPS_ITEM_SEVERITIES: Final = ("1", "2", "3", "4")
IMPACTS: Final = ("1", "2", "3", "4", "5")
"""Incident impact 1 (critical) ... 5; an OpsItem's Priority takes the same numbers."""
# SSM tag keys and values (``^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$``; Python's \w and \s stand in for the classes).
TAG_KEY_PATTERN: Final = re.compile(r"[\w\s.:/=+\-@]{1,128}")
TAG_VALUE_PATTERN: Final = re.compile(r"[\w\s.:/=+\-@]{0,256}")
STAGE_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9-]{1,32}")
MAX_ESCALATION_STAGES: Final = 5
MAX_ESCALATION_MINUTES: Final = 1440


ESCALATION_STAGE_KEY: Final = "stage"
"""The escalation schedule's input: ``{RequestField.OPS_ITEM_ID: <OpsItem id>, ESCALATION_STAGE_KEY: <stage name>}``."""


class EscalationOutcome(StrEnum):
    """What the escalation function did at a stage; the ``outcome`` of its result and log line."""

    NOTIFIED = "stage notified"
    """The OpsItem is still Open: the stage's topic was notified; later stages stay scheduled."""
    STOPPED = "escalation stopped"
    """Someone acknowledged (InProgress) or resolved the OpsItem: the later stages' schedules were deleted."""


# --- the escalation stages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationStage:
    """One escalation stage: notify ``topic_arn`` when the OpsItem is still Open ``minutes`` after it opened."""

    name: str
    minutes: int
    topic_arn: str


_STAGE_KEYS: Final = ("name", "minutes", "topicArn")


def escalation_stages_json(stages: Sequence[EscalationStage]) -> str:
    """ESCALATION_STAGES as the stack renders it: a JSON list of {"name", "minutes", "topicArn"} in order."""
    return json.dumps([dict(zip(_STAGE_KEYS, (stage.name, stage.minutes, stage.topic_arn), strict=True))
                       for stage in stages])


def parse_escalation_stages(text: str) -> tuple[EscalationStage, ...]:
    """ESCALATION_STAGES read back; ValueError naming the variable (and the stage) when malformed."""
    name = EnvVar.ESCALATION_STAGES
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(entries, list) or len(entries) > MAX_ESCALATION_STAGES:
        raise ValueError(f"{name}: expected a JSON array of at most {MAX_ESCALATION_STAGES} stages")
    stages: list[EscalationStage] = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict) or sorted(entry) != sorted(_STAGE_KEYS):
            raise ValueError(f"{where}: expected an object with exactly {', '.join(_STAGE_KEYS)}")
        stage_name, minutes, topic_arn = (entry[key] for key in _STAGE_KEYS)
        if not isinstance(stage_name, str) or not STAGE_NAME_PATTERN.fullmatch(stage_name):
            raise ValueError(f"{where}.name: expected {STAGE_NAME_PATTERN.pattern}, got {stage_name!r}")
        earliest = stages[-1].minutes + 1 if stages else 1
        whole = isinstance(minutes, int) and not isinstance(minutes, bool)
        if not whole or not earliest <= minutes <= MAX_ESCALATION_MINUTES:
            raise ValueError(f"{where}.minutes: expected an integer {earliest}-{MAX_ESCALATION_MINUTES} "
                             f"(stages in increasing order), got {minutes!r}")
        if not isinstance(topic_arn, str) or not TOPIC_ARN_PATTERN.fullmatch(topic_arn):
            raise ValueError(f"{where}.topicArn: expected an SNS topic ARN, got {topic_arn!r}")
        if any(stage.name == stage_name for stage in stages):
            raise ValueError(f"{where}.name: stage {stage_name!r} appears twice")
        stages.append(EscalationStage(stage_name, minutes, topic_arn))
    return tuple(stages)


def _severity_by_impact(env: Mapping[str, str]) -> dict[int, str]:
    name = EnvVar.OPS_ITEM_SEVERITY_BY_IMPACT
    try:
        mapping = json.loads(_required(env, name))
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(mapping, dict) or sorted(mapping) != list(IMPACTS):
        raise ValueError(f"{name}: expected a JSON object with the keys {', '.join(IMPACTS)}")
    bad = {impact: severity for impact, severity in mapping.items() if severity not in OPS_ITEM_SEVERITIES}
    if bad:
        raise ValueError(f"{name}: severities must be one of {', '.join(OPS_ITEM_SEVERITIES)}, got {bad!r}")
    return {int(impact): severity for impact, severity in mapping.items()}


# --- the intake's OpsCenter settings and the escalation function ---------------------------------------------


@dataclass(frozen=True)
class OpsCenterEnvironment(Generic[Value]):
    """How the intake opens OpsCenter incidents when Incident Manager is off: the OpsItem's category and
    severity, the runbook it starts, and the escalation schedules it creates."""

    category: str
    severity_by_impact: Mapping[int, str]
    """OpsItem Severity ("1".."4") per incident impact 1..5; the OpsItem's Priority is the impact itself."""
    runbook_name: Value
    automation_role_arn: Value
    """The role the runbook assumes (its AutomationAssumeRole parameter)."""
    schedule_group: Value
    escalation_function_arn: Value
    scheduler_role_arn: Value
    escalation_stages: Value
    """ESCALATION_STAGES, JSON text (``escalation_stages_json``)."""
    ops_item_tags: Mapping[str, str]
    """OPS_ITEM_TAGS: tags every OpsItem carries; the functions' OpsItem permissions are conditioned on them."""

    def to_environment(self) -> dict[str, Value | str]:
        return {
            EnvVar.OPS_ITEM_TAGS.value: json.dumps(dict(sorted(self.ops_item_tags.items()))),
            EnvVar.OPS_CENTER_ENABLED.value: _BOOLEANS[0],
            EnvVar.OPS_ITEM_CATEGORY.value: self.category,
            EnvVar.OPS_ITEM_SEVERITY_BY_IMPACT.value: json.dumps(
                {str(impact): severity for impact, severity in sorted(self.severity_by_impact.items())}
            ),
            EnvVar.RUNBOOK_NAME.value: self.runbook_name,
            EnvVar.AUTOMATION_ROLE_ARN.value: self.automation_role_arn,
            EnvVar.ESCALATION_SCHEDULE_GROUP.value: self.schedule_group,
            EnvVar.ESCALATION_FUNCTION_ARN.value: self.escalation_function_arn,
            EnvVar.SCHEDULER_ROLE_ARN.value: self.scheduler_role_arn,
            EnvVar.ESCALATION_STAGES.value: self.escalation_stages,
        }

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> OpsCenterEnvironment[str] | None:
        """None when OPS_CENTER_ENABLED is "false" or unset (a stack from before OpsCenter incidents);
        ValueError naming the variable otherwise."""
        enabled = env.get(EnvVar.OPS_CENTER_ENABLED) or _BOOLEANS[1]
        if enabled not in _BOOLEANS:
            raise ValueError(f"{EnvVar.OPS_CENTER_ENABLED}: expected one of {', '.join(_BOOLEANS)}, got {enabled!r}")
        if enabled == _BOOLEANS[1]:
            return None
        if env.get(EnvVar.INCIDENT_MANAGER_ENABLED) == _BOOLEANS[0]:
            raise ValueError(
                f"{EnvVar.OPS_CENTER_ENABLED}: must be false when {EnvVar.INCIDENT_MANAGER_ENABLED} is true"
            )
        category = _required(env, EnvVar.OPS_ITEM_CATEGORY)
        if category not in OPS_ITEM_CATEGORIES:
            raise ValueError(
                f"{EnvVar.OPS_ITEM_CATEGORY}: expected one of {', '.join(OPS_ITEM_CATEGORIES)}, got {category!r}"
            )
        stages = _required(env, EnvVar.ESCALATION_STAGES)
        parse_escalation_stages(stages)
        return OpsCenterEnvironment(
            category=category,
            severity_by_impact=_severity_by_impact(env),
            runbook_name=_matching(env, EnvVar.RUNBOOK_NAME, DOCUMENT_NAME_PATTERN, "an SSM document name"),
            automation_role_arn=_matching(env, EnvVar.AUTOMATION_ROLE_ARN, ROLE_ARN_PATTERN, "an IAM role ARN"),
            schedule_group=_matching(
                env, EnvVar.ESCALATION_SCHEDULE_GROUP, SCHEDULE_GROUP_PATTERN, "a schedule group name"
            ),
            escalation_function_arn=_matching(
                env, EnvVar.ESCALATION_FUNCTION_ARN, FUNCTION_ARN_PATTERN, "a Lambda function ARN"
            ),
            scheduler_role_arn=_matching(env, EnvVar.SCHEDULER_ROLE_ARN, ROLE_ARN_PATTERN, "an IAM role ARN"),
            escalation_stages=stages,
            ops_item_tags=_ops_item_tags(env),
        )


def _ops_item_tags(env: Mapping[str, str]) -> dict[str, str]:
    name = EnvVar.OPS_ITEM_TAGS
    try:
        tags = json.loads(_required(env, name))
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(tags, dict) or not tags:
        raise ValueError(f"{name}: expected a non-empty JSON object of tag keys to values")
    for key, value in tags.items():
        if not TAG_KEY_PATTERN.fullmatch(key) or key.lower().startswith("aws:"):
            raise ValueError(f"{name}: {key!r} is not a tag key SSM accepts")
        if not isinstance(value, str) or not TAG_VALUE_PATTERN.fullmatch(value):
            raise ValueError(f"{name}.{key}: expected a tag value matching {TAG_VALUE_PATTERN.pattern}, got {value!r}")
    return tags


@dataclass(frozen=True)
class EscalationEnvironment(Generic[Value]):
    """The escalation function's configuration."""

    schedule_group: Value
    escalation_stages: Value
    """ESCALATION_STAGES, JSON text (``escalation_stages_json``)."""
    service_name: str | None = None
    retry_mode: str | None = None

    def to_environment(self) -> dict[str, Value | str]:
        return {
            EnvVar.ESCALATION_SCHEDULE_GROUP.value: self.schedule_group,
            EnvVar.ESCALATION_STAGES.value: self.escalation_stages,
            **_runtime_environment(self.service_name, self.retry_mode, None),
        }

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> EscalationEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed."""
        stages = _required(env, EnvVar.ESCALATION_STAGES)
        parse_escalation_stages(stages)
        return EscalationEnvironment(
            schedule_group=_matching(
                env, EnvVar.ESCALATION_SCHEDULE_GROUP, SCHEDULE_GROUP_PATTERN, "a schedule group name"
            ),
            escalation_stages=stages,
            service_name=_optional(env, EnvVar.POWERTOOLS_SERVICE_NAME),
            retry_mode=_optional(env, EnvVar.AWS_RETRY_MODE),
        )



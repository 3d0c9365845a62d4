"""The intake's environment: every variable validated, errors naming the variable; impact rules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from functions.contract import EnvVar
from functions.intake_config import IntakeConfig
from functions.messages import ViolationEvent, parse_message
from tests.functions.intake_support import (
    ACTION,
    GROUP,
    LOG_GROUP,
    NOTICE_TABLE,
    PLAN_ARN,
    TOPIC_ARN,
    violation,
)

VALID: dict[str, str] = {
    EnvVar.QUARANTINE_GROUP_NAME: GROUP,
    EnvVar.INCIDENT_MANAGER_ENABLED: "true",
    EnvVar.RESPONSE_PLAN_ARN: PLAN_ARN,
    EnvVar.RESPONDERS_TOPIC_ARN: TOPIC_ARN,
    EnvVar.IMPACT_RULES: json.dumps({"default": 3, "byProfile": {"critical": 1}, "byConfidence": {"HIGH": 2}}),
    EnvVar.AUDIT_ROUTING: json.dumps({"incidentChecks": ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]}),
    EnvVar.IOT_LOG_GROUP: LOG_GROUP,
    EnvVar.STORM_THRESHOLD: "50",
    EnvVar.ADD_TO_QUARANTINE_ACTION_NAME: ACTION,
    EnvVar.NOTICE_LEDGER_TABLE: NOTICE_TABLE,
}


def test_a_valid_environment_is_read() -> None:
    config = IntakeConfig.from_env(VALID)

    assert config.quarantine_group_name == GROUP
    assert config.incident_manager_enabled is True
    assert config.response_plan_arn == PLAN_ARN
    assert config.audit_incident_checks == frozenset({"IOT_POLICY_OVERLY_PERMISSIVE_CHECK"})
    assert config.storm_threshold == 50
    assert config.impact_rules.by_profile == {"critical": 1}
    assert config.notice_ledger_table == NOTICE_TABLE


def test_incident_manager_off_needs_no_response_plan() -> None:
    env = {**VALID, EnvVar.INCIDENT_MANAGER_ENABLED: "false"}
    del env[EnvVar.RESPONSE_PLAN_ARN]

    config = IntakeConfig.from_env(env)

    assert (config.incident_manager_enabled, config.response_plan_arn) == (False, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({EnvVar.QUARANTINE_GROUP_NAME: None}, "QUARANTINE_GROUP_NAME: environment variable is not set"),
        ({EnvVar.QUARANTINE_GROUP_NAME: "bad group"}, "QUARANTINE_GROUP_NAME: expected a thing group name"),
        ({EnvVar.INCIDENT_MANAGER_ENABLED: "yes"}, "INCIDENT_MANAGER_ENABLED: expected one of true, false, got 'yes'"),
        ({EnvVar.RESPONSE_PLAN_ARN: None}, "RESPONSE_PLAN_ARN: environment variable is not set"),
        ({EnvVar.RESPONSE_PLAN_ARN: "arn:aws:sns:us-east-1:123456789012:x"},
         "RESPONSE_PLAN_ARN: expected an Incident Manager response plan ARN"),
        ({EnvVar.INCIDENT_MANAGER_ENABLED: "false"},
         "RESPONSE_PLAN_ARN: must be unset when INCIDENT_MANAGER_ENABLED is false"),
        ({EnvVar.RESPONDERS_TOPIC_ARN: "fleetguard-responders"}, "RESPONDERS_TOPIC_ARN: expected an SNS topic ARN"),
        ({EnvVar.NOTICE_LEDGER_TABLE: None}, "NOTICE_LEDGER_TABLE: environment variable is not set"),
        ({EnvVar.NOTICE_LEDGER_TABLE: "notices/table"}, "NOTICE_LEDGER_TABLE: expected a DynamoDB table name"),
        ({EnvVar.IMPACT_RULES: "{"}, "IMPACT_RULES: not valid JSON"),
        ({EnvVar.IMPACT_RULES: "[]"}, "IMPACT_RULES: expected a JSON object, got list"),
        ({EnvVar.IMPACT_RULES: '{"byProfile": {}}'}, "IMPACT_RULES.default: required field is missing"),
        ({EnvVar.IMPACT_RULES: '{"default": 0}'}, "IMPACT_RULES.default: expected an impact integer 1-5, got 0"),
        ({EnvVar.IMPACT_RULES: '{"default": true}'}, "IMPACT_RULES.default: expected an impact integer 1-5, got True"),
        ({EnvVar.IMPACT_RULES: '{"default": 3, "byProfile": {"p": 6}}'},
         "IMPACT_RULES.byProfile.p: expected an impact integer 1-5, got 6"),
        ({EnvVar.IMPACT_RULES: '{"default": 3, "byConfidence": {"EXTREME": 1}}'},
         "IMPACT_RULES.byConfidence: unknown key(s) EXTREME; expected HIGH, LOW, MEDIUM"),
        ({EnvVar.IMPACT_RULES: '{"default": 3, "byThing": {}}'}, "IMPACT_RULES: unknown key(s) byThing"),
        ({EnvVar.AUDIT_ROUTING: '{"incidentChecks": "LOGGING_DISABLED_CHECK"}'},
         "AUDIT_ROUTING.incidentChecks: expected an array, got str"),
        ({EnvVar.AUDIT_ROUTING: '{"incidentChecks": ["logging_disabled"]}'},
         "AUDIT_ROUTING.incidentChecks[0]: expected an audit check name"),
        ({EnvVar.AUDIT_ROUTING: '{"notify": []}'}, "AUDIT_ROUTING: unknown key(s) notify; expected incidentChecks"),
        ({EnvVar.IOT_LOG_GROUP: "AWS Iot Logs"}, "IOT_LOG_GROUP: expected a CloudWatch Logs group name"),
        ({EnvVar.STORM_THRESHOLD: "1"}, "STORM_THRESHOLD: expected an integer >= 2, got '1'"),
        ({EnvVar.STORM_THRESHOLD: "ten"}, "STORM_THRESHOLD: expected an integer >= 2, got 'ten'"),
        ({EnvVar.ADD_TO_QUARANTINE_ACTION_NAME: "add to quarantine"},
         "ADD_TO_QUARANTINE_ACTION_NAME: expected a mitigation action name"),
    ],
)
def test_a_bad_variable_is_named_with_what_was_expected(changes: dict[str, Any], message: str) -> None:
    env = {**VALID, **changes}
    env = {name: value for name, value in env.items() if value is not None}

    with pytest.raises(ValueError, match=re.escape(message)):
        IntakeConfig.from_env(env)


def parsed(message: dict[str, Any]) -> ViolationEvent:
    event = parse_message(json.dumps(message))
    assert isinstance(event, ViolationEvent)
    return event


def ml_violation(profile: str, event_confidence: str | None, configured: str = "HIGH") -> ViolationEvent:
    message = violation("dev-1", violation_id="v1", profile=profile)
    message["behavior"]["criteria"] = {"mlDetectionConfig": {"confidenceLevel": configured}}
    if event_confidence is not None:
        message["violationEventAdditionalInfo"] = {"confidenceLevel": event_confidence}
    return parsed(message)


@pytest.mark.parametrize(
    ("event", "impact"),
    [
        pytest.param(parsed(violation("d", violation_id="v", profile="critical")), 1, id="profile-rule"),
        pytest.param(ml_violation("critical", "HIGH"), 1, id="profile-wins-over-confidence"),
        pytest.param(ml_violation("ml-profile", "HIGH"), 2, id="event-confidence"),
        pytest.param(ml_violation("ml-profile", None, configured="HIGH"), 2, id="configured-confidence"),
        pytest.param(ml_violation("ml-profile", "LOW"), 3, id="unlisted-confidence-default"),
        pytest.param(parsed(violation("d", violation_id="v")), 3, id="rule-default"),
    ],
)
def test_impact_by_profile_then_ml_confidence_then_default(event: ViolationEvent, impact: int) -> None:
    assert IntakeConfig.from_env(VALID).impact_rules.for_violation(event) == impact

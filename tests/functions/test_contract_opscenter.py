"""The OpsCenter contract: the intake's OpsCenter settings and the escalation function's configuration read
back what they render, and a bad value is refused with the variable (and the stage) named."""

from __future__ import annotations

import json

import botocore.session  # type: ignore[import-untyped]
import pytest

from functions.contract import EnvVar
from functions.contract_opscenter import (
    OPS_ITEM_ID_PATTERN,
    EscalationEnvironment,
    EscalationStage,
    OpsCenterEnvironment,
    escalation_stages_json,
    parse_escalation_stages,
)

ACCOUNT = "123456789012"
STAGES = (
    EscalationStage("oncall", 5, f"arn:aws:sns:us-east-1:{ACCOUNT}:fleetguard-escalation-oncall"),
    EscalationStage("lead", 15, f"arn:aws:sns:us-east-1:{ACCOUNT}:team-leads"),
)


def ops_center_environment() -> OpsCenterEnvironment[str]:
    return OpsCenterEnvironment(
        category="Security",
        severity_by_impact={1: "1", 2: "2", 3: "3", 4: "4", 5: "4"},
        runbook_name="fleetguard-device-runbook",
        automation_role_arn=f"arn:aws:iam::{ACCOUNT}:role/fleetguard-runbook",
        schedule_group="fleetguard-escalation",
        escalation_function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fleetguard-escalation",
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/fleetguard-scheduler",
        escalation_stages=escalation_stages_json(STAGES),
        ops_item_tags={"fleetguard:stack": "prod"},
    )


def test_the_ops_center_settings_read_back_what_they_render() -> None:
    config = ops_center_environment()
    rendered = config.to_environment()

    assert rendered[EnvVar.OPS_CENTER_ENABLED] == "true"
    assert OpsCenterEnvironment.from_environment(rendered) == config
    assert parse_escalation_stages(rendered[EnvVar.ESCALATION_STAGES]) == STAGES


def test_without_the_switch_there_are_no_ops_center_settings() -> None:
    assert OpsCenterEnvironment.from_environment({}) is None
    assert OpsCenterEnvironment.from_environment({EnvVar.OPS_CENTER_ENABLED.value: "false"}) is None


def test_ops_center_and_incident_manager_exclude_each_other() -> None:
    env = {**ops_center_environment().to_environment(), EnvVar.INCIDENT_MANAGER_ENABLED.value: "true"}

    with pytest.raises(ValueError, match=f"^{EnvVar.OPS_CENTER_ENABLED}: must be false"):
        OpsCenterEnvironment.from_environment(env)


def test_the_escalation_environment_reads_back_what_it_renders() -> None:
    config = EscalationEnvironment(
        schedule_group="fleetguard-escalation", escalation_stages=escalation_stages_json(STAGES),
        service_name="fleetguard-escalation", retry_mode="standard",
    )
    rendered = config.to_environment()

    assert EscalationEnvironment.from_environment(rendered) == config


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (EnvVar.OPS_ITEM_CATEGORY, "Incident", "expected one of Availability, Cost, Performance, Recovery, Security"),
        (EnvVar.OPS_ITEM_SEVERITY_BY_IMPACT, '{"1": "1"}', "expected a JSON object with the keys 1, 2, 3, 4, 5"),
        (EnvVar.OPS_ITEM_SEVERITY_BY_IMPACT, json.dumps({str(i): "5" for i in range(1, 6)}), "severities must be"),
        (EnvVar.RUNBOOK_NAME, "a runbook", "expected an SSM document name"),
        (EnvVar.SCHEDULER_ROLE_ARN, None, "environment variable is not set"),
        (EnvVar.ESCALATION_FUNCTION_ARN, "arn:aws:sns:us-east-1:123456789012:x", "expected a Lambda function ARN"),
        (EnvVar.ESCALATION_SCHEDULE_GROUP, "group name", "expected a schedule group name"),
        (EnvVar.OPS_CENTER_ENABLED, "yes", "expected one of true, false"),
        (EnvVar.OPS_ITEM_TAGS, "{}", "expected a non-empty JSON object"),
        (EnvVar.OPS_ITEM_TAGS, '{"aws:stack": "prod"}', "'aws:stack' is not a tag key SSM accepts"),
    ],
)
def test_a_bad_ops_center_variable_is_named(name: EnvVar, value: str | None, message: str) -> None:
    rendered = ops_center_environment().to_environment()
    env = {key: text for key, text in {**rendered, name.value: value}.items() if text is not None}

    with pytest.raises(ValueError, match=f"^{name}: {message}"):
        OpsCenterEnvironment.from_environment(env)


def _stages(*stages: object) -> str:
    return json.dumps(list(stages))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"ESCALATION_STAGES: not valid JSON"),
        (_stages(*[{"name": f"s{i}", "minutes": i + 1, "topicArn": STAGES[0].topic_arn} for i in range(6)]),
         r"ESCALATION_STAGES: expected a JSON array of at most 5 stages"),
        (_stages({"name": "oncall", "minutes": 5}), r"ESCALATION_STAGES\[0\]: expected an object with exactly"),
        (_stages({"name": "on call", "minutes": 5, "topicArn": STAGES[0].topic_arn}), r"\[0\]\.name: expected"),
        (_stages({"name": "a", "minutes": 5, "topicArn": STAGES[0].topic_arn},
                 {"name": "b", "minutes": 5, "topicArn": STAGES[0].topic_arn}),
         r"ESCALATION_STAGES\[1\]\.minutes: expected an integer 6-1440"),
        (_stages({"name": "a", "minutes": 1441, "topicArn": STAGES[0].topic_arn}), r"\[0\]\.minutes"),
        (_stages({"name": "a", "minutes": True, "topicArn": STAGES[0].topic_arn}), r"\[0\]\.minutes"),
        (_stages({"name": "a", "minutes": 5, "topicArn": "topic"}), r"\[0\]\.topicArn: expected an SNS topic ARN"),
        (_stages({"name": "a", "minutes": 5, "topicArn": STAGES[0].topic_arn},
                 {"name": "a", "minutes": 6, "topicArn": STAGES[0].topic_arn}), r"\[1\]\.name: stage 'a' appears"),
    ],
)
def test_bad_escalation_stages_are_refused_with_the_stage_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_escalation_stages(text)


def test_the_ops_item_id_pattern_is_the_ssm_models() -> None:
    model = botocore.session.get_session().get_service_model("ssm")
    assert model.shape_for("OpsItemId").metadata["pattern"] == "^(oi)-[0-9a-f]{12}$"
    assert OPS_ITEM_ID_PATTERN.pattern == "oi-[0-9a-f]{12}"

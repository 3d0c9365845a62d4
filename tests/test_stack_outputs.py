"""The stack outputs are a contract other teams build on: pin their names, shapes and presence."""

from __future__ import annotations

import re
from typing import Any

import pytest

import stack_outputs as out
from harness.mockstack import StackRun, run_stack
from tests.conftest import prod_quarantine_without_tunnel

PINNED_NAMES = {
    "alertTopicArn", "alertKeyArn", "respondersTopicArn", "alertPublishRoleArn", "auditRoleArn",
    "auditScheduleNames", "detectEnabled", "ruleSecurityProfileName", "ruleSecurityProfileArn",
    "mlSecurityProfileName", "mlSecurityProfileArn", "securityHubFindingRuleArn", "fleetDynamicGroupNames",
    "fleetMetricNames", "recoveryJobTemplateArn", "quarantineGroupName", "quarantineGroupArn",
    "quarantinePolicyName", "addToQuarantineActionName", "addToQuarantineActionArn",
    "deactivateCertificateActionName", "deactivateCertificateActionArn", "enableLoggingActionName",
    "enableLoggingActionArn", "containFunctionName", "containFunctionArn", "releaseFunctionName",
    "releaseFunctionArn", "incidentManagerEnabled", "intakeQueueUrl", "intakeQueueArn",
    "intakeDeadLetterQueueArn", "intakeFunctionArn", "runbookName", "responsePlanArn", "escalationPlanArn",
    "contactArns", "queryDefinitionNames", "opsCenterEnabled", "escalationScheduleGroupName",
    "escalationStageTopicArns", "escalationFunctionArn", "detectEngineProfileName", "detectEngineStreamArn",
    "detectEngineReportTopic", "detectEngineStateTableName", "detectEngineDevicePolicyName",
    "detectEngineDeadLetterQueueArns", "onDemandAuditDocumentName", "onDemandAuditRoleArn", "continuousPatchJobId",
    "continuousPatchJobArn", "tunnelFunctionArn", "tunnelSecretPrefix", "tunnelApprovalTopicArn",
    "auditMitigationActionArns", "auditMitigationDocumentName",
}
"""Written out by hand on purpose: renaming a constant in stack_outputs.py must fail here."""



ALL_OFF = {
    "audit": {"manageAccountConfiguration": False},
    "quarantine": prod_quarantine_without_tunnel(),
    "detect": {"enabled": False},
    "securityHub": {"routeFindings": False},
    "fleet": {"recovery": {"enabled": False}},
    "incidentResponse": {"incidentManager": {"enabled": False}, "opsCenter": {"enabled": False}},
}
"""Prod with every optional part switched off: only the ``always`` outputs remain."""
ENGINE_BEHAVIORS: list[dict[str, Any]] = [
    {"name": "AuthorizedListeningTcpPorts", "metric": "aws:listening-tcp-ports", "operator": "in-port-set",
     "value": [443, 8883]},
    {"name": "AuthorizationFailures", "metric": "aws:num-authorization-failures", "operator": "less-than",
     "value": 5, "durationSeconds": 300, "datapointsToClear": 2},
    {"name": "MaxMessageSize", "metric": "aws:message-byte-size", "operator": "less-than-equals", "value": 32768},
]
ENGINE_ONLY: dict[str, Any] = {"detect": {
    "engine": "fleetguard", "ruleBehaviors": ENGINE_BEHAVIORS, "messageTopicFilters": ["telemetry/+/data"],
}}
"""Prod in a new account: Device Defender Detect unavailable, the fleetguard engine evaluates the behaviors."""
SIDE_BY_SIDE: dict[str, Any] = {"detect": {
    "engine": ["deviceDefender", "fleetguard"], "ruleBehaviors": ENGINE_BEHAVIORS,
    "messageTopicFilters": ["telemetry/+/data", "commands/#"],
}}
"""Prod migrating: both engines evaluate the same behaviors, under different profile names."""


def has_shape(value: Any, shape: out.Shape) -> bool:
    match shape:
        case "string":
            return isinstance(value, str) and value != ""
        case "boolean":
            return isinstance(value, bool)
        case "list of strings":
            return isinstance(value, list) and all(isinstance(item, str) and item for item in value)
        case "map of strings":
            return isinstance(value, dict) and all(
                isinstance(key, str) and isinstance(item, str) and item for key, item in value.items()
            )


def test_contract_names_are_pinned() -> None:
    assert set(out.CONTRACT) == PINNED_NAMES


def test_names_are_camel_case() -> None:
    for name in out.CONTRACT:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", name), name


@pytest.mark.parametrize("stack", ["dev", "prod", "prod_ops_center"])
def test_every_exported_output_is_in_the_contract_with_its_shape(stack: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(f"{stack}_stack")
    assert set(run.outputs) <= set(out.CONTRACT), set(run.outputs) - set(out.CONTRACT)
    for name, value in run.outputs.items():
        assert has_shape(value, out.CONTRACT[name].shape), f"{name}: {value!r} is not a {out.CONTRACT[name].shape}"


OPS_CENTER_OUTPUTS = {out.ESCALATION_SCHEDULE_GROUP_NAME, out.ESCALATION_STAGE_TOPIC_ARNS, out.ESCALATION_FUNCTION_ARN}
INCIDENT_MANAGER_OUTPUTS = {out.RESPONSE_PLAN_ARN, out.ESCALATION_PLAN_ARN, out.CONTACT_ARNS}
ENGINE_OUTPUTS = {name for name, spec in out.CONTRACT.items() if spec.present == out.WITH_ENGINE}
TUNNEL_OUTPUTS = {name for name, spec in out.CONTRACT.items() if spec.present == out.WITH_TUNNEL}


def test_prod_exports_every_output_of_its_response_path(prod_stack: StackRun, prod_ops_center_stack: StackRun) -> None:
    # Prod switches every optional part on but the fleetguard Detect engine (it has Device Defender), so with
    # either response path it shows the whole contract but the other path's outputs and the engine's.
    assert ENGINE_OUTPUTS
    assert set(prod_stack.outputs) == set(out.CONTRACT) - OPS_CENTER_OUTPUTS - ENGINE_OUTPUTS
    assert set(prod_ops_center_stack.outputs) == set(out.CONTRACT) - INCIDENT_MANAGER_OUTPUTS - ENGINE_OUTPUTS


def test_a_responder_finds_the_runbook_schedule_group_and_stage_topics(prod_ops_center_stack: StackRun) -> None:
    outputs = prod_ops_center_stack.outputs
    assert outputs[out.RUNBOOK_NAME] == "fleetguard-prod-iot-incident"
    assert outputs[out.OPS_CENTER_ENABLED] is True
    assert outputs[out.ESCALATION_SCHEDULE_GROUP_NAME] == "fleetguard-prod-escalation"
    created = prod_ops_center_stack.by_name("fleetguard-prod-escalation-oncall")
    assert outputs[out.ESCALATION_STAGE_TOPIC_ARNS] == {
        "oncall": created.outputs["arn"], "lead": "arn:aws:sns:us-east-1:123456789012:security-leads",
    }


def test_side_by_side_exports_the_contract_of_its_paths_with_their_shapes() -> None:
    run = run_stack("prod", SIDE_BY_SIDE)
    assert set(run.outputs) == set(out.CONTRACT) - OPS_CENTER_OUTPUTS
    for name, value in run.outputs.items():
        assert has_shape(value, out.CONTRACT[name].shape), f"{name}: {value!r}"
    assert run.outputs[out.ENGINE_PROFILE_NAME] == "fleetguard-prod-engine"
    assert run.outputs[out.RULE_PROFILE_NAME] == "fleetguard-prod-rules"


def test_the_engine_alone_exports_no_device_defender_profile() -> None:
    run = run_stack("prod", ENGINE_ONLY)
    device_defender = {name for name, spec in out.CONTRACT.items() if spec.present in (out.WITH_DETECT, out.WITH_ML)}
    assert not device_defender & set(run.outputs)
    assert run.outputs[out.DETECT_ENABLED] is True
    topic = "$aws/rules/fleetguard_prod_device_metrics/things/<thingName>/metrics"
    assert run.outputs[out.ENGINE_REPORT_TOPIC] == topic


def test_always_outputs_survive_every_switch_off() -> None:
    run = run_stack("prod", ALL_OFF)
    always = {name for name, spec in out.CONTRACT.items() if spec.present == out.ALWAYS}
    assert set(run.outputs) == always
    for name in always:
        assert has_shape(run.outputs[name], out.CONTRACT[name].shape), name


def test_dev_omits_exactly_what_its_config_switches_off(dev_stack: StackRun) -> None:
    # Dev: Device Defender Detect without ML, no Incident Manager, findings routed, recovery template on
    # without continuous patching (lab devices are flashed by hand).
    missing = set(out.CONTRACT) - set(dev_stack.outputs)
    assert missing == {
        out.ML_PROFILE_NAME, out.ML_PROFILE_ARN, *INCIDENT_MANAGER_OUTPUTS, *ENGINE_OUTPUTS, *TUNNEL_OUTPUTS,
        out.CONTINUOUS_PATCH_JOB_ID, out.CONTINUOUS_PATCH_JOB_ARN,
    }
    assert dev_stack.outputs[out.INCIDENT_MANAGER_ENABLED] is False
    assert dev_stack.outputs[out.OPS_CENTER_ENABLED] is True
    assert dev_stack.outputs[out.DETECT_ENABLED] is True

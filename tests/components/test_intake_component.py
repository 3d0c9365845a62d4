"""The intake path: alert topic -> encrypted queue with a dead-letter queue -> intake function in batches."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import stack_outputs as out
from functions.contract import EnvVar
from functions.intake_config import IntakeConfig
from harness import mockstack
from harness.mockstack import ACCOUNT_ID, RegisteredResource, StackRun, load_stack_config, run_stack
from settings import load_settings, read_stack_config
from settings.facts import CRITICAL_AUDIT_CHECKS
from settings.response import IncidentResponseSettings
from tests.conftest import prod_quarantine_without_tunnel
from tests.support.aws_actions import unknown_actions, wildcard_actions

INTAKE_CONTRACT_ENV = {
    EnvVar.QUARANTINE_GROUP_NAME, EnvVar.INCIDENT_MANAGER_ENABLED, EnvVar.RESPONDERS_TOPIC_ARN, EnvVar.IMPACT_RULES,
    EnvVar.AUDIT_ROUTING, EnvVar.IOT_LOG_GROUP, EnvVar.STORM_THRESHOLD, EnvVar.STORM_WINDOW_SECONDS,
    EnvVar.ADD_TO_QUARANTINE_ACTION_NAME, EnvVar.POWERTOOLS_SERVICE_NAME, EnvVar.POWERTOOLS_LOG_LEVEL,
    EnvVar.AWS_RETRY_MODE, EnvVar.IOT_DATA_ENDPOINT, EnvVar.NOTICE_LEDGER_TABLE,
}
PER_DEVICE_CONTAINMENT = {
    "iot:AddThingToThingGroup", "iot:DescribeThing", "iot:ListThingGroupsForThing", "iot:UpdateThingShadow",
}
OPS_CENTER = {
    "ssm:CreateOpsItem", "ssm:AddTagsToResource", "ssm:GetOpsItem", "ssm:UpdateOpsItem", "ssm:StartAutomationExecution",
    "iam:PassRole", "scheduler:CreateSchedule",
}
AUDIT_MITIGATION = {"iot:StartAuditMitigationActionsTask", "iot:DescribeAuditMitigationActionsTask"}
"""Both shipped stacks mitigate some audit check automatically (tests/components/test_audit_mitigation.py)."""
INCIDENTS = {"ssm-incidents:StartIncident", "ssm-incidents:UpdateRelatedItems", "ssm-incidents:CreateTimelineEvent"}
ALWAYS = {
    "logs:CreateLogStream", "logs:PutLogEvents", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
    "kms:Decrypt", "kms:GenerateDataKey", "sns:Publish", "iot:StartDetectMitigationActionsTask",
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
}


def settings_of(stack: StackRun) -> IncidentResponseSettings:
    return load_settings(read_stack_config(stack.config)).incident_response


def named(stack: StackRun, suffix: str) -> RegisteredResource:
    return stack.by_name(f"fleetguard-{stack.stack}-intake-{suffix}")


def document(resource: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def environment(stack: StackRun) -> dict[str, str]:
    variables: dict[str, str] = named(stack, "handler-function").inputs["environment"]["variables"]
    return variables


def grants(stack: StackRun) -> dict[str, list[str]]:
    """Action -> resources of the intake role's policy."""
    granted: dict[str, list[str]] = {}
    for entry in document(named(stack, "handler-policy"))["Statement"]:
        assert entry["Effect"] == "Allow"
        for action in entry["Action"]:
            granted.setdefault(action, []).extend(entry["Resource"])
    return granted


@pytest.fixture(scope="module")
def prod_without_incident_manager() -> StackRun:
    """Neither Incident Manager nor OpsCenter: the intake contains and notifies, nothing more."""
    section = json.loads(load_stack_config("prod")["fleetguard:incidentResponse"])
    section["incidentManager"]["enabled"] = False
    section["opsCenter"] = {"enabled": False}
    return run_stack("prod", {"incidentResponse": section, "quarantine": prod_quarantine_without_tunnel()})


def test_both_queues_are_encrypted_with_the_alert_key(any_stack: StackRun) -> None:
    key = any_stack.one("aws:kms/key:Key")
    for suffix in ("queue", "dlq"):
        assert named(any_stack, suffix).inputs["kmsMasterKeyId"] == key.outputs["arn"]


def test_queue_redrives_to_the_dead_letter_queue_after_max_receives(any_stack: StackRun) -> None:
    settings = settings_of(any_stack)
    queue, dlq = named(any_stack, "queue"), named(any_stack, "dlq")
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dlq.outputs["arn"], "maxReceiveCount": settings.intake.max_receive_count,
    }
    assert queue.inputs["visibilityTimeoutSeconds"] == settings.intake.visibility_timeout_seconds
    assert queue.inputs["messageRetentionSeconds"] == settings.intake.retention_seconds
    assert dlq.inputs["messageRetentionSeconds"] == 1_209_600
    allow = named(any_stack, "dlq-redrive-allow")
    assert allow.inputs["queueUrl"] == dlq.outputs["url"]
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue", "sourceQueueArns": [queue.outputs["arn"]],
    }


def test_only_the_alert_topic_may_send_to_the_queues(any_stack: StackRun) -> None:
    topic = any_stack.by_name(f"fleetguard-{any_stack.stack}-alerts-topic")
    for suffix in ("queue", "dlq"):
        queue = named(any_stack, suffix)
        policy_resource = named(any_stack, f"{suffix}-policy")
        assert policy_resource.inputs["queueUrl"] == queue.outputs["url"]
        (grant,) = document(policy_resource)["Statement"]
        assert grant["Principal"] == {"Service": "sns.amazonaws.com"}
        assert grant["Action"] == ["sqs:SendMessage"]
        assert grant["Resource"] == [queue.outputs["arn"]]
        assert grant["Condition"] == {"ArnEquals": {"aws:SourceArn": topic.outputs["arn"]}}


def test_alert_key_lets_sns_deliver_to_the_encrypted_queue(any_stack: StackRun) -> None:
    statements = json.loads(any_stack.one("aws:kms/key:Key").inputs["policy"])["Statement"]
    sns = [s for s in statements if "sns.amazonaws.com" in s["Principal"].get("Service", [])]
    assert sns
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(sns[0]["Action"])


def test_subscription_keeps_the_sns_envelope_and_waits_for_the_queue_policies(any_stack: StackRun) -> None:
    subscription = named(any_stack, "subscription")
    topic = any_stack.by_name(f"fleetguard-{any_stack.stack}-alerts-topic")
    assert subscription.inputs["topic"] == topic.outputs["arn"]
    assert subscription.inputs["protocol"] == "sqs"
    assert subscription.inputs["endpoint"] == named(any_stack, "queue").outputs["arn"]
    assert subscription.inputs["rawMessageDelivery"] is False
    # Deliveries SNS cannot make land in the same dead-letter queue.
    assert json.loads(subscription.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": named(any_stack, "dlq").outputs["arn"],
    }
    waits_for = {any_stack.by_urn(urn).name for urn in subscription.dependencies}
    prefix = f"fleetguard-{any_stack.stack}-intake"
    assert {f"{prefix}-queue-policy", f"{prefix}-dlq-policy"} <= waits_for


def test_event_source_batches_a_storm_and_reports_partial_failures(any_stack: StackRun) -> None:
    settings = settings_of(any_stack)
    mapping = named(any_stack, "event-source")
    inputs = mapping.inputs
    assert inputs["eventSourceArn"] == named(any_stack, "queue").outputs["arn"]
    assert inputs["functionName"] == named(any_stack, "handler-function").outputs["arn"]
    assert inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert inputs["batchSize"] == settings.intake.batch_size
    assert 1 <= inputs["batchSize"] <= 1000
    assert inputs["maximumBatchingWindowInSeconds"] == settings.storm_window_seconds
    assert inputs["scalingConfig"] == {"maximumConcurrency": settings.intake.max_concurrency}
    # Lambda refuses a mapping whose queue hides messages for less than the function may run.
    function = named(any_stack, "handler-function")
    assert named(any_stack, "queue").inputs["visibilityTimeoutSeconds"] >= function.inputs["timeout"]
    assert named(any_stack, "handler-policy").urn in mapping.dependencies


def test_intake_function_is_deployed_with_the_contract_environment(any_stack: StackRun) -> None:
    settings = settings_of(any_stack)
    function = named(any_stack, "handler-function")
    assert function.inputs["handler"] == "functions.intake.handler"
    assert function.inputs["timeout"] == settings.intake.timeout_seconds
    assert function.inputs["memorySize"] == settings.intake.memory_mb
    quarantine = any_stack.by_name(f"fleetguard-{any_stack.stack}-quarantine-contain-function")
    assert function.inputs["layers"] == quarantine.inputs["layers"]
    assert named(any_stack, "handler-logs").inputs["retentionInDays"] == settings.log_retention_days
    env = environment(any_stack)
    assert set(env) >= INTAKE_CONTRACT_ENV
    assert all(isinstance(value, str) for value in env.values())
    group = any_stack.by_name(f"fleetguard-{any_stack.stack}-quarantine-group")
    assert env[EnvVar.QUARANTINE_GROUP_NAME] == group.inputs["name"]
    responders = any_stack.by_name(f"fleetguard-{any_stack.stack}-alerts-responders")
    assert env[EnvVar.RESPONDERS_TOPIC_ARN] == responders.outputs["arn"]
    action = any_stack.by_name(f"fleetguard-{any_stack.stack}-quarantine-add-things")
    assert env[EnvVar.ADD_TO_QUARANTINE_ACTION_NAME] == action.inputs["actionName"]
    assert env[EnvVar.IOT_LOG_GROUP] == "AWSIotLogsV2"
    assert env[EnvVar.STORM_THRESHOLD] == str(settings.storm_threshold)
    assert env[EnvVar.STORM_WINDOW_SECONDS] == str(settings.storm_window_seconds)
    assert env[EnvVar.POWERTOOLS_LOG_LEVEL] == settings.intake.log_level
    assert env[EnvVar.AWS_RETRY_MODE] == settings.intake.retry_mode
    assert json.loads(env[EnvVar.IMPACT_RULES]) == json.loads(settings.impact_rules.to_json())


def test_prod_routes_critical_audit_checks_and_rates_impact_by_profile(prod_stack: StackRun) -> None:
    env = environment(prod_stack)
    routed = json.loads(env[EnvVar.AUDIT_ROUTING])["incidentChecks"]
    assert set(CRITICAL_AUDIT_CHECKS) <= set(routed)
    assert "CONFLICTING_CLIENT_IDS_CHECK" in routed
    assert json.loads(env[EnvVar.IMPACT_RULES]) == {
        "default": 3, "byProfile": {"fleetguard-prod-rules": 2}, "byConfidence": {"HIGH": 1, "MEDIUM": 2, "LOW": 3},
    }


@pytest.fixture(scope="module")
def stacks_with_real_incident_manager_arns() -> Iterator[dict[str, StackRun]]:
    """The shared mock puts a region in response plan ARNs; Incident Manager's ARNs have none
    (``arn:aws:ssm-incidents::<account>:response-plan/<name>``), and the handler checks for that shape."""
    original = mockstack._computed_outputs

    def regionless(type_token: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        outputs = original(type_token, name, inputs)
        if type_token == "aws:ssmincidents/responsePlan:ResponsePlan":
            outputs["arn"] = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:response-plan/{inputs['name']}"
        return outputs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mockstack, "_computed_outputs", regionless)
        yield {name: run_stack(name) for name in ("dev", "prod")}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_the_handler_accepts_the_environment_the_stack_sets(
    stack_name: str, stacks_with_real_incident_manager_arns: dict[str, StackRun]
) -> None:
    stack = stacks_with_real_incident_manager_arns[stack_name]
    config = IntakeConfig.from_env(environment(stack))
    settings = settings_of(stack)
    assert config.incident_manager_enabled is settings.incident_manager.enabled
    assert config.response_plan_arn == (
        stack.one("aws:ssmincidents/responsePlan:ResponsePlan").outputs["arn"] if stack_name == "prod" else None
    )
    assert config.storm_threshold == settings.storm_threshold
    assert config.audit_incident_checks == frozenset(settings.audit_incident_checks)
    assert config.impact_rules.default == settings.impact_rules.default
    assert dict(config.impact_rules.by_confidence) == settings.impact_rules.by_confidence


def test_with_incident_manager_the_intake_opens_incidents_and_never_contains_alone(prod_stack: StackRun) -> None:
    env = environment(prod_stack)
    plan = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    assert env[EnvVar.INCIDENT_MANAGER_ENABLED] == "true"
    assert env[EnvVar.RESPONSE_PLAN_ARN] == plan.outputs["arn"]
    granted = grants(prod_stack)
    assert set(granted) == ALWAYS | INCIDENTS | AUDIT_MITIGATION
    assert granted["ssm-incidents:StartIncident"] == [plan.outputs["arn"]]
    records = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:incident-record/fleetguard-prod-iot-device-compromise/*"
    # IAM authorises calls on an incident against its record and the plan that opened it.
    assert granted["ssm-incidents:UpdateRelatedItems"] == [records, plan.outputs["arn"]]
    assert granted["ssm-incidents:CreateTimelineEvent"] == [records, plan.outputs["arn"]]


def test_with_opscenter_the_intake_opens_opsitems_and_the_runbook_contains(dev_stack: StackRun) -> None:
    env = environment(dev_stack)
    assert env[EnvVar.INCIDENT_MANAGER_ENABLED] == "false"
    assert env[EnvVar.OPS_CENTER_ENABLED] == "true"
    assert set(grants(dev_stack)) == ALWAYS | OPS_CENTER | AUDIT_MITIGATION


def test_without_incident_manager_or_opscenter_the_intake_contains_and_notifies(
    prod_without_incident_manager: StackRun,
) -> None:
    stack = prod_without_incident_manager
    env = environment(stack)
    assert env[EnvVar.INCIDENT_MANAGER_ENABLED] == "false"
    assert EnvVar.RESPONSE_PLAN_ARN not in env
    assert EnvVar.OPS_CENTER_ENABLED not in env
    granted = grants(stack)
    assert set(granted) == ALWAYS | PER_DEVICE_CONTAINMENT | AUDIT_MITIGATION
    group = stack.by_name(f"fleetguard-{stack.stack}-quarantine-group")
    things = f"arn:aws:iot:us-east-1:{ACCOUNT_ID}:thing/*"
    assert granted["iot:AddThingToThingGroup"] == [group.outputs["arn"], things]
    assert granted["iot:UpdateThingShadow"] == [things]
    assert stack.of_type("aws:ssmincidents/responsePlan:ResponsePlan") == []


def test_intake_role_is_scoped_to_its_queue_key_topic_and_action(any_stack: StackRun) -> None:
    granted = grants(any_stack)
    queue = named(any_stack, "queue").outputs["arn"]
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert granted[action] == [queue]
    key = any_stack.one("aws:kms/key:Key").outputs["arn"]
    assert granted["kms:Decrypt"] == [key]
    assert granted["kms:GenerateDataKey"] == [key]
    responders = any_stack.by_name(f"fleetguard-{any_stack.stack}-alerts-responders").outputs["arn"]
    assert granted["sns:Publish"] == [responders]
    add_things = any_stack.by_name(f"fleetguard-{any_stack.stack}-quarantine-add-things")
    tasks = granted["iot:StartDetectMitigationActionsTask"]
    assert add_things.outputs["mitigationActionArn"] in tasks
    profiles = {f"arn:aws:iot:us-east-1:{ACCOUNT_ID}:securityprofile/{profile.inputs['securityProfileName']}"
                for profile in any_stack.of_type("aws-native:iot:SecurityProfile")}
    assert profiles
    assert sorted(tasks) == sorted([add_things.outputs["mitigationActionArn"],
                                    f"arn:aws:iot:us-east-1:{ACCOUNT_ID}:detectmitigationactionstask/*", *profiles])
    policy = document(named(any_stack, "handler-policy"))
    assert unknown_actions(policy) == []
    assert wildcard_actions(policy) == []


def test_notices_are_recorded_in_a_table_of_their_own_that_forgets_them(any_stack: StackRun) -> None:
    table = named(any_stack, "notices")
    assert table.inputs["name"] == f"fleetguard-{any_stack.stack}-intake-notices"
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["hashKey"] == "noticeId"
    assert table.inputs["attributes"] == [{"name": "noticeId", "type": "S"}]
    assert table.inputs["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert table.inputs["tags"]
    assert environment(any_stack)[EnvVar.NOTICE_LEDGER_TABLE] == table.inputs["name"]
    granted = grants(any_stack)
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert granted[action] == [table.outputs["arn"]]


def test_without_detect_no_bulk_containment_is_granted() -> None:
    stack = run_stack("prod", {"detect": {"enabled": False}})
    assert "iot:StartDetectMitigationActionsTask" not in grants(stack)


def test_intake_exports(any_stack: StackRun) -> None:
    queue, dlq = named(any_stack, "queue"), named(any_stack, "dlq")
    assert any_stack.outputs[out.INTAKE_QUEUE_URL] == queue.outputs["url"]
    assert any_stack.outputs[out.INTAKE_QUEUE_ARN] == queue.outputs["arn"]
    assert any_stack.outputs[out.INTAKE_DEAD_LETTER_QUEUE_ARN] == dlq.outputs["arn"]
    assert any_stack.outputs[out.INTAKE_FUNCTION_ARN] == named(any_stack, "handler-function").outputs["arn"]
    query = named(any_stack, "query-intake-decisions")
    assert query.inputs["logGroupNames"] == [f"/aws/lambda/fleetguard-{any_stack.stack}-intake-handler"]
    assert query.inputs["name"] in any_stack.outputs[out.QUERY_DEFINITION_NAMES]

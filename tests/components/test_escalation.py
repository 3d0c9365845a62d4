"""OpsCenter incidents without Incident Manager: the stage topics, schedule group, escalation function and
scheduler role, the chat channel, and what the intake is configured and allowed to do with them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from functions.contract import EnvVar
from functions.contract_opscenter import EscalationEnvironment, OpsCenterEnvironment, parse_escalation_stages
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun, run_stack
from settings.facts import ESCALATION_ROLE, ESCALATION_STAGE_ROLE, ESCALATION_STAGES_TAG_KEY, ROLE_TAG_KEY
from tests.conftest import prod_ops_center_overrides

EXISTING_TOPIC = "arn:aws:sns:us-east-1:123456789012:security-leads"
SSM = f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}"
SCHEDULES = f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/fleetguard-prod-escalation"
STACK_TAG = {"StringEquals": {"aws:ResourceTag/fleetguard:stack": "fleetguard-prod"}}
REQUEST_TAG = {"StringEquals": {"aws:RequestTag/fleetguard:stack": "fleetguard-prod"}}


def named(stack: StackRun, suffix: str) -> RegisteredResource:
    return stack.by_name(f"fleetguard-{stack.stack}-{suffix}")


def statements(stack: StackRun, policy: str) -> dict[str, dict[str, Any]]:
    document = json.loads(named(stack, policy).inputs["policy"])
    return {entry["Sid"]: entry for entry in document["Statement"]}


def env(stack: StackRun, function: str) -> dict[str, str]:
    variables: dict[str, str] = named(stack, f"{function}-function").inputs["environment"]["variables"]
    return variables


def test_a_stage_without_a_topic_gets_an_encrypted_topic_with_its_subscriptions(
    prod_ops_center_stack: StackRun,
) -> None:
    topic = named(prod_ops_center_stack, "escalation-oncall")
    key = prod_ops_center_stack.one("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert topic.inputs["tags"][ROLE_TAG_KEY] == ESCALATION_STAGE_ROLE
    subscriptions = {
        (item.inputs["protocol"], item.inputs["endpoint"])
        for item in prod_ops_center_stack.of_type("aws:sns/topicSubscription:TopicSubscription")
        if item.inputs["topic"] == topic.outputs["arn"]
    }
    assert subscriptions == {("email", "iot-oncall@example.com"), ("sms", "+15555550100")}
    # The stage that names an existing topic gets none.
    stage_topics = [t for t in prod_ops_center_stack.of_type("aws:sns/topic:Topic")
                    if t.inputs.get("tags", {}).get(ROLE_TAG_KEY) == ESCALATION_STAGE_ROLE]
    assert stage_topics == [topic]


def test_the_schedule_group_declares_the_escalation_and_its_stage_count(prod_ops_center_stack: StackRun) -> None:
    group = prod_ops_center_stack.one("aws:scheduler/scheduleGroup:ScheduleGroup")
    assert group.inputs["name"] == "fleetguard-prod-escalation"
    assert re.fullmatch(r"[0-9a-zA-Z-_.]{1,64}", group.inputs["name"])
    assert group.inputs["tags"][ROLE_TAG_KEY] == ESCALATION_ROLE
    assert group.inputs["tags"][ESCALATION_STAGES_TAG_KEY] == "2"
    # A schedule is named <OpsItem id (15 characters)>-<stage>: within the scheduler's 64 characters.
    assert all(len(f"oi-0123456789ab-{name}") <= 64 for name in ("oncall", "x" * 32))


def test_both_functions_read_the_same_stages_in_order(prod_ops_center_stack: StackRun) -> None:
    oncall = named(prod_ops_center_stack, "escalation-oncall").outputs["arn"]
    intake = OpsCenterEnvironment.from_environment(env(prod_ops_center_stack, "intake-handler"))
    escalation = EscalationEnvironment.from_environment(env(prod_ops_center_stack, "escalation-handler"))
    assert intake is not None
    assert intake.escalation_stages == escalation.escalation_stages
    stages = parse_escalation_stages(escalation.escalation_stages)
    assert [(stage.name, stage.minutes, stage.topic_arn) for stage in stages] == [
        ("oncall", 5, oncall), ("lead", 15, EXISTING_TOPIC),
    ]
    assert intake.schedule_group == escalation.schedule_group == "fleetguard-prod-escalation"


def test_the_intake_is_configured_with_the_runbook_and_escalation(prod_ops_center_stack: StackRun) -> None:
    settings = OpsCenterEnvironment.from_environment(env(prod_ops_center_stack, "intake-handler"))
    assert settings is not None
    assert settings.category == "Security"
    assert dict(settings.severity_by_impact) == {1: "1", 2: "2", 3: "3", 4: "4", 5: "4"}
    assert settings.runbook_name == "fleetguard-prod-iot-incident"
    assert settings.automation_role_arn == named(prod_ops_center_stack, "response-runbook-role").outputs["arn"]
    function = named(prod_ops_center_stack, "escalation-handler-function")
    assert settings.escalation_function_arn == function.outputs["arn"]
    assert settings.scheduler_role_arn == named(prod_ops_center_stack, "escalation-scheduler-role").outputs["arn"]
    assert dict(settings.ops_item_tags) == {"fleetguard:stack": "fleetguard-prod"}


def test_severities_follow_the_config() -> None:
    stack = run_stack("prod", prod_ops_center_overrides(category="Availability", severityByImpact={"5": "3"}))
    settings = OpsCenterEnvironment.from_environment(env(stack, "intake-handler"))
    assert settings is not None
    assert settings.category == "Availability"
    assert settings.severity_by_impact[5] == "3"


def test_with_incident_manager_nothing_of_opscenter_is_deployed(prod_stack: StackRun) -> None:
    assert prod_stack.of_type("aws:scheduler/scheduleGroup:ScheduleGroup") == []
    assert not [r for r in prod_stack.resources if "-escalation-" in r.name and "contacts" not in r.name]
    assert EnvVar.OPS_CENTER_ENABLED not in env(prod_stack, "intake-handler")
    assert OpsCenterEnvironment.from_environment(env(prod_stack, "intake-handler")) is None


def test_the_intake_may_open_tag_and_update_only_its_own_opsitems(prod_ops_center_stack: StackRun) -> None:
    granted = statements(prod_ops_center_stack, "intake-handler-policy")
    assert granted["OpenOpsItems"]["Action"] == ["ssm:CreateOpsItem"]
    # CreateOpsItem has no resource type: "*", held to the stack's tag on the request.
    assert granted["OpenOpsItems"]["Resource"] == ["*"]
    assert granted["OpenOpsItems"]["Condition"] == REQUEST_TAG
    assert granted["TagNewOpsItems"]["Action"] == ["ssm:AddTagsToResource"]
    assert granted["TagNewOpsItems"]["Resource"] == [f"{SSM}:opsitem/*"]
    assert granted["TagNewOpsItems"]["Condition"] == REQUEST_TAG
    assert granted["RecordOnOwnOpsItems"]["Action"] == ["ssm:GetOpsItem", "ssm:UpdateOpsItem"]
    assert granted["RecordOnOwnOpsItems"]["Condition"] == STACK_TAG


def test_the_intake_may_start_only_this_runbook_and_pass_only_its_two_roles(prod_ops_center_stack: StackRun) -> None:
    granted = statements(prod_ops_center_stack, "intake-handler-policy")
    assert granted["StartRunbook"]["Resource"] == [
        f"{SSM}:document/fleetguard-prod-iot-incident",
        f"{SSM}:automation-definition/fleetguard-prod-iot-incident:*",
        f"{SSM}:automation-execution/*",
    ]
    runbook_role = named(prod_ops_center_stack, "response-runbook-role").outputs["arn"]
    scheduler_role = named(prod_ops_center_stack, "escalation-scheduler-role").outputs["arn"]
    assert granted["PassRunbookRole"]["Resource"] == [runbook_role]
    assert granted["PassRunbookRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    assert granted["PassSchedulerRole"]["Resource"] == [scheduler_role]
    assert granted["PassSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert granted["ScheduleEscalation"]["Action"] == ["scheduler:CreateSchedule"]
    assert granted["ScheduleEscalation"]["Resource"] == [f"{SCHEDULES}/*"]


def test_the_escalation_function_reads_its_opsitems_notifies_its_stages_and_cancels_its_schedules(
    prod_ops_center_stack: StackRun,
) -> None:
    granted = statements(prod_ops_center_stack, "escalation-handler-policy")
    oncall = named(prod_ops_center_stack, "escalation-oncall").outputs["arn"]
    key = prod_ops_center_stack.one("aws:kms/key:Key").outputs["arn"]
    actions = {sid: (entry["Action"], entry["Resource"]) for sid, entry in granted.items() if sid != "WriteOwnLogs"}
    assert actions == {
        "ReadOwnOpsItems": (["ssm:GetOpsItem"], [f"{SSM}:opsitem/*"]),
        "CancelRemainingStages": (["scheduler:DeleteSchedule"], [f"{SCHEDULES}/*"]),
        "NotifyStages": (["sns:Publish"], [oncall, EXISTING_TOPIC]),
        "EncryptStageNotices": (["kms:GenerateDataKey"], [key]),
    }
    assert granted["ReadOwnOpsItems"]["Condition"] == STACK_TAG


def test_the_scheduler_may_invoke_the_escalation_function_and_nothing_else(prod_ops_center_stack: StackRun) -> None:
    role = named(prod_ops_center_stack, "escalation-scheduler-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    }]
    function = named(prod_ops_center_stack, "escalation-handler-function")
    policy = json.loads(named(prod_ops_center_stack, "escalation-scheduler-policy").inputs["policy"])
    assert policy["Statement"] == [{
        "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [function.outputs["arn"]],
        "Sid": "InvokeEscalation",
    }]


def test_the_escalation_decisions_have_a_saved_query(prod_ops_center_stack: StackRun) -> None:
    query = named(prod_ops_center_stack, "escalation-query-escalation-decisions")
    assert query.inputs["logGroupNames"] == ["/aws/lambda/fleetguard-prod-escalation-handler"]
    assert "ops_item_id" in query.inputs["queryString"]
    assert query.inputs["name"] in prod_ops_center_stack.outputs["queryDefinitionNames"]


def test_chat_is_off_by_default(dev_stack: StackRun, prod_ops_center_stack: StackRun) -> None:
    for stack in (dev_stack, prod_ops_center_stack):
        assert stack.of_type("aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration") == []
        assert stack.of_type("aws:chatbot/teamsChannelConfiguration:TeamsChannelConfiguration") == []


@pytest.mark.parametrize(("chat", "type_token", "ids"), [
    ({"slack": {"workspaceId": "T07EA123LEP", "channelId": "C07EZ1ABC23"}},
     "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration",
     {"slackTeamId": "T07EA123LEP", "slackChannelId": "C07EZ1ABC23"}),
    ({"teams": {"teamId": "5f1c3b2a-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "channelId": "19%3ab2c%40thread.tacv2",
                "tenantId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
     "aws:chatbot/teamsChannelConfiguration:TeamsChannelConfiguration",
     {"teamId": "5f1c3b2a-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "channelId": "19%3ab2c%40thread.tacv2",
      "tenantId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}),
])
def test_a_chat_channel_relays_the_responders_topic_and_can_do_nothing_else(
    chat: dict[str, Any], type_token: str, ids: dict[str, str]
) -> None:
    stack = run_stack("prod", prod_ops_center_overrides(chat={"enabled": True, **chat}))
    channel = stack.one(type_token)
    for key, value in ids.items():
        assert channel.inputs[key] == value
    responders = named(stack, "alerts-responders").outputs["arn"]
    assert channel.inputs["snsTopicArns"] == [responders]
    assert re.fullmatch(r"[A-Za-z0-9-_]{1,128}", channel.inputs["configurationName"])
    assert channel.inputs["guardrailPolicyArns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    role = named(stack, "escalation-chat-role")
    assert channel.inputs["iamRoleArn"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "chatbot.amazonaws.com"
    }
    assert not [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id]
    assert not [a for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.inputs["role"] == role.id]

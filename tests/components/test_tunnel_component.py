"""Online forensics: the runbook's approval and OnlineForensics steps, the tunnel function, its role and the
approval topic; on in prod, off in dev."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import stack_outputs as out
from components.runbook import TunnelSteps, runbook_document, runbook_yaml
from components.tunnel import tunnel_secret_prefix
from functions.containment import parse_request
from functions.contract import EnvVar, RequestField
from functions.contract_tunnel import SECRET_PREFIX_PATTERN, TUNNEL_OUTPUT_TYPES, TunnelEnvironment
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun
from settings.tunnel import MAX_APPROVERS, TunnelSettings
from tests.components.test_response import reference_problems, registered_runbook
from tests.support.iam_reference import authorisation_gaps

IOT = f"arn:aws:iot:{REGION}:{ACCOUNT_ID}"
APPROVERS = (f"arn:aws:iam::{ACCOUNT_ID}:role/lead", f"arn:aws:iam::{ACCOUNT_ID}:user/oncall")
SETTINGS = TunnelSettings(
    enabled=True, max_lifetime_minutes=90, approvers=APPROVERS, min_required_approvals=2,
    approval_timeout_minutes=45, responder_role_arns=(f"arn:aws:iam::{ACCOUNT_ID}:role/responder",),
)
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:tunnel"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:Automation-tunnel-approvals"
AUTOMATION_DOCUMENT_MAX_BYTES = 64 * 1024
"""Systems Manager's quota on a document's content."""


def runbook(tunnel: TunnelSteps | None) -> dict[str, Any]:
    return runbook_document(
        contain_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:contain",
        release_function_name="release",
        quarantine_group_name="QUARANTINED",
        query_names=["q/device-activity"],
        runbook_name="rb",
        tunnel=tunnel,
    )


def steps_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in document["mainSteps"]}


# --- the runbook ---------------------------------------------------------------------------------------


def test_without_the_tunnel_analysis_goes_to_recovery_and_explains_the_cli() -> None:
    document = runbook(None)
    steps = steps_by_name(document)
    assert "ApproveTunnel" not in steps
    assert "OnlineForensics" not in steps
    assert steps["Analysis"]["nextStep"] == "Recovery"
    assert "4. Online analysis, if needed: open a secure tunnel (`aws iotsecuretunneling open-tunnel" in (
        steps["Analysis"]["description"]
    )
    assert not [output for output in document["outputs"] if output.startswith("OnlineForensics.")]


def test_the_tunnel_opens_only_after_approval_and_either_failure_goes_on_to_recovery() -> None:
    document = runbook(TunnelSteps(SETTINGS, FUNCTION_ARN, TOPIC_ARN))
    names = [step["name"] for step in document["mainSteps"]]
    assert names == ["Contain", "CheckContainment", "ContainManually", "Analysis", "ApproveTunnel",
                     "OnlineForensics", "Recovery"]
    steps = steps_by_name(document)
    assert steps["Analysis"]["nextStep"] == "ApproveTunnel"
    approve, forensics = steps["ApproveTunnel"], steps["OnlineForensics"]
    assert approve["action"] == "aws:approve"
    assert approve["nextStep"] == "OnlineForensics"
    # A rejection or a timeout fails the approval: Recovery follows, without a tunnel.
    assert approve["onFailure"] == "step:Recovery"
    assert approve["timeoutSeconds"] == 45 * 60
    inputs = approve["inputs"]
    assert inputs["Approvers"] == list(APPROVERS)
    assert inputs["MinRequiredApprovals"] == 2
    assert inputs["NotificationArn"] == TOPIC_ARN
    assert "90 minutes" in inputs["Message"]
    assert "{{ IncidentRecordArn }}" in inputs["Message"]
    assert forensics["action"] == "aws:invokeLambdaFunction"
    assert forensics["onFailure"] == "step:Recovery"
    assert forensics["nextStep"] == "Recovery"
    assert forensics["timeoutSeconds"] <= 300
    assert forensics["inputs"]["FunctionName"] == FUNCTION_ARN
    assert reference_problems(document) == []


def test_the_tunnel_step_declares_exactly_the_functions_result_keys_and_no_token() -> None:
    document = runbook(TunnelSteps(SETTINGS, FUNCTION_ARN, TOPIC_ARN))
    step = steps_by_name(document)["OnlineForensics"]
    declared = {output["Name"]: (output["Selector"], output["Type"]) for output in step["outputs"]}
    assert declared == {key.value: (f"$.Payload.{key}", kind) for key, kind in TUNNEL_OUTPUT_TYPES.items()}
    assert not [name for name in declared if "token" in name.lower()]
    assert [f"OnlineForensics.{key}" for key in TUNNEL_OUTPUT_TYPES] == document["outputs"][-len(declared):]


def test_the_tunnel_step_passes_the_incident_the_function_reads() -> None:
    payload = steps_by_name(runbook(TunnelSteps(SETTINGS, FUNCTION_ARN, TOPIC_ARN)))["OnlineForensics"]["inputs"][
        "InputPayload"
    ]
    ops_item = "oi-0123456789ab"
    request = parse_request({**payload, RequestField.INCIDENT_RECORD_ARN: "", RequestField.OPS_ITEM_ID: ops_item})
    assert request.ops_item_id == ops_item
    assert request.thing_name is None


def test_the_steps_stay_within_automation_limits() -> None:
    most = TunnelSettings(True, 720, tuple(f"arn:aws:iam::{ACCOUNT_ID}:role/a{n}" for n in range(MAX_APPROVERS)),
                          1, 1440, SETTINGS.responder_role_arns)
    document = runbook(TunnelSteps(most, FUNCTION_ARN, TOPIC_ARN))
    approve = steps_by_name(document)["ApproveTunnel"]
    assert len(approve["inputs"]["Approvers"]) <= 10
    assert len(approve["inputs"]["Message"]) <= 4096
    assert all(re.fullmatch(r"[A-Za-z0-9_]{1,128}", step["name"]) for step in document["mainSteps"])
    text = runbook_yaml(
        contain_function_arn=FUNCTION_ARN, release_function_name="release", quarantine_group_name="QUARANTINED",
        query_names=["q/device-activity"], runbook_name="rb", tunnel=TunnelSteps(most, FUNCTION_ARN, TOPIC_ARN),
    )
    assert len(text.encode()) < AUTOMATION_DOCUMENT_MAX_BYTES


def test_prod_registers_the_steps_with_its_function_and_topic(prod_stack: StackRun) -> None:
    steps = steps_by_name(registered_runbook(prod_stack))
    assert steps["OnlineForensics"]["inputs"]["FunctionName"] == function(prod_stack).outputs["arn"]
    assert steps["ApproveTunnel"]["inputs"]["NotificationArn"] == approval_topic(prod_stack).outputs["arn"]
    assert steps["ApproveTunnel"]["inputs"]["Approvers"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:role/iot-security-lead", f"arn:aws:iam::{ACCOUNT_ID}:role/iot-oncall",
    ]


# --- the component -------------------------------------------------------------------------------------


def function(stack: StackRun) -> RegisteredResource:
    return stack.by_name("fleetguard-prod-tunnel-open-function")


def approval_topic(stack: StackRun) -> RegisteredResource:
    return stack.by_name("fleetguard-prod-tunnel-approvals")


def role_statements(stack: StackRun) -> dict[str, dict[str, Any]]:
    document = json.loads(stack.by_name("fleetguard-prod-tunnel-open-policy").inputs["policy"])
    return {entry["Sid"]: entry for entry in document["Statement"]}


def test_dev_has_no_tunnel(dev_stack: StackRun) -> None:
    assert not [resource for resource in dev_stack.resources if "tunnel" in resource.name]
    assert not set(dev_stack.outputs) & {out.TUNNEL_FUNCTION_ARN, out.TUNNEL_SECRET_PREFIX}
    release = dev_stack.by_name("fleetguard-dev-quarantine-release-function")
    assert EnvVar.TUNNEL_SECRET_PREFIX not in release.inputs["environment"]["variables"]


def test_approval_topic_is_named_for_automation_and_encrypted_with_the_alert_key(prod_stack: StackRun) -> None:
    topic = approval_topic(prod_stack)
    # Automation sends an approval request only to a topic whose name begins with "Automation".
    assert topic.inputs["name"].startswith("Automation")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", topic.inputs["name"])
    assert topic.inputs["kmsMasterKeyId"] == prod_stack.by_name("fleetguard-prod-alerts-key").outputs["arn"]
    assert prod_stack.outputs[out.TUNNEL_APPROVAL_TOPIC_ARN] == topic.outputs["arn"]


def test_function_is_configured_through_the_contract(prod_stack: StackRun) -> None:
    variables = function(prod_stack).inputs["environment"]["variables"]
    env = TunnelEnvironment.from_environment(variables)
    release_role = prod_stack.by_name("fleetguard-prod-quarantine-release-role")
    assert env.quarantine_group_name == "QUARANTINED"
    assert env.max_lifetime_minutes == 60
    assert env.reader_role_arns == (f"arn:aws:iam::{ACCOUNT_ID}:role/iot-incident-responder",)
    assert env.release_role_arn == release_role.outputs["arn"]
    assert env.secret_prefix == tunnel_secret_prefix("fleetguard-prod") == prod_stack.outputs[out.TUNNEL_SECRET_PREFIX]
    assert SECRET_PREFIX_PATTERN.fullmatch(env.secret_prefix)
    assert function(prod_stack).inputs["handler"] == "functions.tunnel.handler"
    assert prod_stack.outputs[out.TUNNEL_FUNCTION_ARN] == function(prod_stack).outputs["arn"]
    # Release closes the tunnels under the same prefix.
    release = prod_stack.by_name("fleetguard-prod-quarantine-release-function")
    assert release.inputs["environment"]["variables"][EnvVar.TUNNEL_SECRET_PREFIX] == env.secret_prefix


def test_function_role_can_do_exactly_what_the_handler_calls(prod_stack: StackRun) -> None:
    statements = role_statements(prod_stack)
    plan = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    secrets = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:fleetguard-prod-tunnel/*"
    granted = {sid: (entry["Action"], entry["Resource"]) for sid, entry in statements.items() if sid != "WriteOwnLogs"}
    assert granted == {
        "OpenSshTunnelsToQuarantinedDevices": (["iot:OpenTunnel"], ["*"]),
        "ListDeviceTunnels": (["iot:ListTunnels"], ["*"]),
        "ManageIncidentTunnels": (["iot:CloseTunnel", "iot:DescribeTunnel", "iot:RotateTunnelAccessToken"],
                                  [f"{IOT}:tunnel/*"]),
        "StoreTunnelTokens": (["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
                               "secretsmanager:DescribeSecret", "secretsmanager:PutResourcePolicy",
                               "secretsmanager:PutSecretValue", "secretsmanager:TagResource"], [secrets]),
        "ConfirmQuarantine": (["iot:ListThingGroupsForThing"], [f"{IOT}:thing/*"]),
        "ReadDevicesAndNoteTunnels": (
            ["ssm-incidents:CreateTimelineEvent", "ssm-incidents:ListRelatedItems"],
            [f"arn:aws:ssm-incidents::{ACCOUNT_ID}:incident-record/{plan.inputs['name']}/*", plan.outputs["arn"]],
        ),
    }
    group_arn = prod_stack.one("aws:iot/thingGroup:ThingGroup").outputs["arn"]
    # OpenTunnel names no resource type: its condition keys keep it to SSH and the quarantine group.
    assert statements["OpenSshTunnelsToQuarantinedDevices"]["Condition"] == {
        "ForAnyValue:StringEquals": {"iot:ThingGroupArn": [group_arn]},
        "ForAllValues:StringEquals": {"iot:TunnelDestinationService": ["SSH"]},
    }
    document = json.loads(prod_stack.by_name("fleetguard-prod-tunnel-open-policy").inputs["policy"])
    assert authorisation_gaps(document) == []


def test_with_opscenter_the_function_records_on_the_stacks_own_opsitems(prod_ops_center_stack: StackRun) -> None:
    statements = role_statements(prod_ops_center_stack)
    assert "ReadDevicesAndNoteTunnels" not in statements
    granted = statements["RecordTunnelsOnOwnOpsItems"]
    assert granted["Action"] == ["ssm:GetOpsItem", "ssm:UpdateOpsItem"]
    assert granted["Condition"] == {"StringEquals": {"aws:ResourceTag/fleetguard:stack": "fleetguard-prod"}}


def test_every_tunnel_resource_belongs_to_the_component(prod_stack: StackRun) -> None:
    root = prod_stack.one("fleetguard:tunnel:Tunnel")
    children = {resource.name for resource in prod_stack.resources if resource.parent == root.urn}
    assert children == {"fleetguard-prod-tunnel-approvals", "fleetguard-prod-tunnel-open"}


@pytest.mark.parametrize("variant", ["prod", "prod_ops_center"])
def test_the_tunnel_statements_pass_the_iam_reference(variant: str, request: pytest.FixtureRequest) -> None:
    stack: StackRun = request.getfixturevalue(f"{variant}_stack")
    for name in ("fleetguard-prod-tunnel-open-policy", "fleetguard-prod-quarantine-release-policy",
                 "fleetguard-prod-response-runbook-policy"):
        assert authorisation_gaps(json.loads(stack.by_name(name).inputs["policy"])) == [], name

"""The audit mitigation component as the dev and prod programs register it: the three audit-only mitigation
actions and their roles, the mapping the intake receives, the approval document and its role, and the
outputs a responder and the runbook's integrator use."""

from __future__ import annotations

import json
from typing import Any

import pytest

import stack_outputs as out
from functions.contract import EnvVar
from functions.contract_mitigation import AuditMitigationEnvironment, CheckActions, mitigation_task_id
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun, run_stack
from settings.facts import AUDIT_MITIGATION_ROLE, ROLE_TAG_KEY

MANAGED = "arn:aws:iam::aws:policy/service-role/"
RESPONDERS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:fleetguard-{{stack}}-alerts-responders"
PROD_APPROVALS = {
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": ["fleetguard-prod-audit-mitigation-blank-policy"],
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": ["fleetguard-prod-audit-mitigation-deactivate-ca-cert"],
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK": [
        "fleetguard-prod-quarantine-deactivate-cert", "fleetguard-prod-quarantine-add-things",
    ],
}


def component(stack: StackRun) -> RegisteredResource:
    return stack.one("fleetguard:audit:Mitigation")


def child(stack: StackRun, suffix: str) -> RegisteredResource:
    root = component(stack)
    resource = stack.by_name(f"{root.name}-{suffix}")
    assert resource.parent == root.urn
    return resource


def intake_environment(stack: StackRun) -> dict[str, str]:
    function = stack.by_name(f"fleetguard-{stack.stack}-intake-handler-function")
    variables: dict[str, str] = function.inputs["environment"]["variables"]
    return variables


def intake_statements(stack: StackRun) -> dict[str, dict[str, Any]]:
    [policy] = [r for r in stack.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-intake-handler-policy")]
    return {entry["Sid"]: entry for entry in json.loads(policy.inputs["policy"])["Statement"]}


@pytest.mark.parametrize(
    ("suffix", "params", "managed"),
    [
        ("deactivate-ca-cert", {"updateCaCertificateParams": {"action": "DEACTIVATE"}},
         "AWSIoTDeviceDefenderUpdateCACertMitigationAction"),
        ("blank-policy", {"replaceDefaultPolicyVersionParams": {"templateName": "BLANK_POLICY"}},
         "AWSIoTDeviceDefenderReplaceDefaultPolicyMitigationAction"),
    ],
)
def test_certificate_and_policy_actions_hold_their_managed_policy(
    any_stack: StackRun, suffix: str, params: dict[str, Any], managed: str
) -> None:
    action = child(any_stack, suffix)
    assert action.type == "aws-native:iot:MitigationAction"
    assert action.inputs["actionParams"] == params
    assert action.inputs["roleArn"] == child(any_stack, f"{suffix}-role").outputs["arn"]
    assert child(any_stack, f"{suffix}-role-policy").inputs["policyArn"] == f"{MANAGED}{managed}"


def test_the_publish_action_may_publish_to_the_encrypted_responders_topic_only(any_stack: StackRun) -> None:
    topic = RESPONDERS_TOPIC.format(stack=any_stack.stack)
    action = child(any_stack, "publish-finding")
    assert action.inputs["actionParams"] == {"publishFindingToSnsParams": {"topicArn": topic}}
    key = any_stack.by_name(f"fleetguard-{any_stack.stack}-alerts-key").outputs["arn"]
    policy = json.loads(child(any_stack, "publish-finding-role-policy").inputs["policy"])
    assert [(entry["Action"], entry["Resource"]) for entry in policy["Statement"]] == [
        (["sns:Publish"], [topic]),
        (["kms:Decrypt", "kms:GenerateDataKey"], [key]),
    ]


def test_the_stack_exports_the_new_actions_by_name(any_stack: StackRun) -> None:
    names = {child(any_stack, suffix).inputs["actionName"]: child(any_stack, suffix).outputs["mitigationActionArn"]
             for suffix in ("deactivate-ca-cert", "blank-policy", "publish-finding")}
    assert any_stack.outputs[out.AUDIT_MITIGATION_ACTION_ARNS] == names


def test_the_intake_gets_every_mapped_check_with_its_deployed_action_names(prod_stack: StackRun) -> None:
    config = AuditMitigationEnvironment.from_environment(intake_environment(prod_stack))
    assert config is not None
    assert config.document_name == "fleetguard-prod-audit-mitigation"
    assert config.checks == {
        **{check: CheckActions(tuple(actions), approval_required=True) for check, actions in PROD_APPROVALS.items()},
        "LOGGING_DISABLED_CHECK": CheckActions(("fleetguard-prod-quarantine-enable-logging",), False),
        "CONFLICTING_CLIENT_IDS_CHECK": CheckActions(("fleetguard-prod-audit-mitigation-publish-finding",), False),
    }
    actions = {r.inputs["actionName"] for r in prod_stack.of_type("aws-native:iot:MitigationAction")}
    assert {name for entry in config.checks.values() for name in entry.actions} <= actions


def test_the_intake_may_start_and_read_audit_mitigation_tasks_only_when_some_check_is_automatic() -> None:
    automatic = intake_statements(run_stack("prod"))["MitigateAuditFindings"]
    assert (automatic["Action"], automatic["Resource"]) == (
        ["iot:DescribeAuditMitigationActionsTask", "iot:StartAuditMitigationActionsTask"], ["*"]
    )
    approvals_only = run_stack("prod", {"audit": {"mitigations": {
        "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": {"actions": ["deactivateCaCertificate"], "approval": "required"},
    }}})
    assert "MitigateAuditFindings" not in intake_statements(approvals_only)
    unmapped = run_stack("prod", {"audit": {}})
    assert EnvVar.AUDIT_MITIGATIONS.value not in intake_environment(unmapped)
    assert out.AUDIT_MITIGATION_DOCUMENT_NAME not in unmapped.outputs


def test_the_approval_document_starts_the_intake_s_task_for_an_approval_check(prod_stack: StackRun) -> None:
    document = child(prod_stack, "document")
    assert (document.inputs["name"], document.inputs["documentType"], document.inputs["documentFormat"]) == (
        "fleetguard-prod-audit-mitigation", "Automation", "JSON",
    )
    assert prod_stack.outputs[out.AUDIT_MITIGATION_DOCUMENT_NAME] == "fleetguard-prod-audit-mitigation"
    # Declared as a document a responder runs by hand, so the pack does not take it for the runbook.
    assert document.inputs["tags"][ROLE_TAG_KEY] == AUDIT_MITIGATION_ROLE
    content = json.loads(document.inputs["content"])
    assert content["assumeRole"] == child(prod_stack, "document-role").outputs["arn"]
    assert content["parameters"]["CheckName"]["allowedValues"] == sorted(PROD_APPROVALS)
    starts = [step for step in content["mainSteps"] if step["action"] == "aws:executeAwsApi"]
    task_id = mitigation_task_id("{{ AuditTaskId }}", "{{ CheckName }}")
    assert {check: actions for step in starts for check, actions in step["inputs"]["auditCheckToActionsMapping"]
            .items()} == PROD_APPROVALS
    assert {step["inputs"]["taskId"] for step in starts} == {task_id}
    confirm = content["mainSteps"][-1]
    assert (confirm["inputs"]["Api"], confirm["inputs"]["taskId"]) == ("DescribeAuditMitigationActionsTask", task_id)


def test_the_document_role_may_only_start_and_read_audit_mitigation_tasks(prod_stack: StackRun) -> None:
    role = child(prod_stack, "document-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [entry["Principal"] for entry in trust] == [{"Service": "ssm.amazonaws.com"}]
    policy = json.loads(child(prod_stack, "document-policy").inputs["policy"])
    assert [(entry["Action"], entry["Resource"]) for entry in policy["Statement"]] == [
        (["iot:DescribeAuditMitigationActionsTask", "iot:StartAuditMitigationActionsTask"], ["*"]),
    ]

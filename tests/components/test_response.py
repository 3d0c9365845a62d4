"""The runbook, the response plan, their roles and the forensic queries, with Incident Manager on and off."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

import stack_outputs as out
from components.runbook import AuditDocuments, analysis_text, runbook_document
from functions.containment import parse_request
from functions.contract import OUTPUT_TYPES, OutputKey, RequestField, Status
from harness.mockstack import ACCOUNT_ID, RegisteredResource, StackRun, run_stack
from tests.support.aws_actions import unknown_actions, wildcard_actions
from tests.support.nested_values import strings

REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\s*\}\}")
STEP_ACTIONS_WITHOUT_OUTPUTS = ("aws:pause", "aws:branch")


def reference_problems(document: dict[str, Any]) -> list[str]:
    """Every ``{{ Step.output }}`` / ``{{ Parameter }}`` / document output that names nothing declared, and
    every step transition that names no step."""
    steps = {step["name"]: step for step in document["mainSteps"]}
    declared = {
        name: {output["Name"] for output in step.get("outputs", [])} for name, step in steps.items()
    }
    problems: list[str] = []
    for text in strings(document):
        for first, second in REFERENCE.findall(text):
            if not second and first not in document["parameters"]:
                problems.append(f"{{{{ {first} }}}} is not a declared parameter")
            elif second and second not in declared.get(first, set()):
                problems.append(f"{{{{ {first}.{second} }}}} is not a declared output of step {first}")
    for reference in document.get("outputs", []):
        step, _, output = reference.partition(".")
        if output not in declared.get(step, set()):
            problems.append(f"document output {reference} is not declared by step {step}")
    for step in document["mainSteps"]:
        targets = [step.get("nextStep")]
        if str(step.get("onFailure", "")).startswith("step:"):
            targets.append(step["onFailure"].removeprefix("step:"))
        if step["action"] == "aws:branch":
            targets += [choice["NextStep"] for choice in step["inputs"]["Choices"]]
            targets.append(step["inputs"].get("Default"))
        problems += [f"{step['name']} goes to unknown step {t}" for t in targets if t and t not in steps]
    return problems


def sample_runbook() -> dict[str, Any]:
    return runbook_document(
        contain_function_arn="arn:aws:lambda:us-east-1:123456789012:function:contain",
        release_function_name="release",
        quarantine_group_name="QUARANTINED",
        query_names=["q/device-activity"],
        runbook_name="rb",
    )


def registered_runbook(stack: StackRun) -> dict[str, Any]:
    document = stack.by_name(f"fleetguard-{stack.stack}-response-runbook")
    parsed: dict[str, Any] = yaml.safe_load(document.inputs["content"])
    return parsed


def policy(resource: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource.inputs[key])
    return document


def test_every_step_output_and_parameter_the_runbook_references_is_declared(prod_stack: StackRun) -> None:
    document = registered_runbook(prod_stack)
    assert document["schemaVersion"] == "0.3"
    references = [match for text in strings(document) for match in REFERENCE.findall(text) if match[1]]
    assert ("Contain", OutputKey.STATUS) in references  # the branch really reads a step output
    assert reference_problems(document) == []


def test_the_reference_check_catches_an_undeclared_output() -> None:
    document = sample_runbook()
    contain_step = document["mainSteps"][0]
    contain_step["outputs"] = [o for o in contain_step["outputs"] if o["Name"] != OutputKey.STATUS]
    problems = reference_problems(document)
    assert "{{ Contain.status }} is not a declared output of step Contain" in problems
    assert "document output Contain.status is not declared by step Contain" in problems


def test_contain_step_declares_exactly_the_handlers_result_keys() -> None:
    step = sample_runbook()["mainSteps"][0]
    assert {o["Name"]: (o["Selector"], o["Type"]) for o in step["outputs"]} == {
        key: (f"$.Payload.{key}", kind) for key, kind in OUTPUT_TYPES.items()
    }


def test_runbook_contains_the_incidents_devices_then_hands_over_to_people(prod_stack: StackRun) -> None:
    resource = prod_stack.by_name("fleetguard-prod-response-runbook")
    assert resource.inputs["documentType"] == "Automation"
    assert resource.inputs["documentFormat"] == "YAML"
    assert resource.inputs["name"] == "fleetguard-prod-iot-incident"
    document = registered_runbook(prod_stack)
    assert document["assumeRole"] == "{{ AutomationAssumeRole }}"
    steps = document["mainSteps"]
    # Prod opens secure tunnels: an approval and the OnlineForensics step come between Analysis and Recovery.
    assert [step["name"] for step in steps] == ["Contain", "CheckContainment", "ContainManually", "Analysis",
                                                "ApproveTunnel", "OnlineForensics", "Recovery"]
    contain_step = steps[0]
    contain_function = prod_stack.by_name("fleetguard-prod-quarantine-contain-function")
    assert contain_step["action"] == "aws:invokeLambdaFunction"
    assert contain_step["inputs"]["FunctionName"] == contain_function.outputs["arn"]
    # Only the incident (record or OpsItem): the function finds the things from it, not from the account.
    payload = contain_step["inputs"]["InputPayload"]
    assert payload == {RequestField.INCIDENT_RECORD_ARN: "{{ IncidentRecordArn }}",
                       RequestField.OPS_ITEM_ID: "{{ OpsItemId }}",
                       RequestField.REASON: "Incident runbook fleetguard-prod-iot-incident"}
    incident = f"arn:aws:ssm-incidents::{ACCOUNT_ID}:incident-record/fleetguard-prod-iot-device-compromise/5ec0b3c5"
    # SSM passes "" for the parameter of the other path.
    request = parse_request({**payload, RequestField.INCIDENT_RECORD_ARN: incident, RequestField.OPS_ITEM_ID: ""})
    assert request.incident_record_arn == incident
    assert request.thing_name is None
    assert contain_step["timeoutSeconds"] <= 300
    assert contain_step["onFailure"] == "step:ContainManually"
    branch = steps[1]["inputs"]
    # An incident that names no device (audit finding, storm contained in bulk) goes to people, not to
    # manual containment.
    assert branch["Choices"] == [
        {"NextStep": "Analysis", "Variable": "{{ Contain.status }}", "StringEquals": Status.CONTAINED},
        {"NextStep": "Analysis", "Variable": "{{ Contain.status }}", "StringEquals": Status.NO_DEVICES},
    ]
    assert branch["Default"] == "ContainManually"
    assert steps[1]["onFailure"] == "step:ContainManually"
    analysis, recovery = steps[3]["description"], steps[-1]["description"]
    assert "Logs Insights" in analysis
    assert "open-tunnel" not in analysis
    assert "4. Online analysis, if needed: resume this step; the next one (ApproveTunnel)" in analysis
    assert "list-detect-mitigation-actions-executions" in analysis
    console = "https://console.aws.amazon.com/systems-manager/automation/execute"
    # Audit findings: approval-only checks are mitigated with the approval document; the account can be
    # audited again at once with the on-demand audit document. Both are console links.
    assert (f"needs approval is mitigated by running [fleetguard-prod-audit-mitigation]({console}/"
            "fleetguard-prod-audit-mitigation?region=us-east-1) with the audit task id and the check name") in analysis
    assert (f"5. Audit the account now: run [fleetguard-prod-on-demand-audit]({console}/"
            "fleetguard-prod-on-demand-audit?region=us-east-1) (default: the enabled critical checks)") in analysis
    assert "fleetguard-prod-response/device-activity" in analysis
    assert "fleetguard-prod-quarantine-release" in recovery
    assert "create-job" in recovery
    assert steps[-1]["isEnd"] is True
    pattern = document["parameters"]["IncidentRecordArn"]["allowedPattern"]
    assert re.fullmatch(pattern, f"arn:aws:ssm-incidents::{ACCOUNT_ID}:incident-record/plan/5ec0b3c5-1a2b")
    assert not re.fullmatch(pattern, "arn:aws:iot:us-east-1:123456789012:thing/device-1")


def test_response_plan_opens_incidents_engages_people_and_starts_the_runbook(prod_stack: StackRun) -> None:
    plan = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    inputs = plan.inputs
    assert inputs["name"] == "fleetguard-prod-iot-device-compromise"
    template = inputs["incidentTemplate"]
    assert template["title"] == "Critical IoT device security incident"
    assert template["impact"] == 3
    # A static dedupe string would fold each device's incident into the open one, which never contains it.
    assert "dedupeString" not in template
    assert template["summary"]
    assert template["incidentTags"]["Environment"] == "prod"
    responders = prod_stack.by_name("fleetguard-prod-alerts-responders")
    assert template["notificationTargets"] == [{"snsTopicArn": responders.outputs["arn"]}]
    escalation = prod_stack.by_name("fleetguard-prod-contacts-iot-security-escalation")
    assert inputs["engagements"] == [escalation.outputs["arn"]]
    (automation,) = inputs["action"]["ssmAutomations"]
    runbook_role = prod_stack.by_name("fleetguard-prod-response-runbook-role")
    manager_role = prod_stack.by_name("fleetguard-prod-response-incident-manager-role")
    assert automation["documentName"] == "fleetguard-prod-iot-incident"
    assert automation["roleArn"] == manager_role.outputs["arn"]
    assert automation["targetAccount"] == "RESPONSE_PLAN_OWNER_ACCOUNT"
    assert automation["dynamicParameters"] == {"IncidentRecordArn": "INCIDENT_RECORD_ARN"}
    # Non-empty static parameters: the provider would otherwise send {} and the API refuses it.
    assert automation["parameters"] == [{"name": "AutomationAssumeRole", "values": [runbook_role.outputs["arn"]]}]
    runbook = registered_runbook(prod_stack)
    # The OpsItem parameter is the OpsCenter path's; it defaults to empty, so the plan need not pass it.
    assert set(automation["dynamicParameters"]) | {"AutomationAssumeRole", "OpsItemId"} == set(runbook["parameters"])
    assert runbook["parameters"]["OpsItemId"]["default"] == ""


def test_response_plan_stays_within_incident_manager_limits(prod_stack: StackRun) -> None:
    inputs = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan").inputs
    assert 1 <= inputs["incidentTemplate"]["impact"] <= 5
    assert len(inputs["engagements"]) <= 5
    assert len(inputs["incidentTemplate"]["notificationTargets"]) <= 10
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,200}", inputs["name"])
    assert len(inputs["incidentTemplate"]["title"]) <= 200


def test_response_plan_waits_for_its_roles_and_the_engaged_escalation_stages(prod_stack: StackRun) -> None:
    plan = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    names = {prod_stack.by_urn(urn).name for urn in plan.dependencies}
    assert {"fleetguard-prod-response-runbook-policy", "fleetguard-prod-response-incident-manager-policy"} <= names
    engaged = {prod_stack.by_urn(urn).name for urn in plan.property_dependencies["engagements"]}
    assert "fleetguard-prod-contacts-iot-security-escalation-stages" in engaged


def test_runbook_role_may_only_invoke_its_functions_and_request_the_tunnel_approval(prod_stack: StackRun) -> None:
    role = prod_stack.by_name("fleetguard-prod-response-runbook-role")
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    grant = prod_stack.by_name("fleetguard-prod-response-runbook-policy")
    assert grant.inputs["role"] == role.id
    contain_function = prod_stack.by_name("fleetguard-prod-quarantine-contain-function")
    tunnel_function = prod_stack.by_name("fleetguard-prod-tunnel-open-function")
    approval_topic = prod_stack.by_name("fleetguard-prod-tunnel-approvals")
    alert_key = prod_stack.by_name("fleetguard-prod-alerts-key")
    assert [(s["Action"], s["Resource"]) for s in policy(grant)["Statement"]] == [
        (["lambda:InvokeFunction"], [contain_function.outputs["arn"]]),
        (["lambda:InvokeFunction"], [tunnel_function.outputs["arn"]]),
        # Automation publishes the approval request as the runbook's role, to a topic encrypted with the key.
        (["sns:Publish"], [approval_topic.outputs["arn"]]),
        (["kms:Decrypt", "kms:GenerateDataKey"], [alert_key.outputs["arn"]]),
    ]


def test_incident_manager_role_may_only_start_this_runbook_with_its_role(prod_stack: StackRun) -> None:
    role = prod_stack.by_name("fleetguard-prod-response-incident-manager-role")
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "ssm-incidents.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    document = policy(prod_stack.by_name("fleetguard-prod-response-incident-manager-policy"))
    start, pass_role = document["Statement"]
    assert start["Action"] == ["ssm:StartAutomationExecution"]
    # The Service Authorization Reference requires the document and the execution besides the definition.
    assert start["Resource"] == [
        f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:document/fleetguard-prod-iot-incident",
        f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:automation-definition/fleetguard-prod-iot-incident:*",
        f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:automation-execution/*",
    ]
    runbook_role = prod_stack.by_name("fleetguard-prod-response-runbook-role")
    assert pass_role["Action"] == ["iam:PassRole"]
    assert pass_role["Resource"] == [runbook_role.outputs["arn"]]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    assert unknown_actions(document) == []
    assert wildcard_actions(document) == []


def test_forensic_queries_cover_device_logs_and_containment_actions(any_stack: StackRun) -> None:
    prefix = f"fleetguard-{any_stack.stack}-response"
    queries = {q.inputs["name"]: q.inputs for q in any_stack.of_type("aws:cloudwatch/queryDefinition:QueryDefinition")
               if q.inputs["name"].startswith(prefix)}
    assert set(queries) == {f"{prefix}/{suffix}" for suffix in (
        "device-activity", "authorization-failures", "connections-by-source-ip", "containment-actions",
    )}
    for suffix in ("device-activity", "authorization-failures", "connections-by-source-ip"):
        assert queries[f"{prefix}/{suffix}"]["logGroupNames"] == ["AWSIotLogsV2"]
    containment = queries[f"{prefix}/containment-actions"]["logGroupNames"]
    assert containment == [
        f"/aws/lambda/fleetguard-{any_stack.stack}-quarantine-contain",
        f"/aws/lambda/fleetguard-{any_stack.stack}-quarantine-release",
    ]
    assert 'filter status = "Failure"' in queries[f"{prefix}/authorization-failures"]["queryString"]
    exported = any_stack.outputs[out.QUERY_DEFINITION_NAMES]
    assert set(queries) <= set(exported)


def test_without_incident_manager_or_opscenter_there_is_no_runbook_plan_or_role() -> None:
    stack = run_stack("dev", {"incidentResponse": {"opsCenter": {"enabled": False}}})
    for type_token in ("aws:ssmincidents/responsePlan:ResponsePlan",
                       "aws:ssmincidents/replicationSet:ReplicationSet", "aws:ssmcontacts/contact:Contact"):
        assert stack.of_type(type_token) == []
    # The runbook is gone; the audit documents a responder runs by hand need no incident and stay.
    assert {document.name for document in stack.of_type("aws:ssm/document:Document")} == {
        "fleetguard-dev-on-demand-audit-document", "fleetguard-dev-audit-mitigation-document"}
    assert not [r for r in stack.of_type("aws:iam/role:Role") if "-response-" in r.name]
    assert stack.outputs[out.INCIDENT_MANAGER_ENABLED] is False
    assert stack.outputs[out.OPS_CENTER_ENABLED] is False
    assert out.RUNBOOK_NAME not in stack.outputs
    assert out.RESPONSE_PLAN_ARN not in stack.outputs


def test_with_opscenter_the_runbook_and_its_role_exist_without_a_plan(dev_stack: StackRun) -> None:
    runbook = dev_stack.by_name("fleetguard-dev-response-runbook")
    assert dev_stack.outputs[out.RUNBOOK_NAME] == runbook.inputs["name"] == "fleetguard-dev-iot-incident"
    assert dev_stack.of_type("aws:ssmincidents/responsePlan:ResponsePlan") == []
    roles = {r.name for r in dev_stack.of_type("aws:iam/role:Role") if "-response-" in r.name}
    assert roles == {"fleetguard-dev-response-runbook-role"}
    parameters = registered_runbook(dev_stack)["parameters"]
    pattern = parameters["OpsItemId"]["allowedPattern"]
    assert re.fullmatch(pattern, "oi-0123456789ab")
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "oi-0123456789AB")
    assert re.fullmatch(parameters["IncidentRecordArn"]["allowedPattern"], "")


def test_prod_exports_the_runbook_and_plan(prod_stack: StackRun) -> None:
    assert prod_stack.outputs[out.INCIDENT_MANAGER_ENABLED] is True
    assert prod_stack.outputs[out.RUNBOOK_NAME] == "fleetguard-prod-iot-incident"
    plan = prod_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    assert prod_stack.outputs[out.RESPONSE_PLAN_ARN] == plan.outputs["arn"]


@pytest.mark.parametrize(("stack_name", "expected"), [("dev", False), ("prod", True)])
def test_alert_key_lets_incident_manager_or_opscenter_encrypt_notifications_only_on_their_path(
    stack_name: str, expected: bool, dev_stack: StackRun, prod_stack: StackRun
) -> None:
    # prod engages Incident Manager; dev has it off and uses OpsCenter, which notifies as Systems Manager.
    stack = dev_stack if stack_name == "dev" else prod_stack
    statements = policy(stack.one("aws:kms/key:Key"))["Statement"]
    services = {service for s in statements for service in s["Principal"].get("Service", [])}
    assert ("ssm-incidents.amazonaws.com" in services) is expected
    assert ("ssm.amazonaws.com" in services) is not expected


def test_incident_manager_resources_get_only_the_tags_it_accepts() -> None:
    # Incident Manager takes ASCII tag values only; other resources keep every stack tag.
    run = run_stack("prod", {"tags": {"CostCenter": "iot-prod", "Team": "Sécurité IoT"}})
    plan = run.one("aws:ssmincidents/responsePlan:ResponsePlan")
    replication_set = run.one("aws:ssmincidents/replicationSet:ReplicationSet")
    for tags in (plan.inputs["tags"], plan.inputs["incidentTemplate"]["incidentTags"], replication_set.inputs["tags"]):
        assert tags["CostCenter"] == "iot-prod"
        assert "Team" not in tags
    assert run.one("aws:kms/key:Key").inputs["tags"]["Team"] == "Sécurité IoT"


def test_analysis_links_the_audit_documents_in_the_partitions_console() -> None:
    documents = AuditDocuments(on_demand="fg-audit-now", mitigation=None, partition="aws-cn", region="cn-north-1")
    text = analysis_text(["q"], tunnel_step=False, audit_documents=documents)
    assert ("[fg-audit-now](https://console.amazonaws.cn/systems-manager/automation/execute/fg-audit-now"
            "?region=cn-north-1)") in text
    # Without a check that needs approval there is no approval document to point at.
    assert "needs approval" not in text
    assert "mitigation tasks started for its checks are in the timeline" in text

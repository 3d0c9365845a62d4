"""The on-demand audit document as dev and prod register it: its steps against the iot API model, every
reference declared, the summary module embedded as it is, the checks it offers, and its role."""

from __future__ import annotations

import json
from typing import Any

import botocore.session  # type: ignore[import-untyped]
import pytest
import yaml

import stack_outputs as out
from components.on_demand_audit import on_demand_audit_document, summary_script
from functions import audit_summary
from functions.audit_summary import SUMMARY_TYPES
from harness.mockstack import ACCOUNT_ID, StackRun
from settings.facts import CRITICAL_AUDIT_CHECKS
from tests.components.test_response import reference_problems
from tests.support.iam_reference import authorisation_gaps

DOCUMENT = "fleetguard-{stack}-on-demand-audit"
API_ACTIONS = ("aws:executeAwsApi", "aws:waitForAwsResourceProperty")
ACTION_INPUTS = {"Service", "Api", "PropertySelector", "DesiredValues"}
"""Inputs of the API actions that are the action's own, not the API operation's parameters."""


def registered_document(run: StackRun) -> tuple[dict[str, Any], dict[str, Any]]:
    resource = run.by_name(DOCUMENT.format(stack=run.stack) + "-document")
    content: dict[str, Any] = yaml.safe_load(resource.inputs["content"])
    return resource.inputs, content


def api_problems(document: dict[str, Any]) -> list[str]:
    """API steps whose operation, parameters or selectors the botocore model does not have."""
    session = botocore.session.get_session()
    problems: list[str] = []
    for step in document["mainSteps"]:
        if step["action"] not in API_ACTIONS:
            continue
        inputs = step["inputs"]
        operation = session.get_service_model(inputs["Service"]).operation_model(inputs["Api"])
        parameters = set(inputs) - ACTION_INPUTS
        unknown = parameters - set(operation.input_shape.members)
        missing = set(operation.input_shape.required_members) - parameters
        problems += [f"{step['name']}: {inputs['Api']} has no parameter {name}" for name in sorted(unknown)]
        problems += [f"{step['name']}: {inputs['Api']} requires {name}" for name in sorted(missing)]
        selectors = [inputs.get("PropertySelector")] + [output["Selector"] for output in step.get("outputs", [])]
        for selector in filter(None, selectors):
            member = selector.removeprefix("$.").split(".")[0]
            if member not in operation.output_shape.members:
                problems.append(f"{step['name']}: {inputs['Api']} answers no {member} ({selector})")
    return problems


def test_the_document_starts_waits_for_and_summarises_an_audit(any_stack: StackRun) -> None:
    inputs, document = registered_document(any_stack)
    assert inputs["documentType"] == "Automation"
    assert inputs["documentFormat"] == "YAML"
    assert any_stack.outputs[out.ON_DEMAND_AUDIT_DOCUMENT_NAME] == DOCUMENT.format(stack=any_stack.stack)
    assert document["schemaVersion"] == "0.3"
    steps = document["mainSteps"]
    assert [(step["name"], step["action"]) for step in steps] == [
        ("StartAudit", "aws:executeAwsApi"),
        ("WaitForAudit", "aws:waitForAwsResourceProperty"),
        ("Summarise", "aws:executeScript"),
    ]
    assert steps[0]["inputs"]["targetCheckNames"] == "{{ CheckNames }}"
    wait = steps[1]
    assert wait["inputs"]["taskId"] == "{{ StartAudit.TaskId }}"
    # Every terminal status, and only those: an IN_PROGRESS task keeps the wait going.
    audit_statuses = botocore.session.get_session().get_service_model("iot").shape_for("AuditTaskStatus").enum
    assert set(wait["inputs"]["DesiredValues"]) == set(audit_statuses) - {"IN_PROGRESS"}
    assert wait["timeoutSeconds"] <= 3600
    assert wait["onFailure"] == "step:Summarise"
    summary = steps[2]
    assert summary["timeoutSeconds"] <= 600
    assert summary["inputs"]["Runtime"] == "python3.11"
    assert summary["inputs"]["InputPayload"] == {"taskId": "{{ StartAudit.TaskId }}"}
    assert {o["Name"]: (o["Selector"], o["Type"]) for o in summary["outputs"]} == {
        key: (f"$.Payload.{key}", kind) for key, kind in SUMMARY_TYPES.items()
    }
    assert summary["isEnd"] is True


def test_every_reference_is_declared_and_every_api_call_matches_the_iot_model(any_stack: StackRun) -> None:
    _, document = registered_document(any_stack)
    assert reference_problems(document) == []
    assert api_problems(document) == []


def test_the_api_check_catches_a_misspelt_parameter_and_selector() -> None:
    document = on_demand_audit_document(document_name="d", default_checks=["A"], allowed_checks=["A"], role_arn="r")
    start, wait, _ = document["mainSteps"]
    start["inputs"]["checkNames"] = start["inputs"].pop("targetCheckNames")
    wait["inputs"]["PropertySelector"] = "$.status"
    assert api_problems(document) == [
        "StartAudit: StartOnDemandAuditTask has no parameter checkNames",
        "StartAudit: StartOnDemandAuditTask requires targetCheckNames",
        "WaitForAudit: DescribeAuditTask answers no status ($.status)",
    ]


def test_the_script_step_runs_the_tested_summary_module_as_it_is(prod_stack: StackRun) -> None:
    _, document = registered_document(prod_stack)
    script = document["mainSteps"][2]["inputs"]["Script"]
    assert script == summary_script()
    with open(audit_summary.__file__, encoding="utf-8") as source:
        assert script == source.read()
    namespace: dict[str, Any] = {}
    exec(compile(script, "script", "exec"), namespace)
    assert callable(namespace[document["mainSteps"][2]["inputs"]["Handler"]])
    # Only the standard library at load time: SSM's runtime has boto3, nothing of ours.
    assert "from functions" not in script


def test_dev_offers_only_the_checks_its_audit_configuration_enables(dev_stack: StackRun) -> None:
    _, document = registered_document(dev_stack)
    checks = document["parameters"]["CheckNames"]
    # Dev exempts DEVICE_CERTIFICATE_SHARED_CHECK: AWS would refuse to audit it on demand.
    assert "DEVICE_CERTIFICATE_SHARED_CHECK" not in checks["allowedValues"]
    assert "DEVICE_CERTIFICATE_AGE_CHECK" not in checks["allowedValues"]
    assert checks["default"] == [name for name in CRITICAL_AUDIT_CHECKS if name != "DEVICE_CERTIFICATE_SHARED_CHECK"]
    assert set(checks["default"]) <= set(checks["allowedValues"])


def test_prod_audits_every_critical_check_by_default(prod_stack: StackRun) -> None:
    _, document = registered_document(prod_stack)
    assert sorted(document["parameters"]["CheckNames"]["default"]) == sorted(CRITICAL_AUDIT_CHECKS)


def test_without_an_enabled_check_the_responder_names_the_checks() -> None:
    document = on_demand_audit_document(document_name="d", default_checks=[], allowed_checks=[], role_arn="r")
    assert document["parameters"]["CheckNames"] == {
        "type": "StringList",
        "description": "Audit checks to run (only checks the account audit configuration enables).",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_role_may_only_start_and_read_audits_in_the_stacks_region(
    stack: str, request: pytest.FixtureRequest,
) -> None:
    run: StackRun = request.getfixturevalue(f"{stack}_stack")
    name = DOCUMENT.format(stack=stack)
    role = run.by_name(f"{name}-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    policy = run.by_name(f"{name}-policy")
    assert policy.inputs["role"] == role.id
    (grant,) = json.loads(policy.inputs["policy"])["Statement"]
    assert grant["Action"] == ["iot:DescribeAuditTask", "iot:ListAuditFindings", "iot:StartOnDemandAuditTask"]
    # These actions authorise against no resource type; the region condition is what scopes them.
    assert grant["Resource"] == ["*"]
    assert grant["Condition"] == {"StringEquals": {"aws:RequestedRegion": run.config.get("aws:region", "us-east-1")}}
    assert authorisation_gaps(policy.inputs["policy"]) == []
    _, document = registered_document(run)
    assert document["parameters"]["AutomationAssumeRole"]["default"] == role.outputs["arn"]
    assert run.outputs[out.ON_DEMAND_AUDIT_ROLE_ARN] == role.outputs["arn"]
    # A responder may start it as soon as it exists.
    assert policy.urn in run.by_name(f"{name}-document").dependencies

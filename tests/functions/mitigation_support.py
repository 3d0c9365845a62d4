"""Device Defender's audit mitigation tasks as the API keeps them, for the intake and approval document
tests (moto has no audit mitigation; this module holds no tests).

Each request is validated against the botocore model first, so a request AWS would refuse fails here too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

from tests.functions.intake_support import REGION

TASK_RUNNING = "IN_PROGRESS"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}


@dataclass
class DeviceDefenderTasks:
    """Audit mitigation tasks by id: a task id starts one task, ever; a second start of it is refused with
    TaskAlreadyExistsException. ``starts`` keeps every start request, refused ones included."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    starts: list[dict[str, Any]] = field(default_factory=list)
    throttle_starts: int = 0
    """Start requests still to answer with ThrottlingException (what is left after the client's retries)."""
    hidden_describes: int = 0
    """Describe requests still to answer with ResourceNotFoundException (a task not visible yet)."""

    def __post_init__(self) -> None:
        self._client = boto3.client("iot", region_name=REGION)
        self.exceptions = self._client.exceptions

    def _validated(self, operation: str, request: Mapping[str, Any]) -> None:
        validate_parameters(dict(request), self._client.meta.service_model.operation_model(operation).input_shape)

    def start_audit_mitigation_actions_task(self, **request: Any) -> dict[str, Any]:
        self._validated("StartAuditMitigationActionsTask", request)
        self.starts.append(request)
        if self.throttle_starts:
            self.throttle_starts -= 1
            raise self.exceptions.ThrottlingException(_error("ThrottlingException", "Rate exceeded"),
                                                      "StartAuditMitigationActionsTask")
        task_id = request["taskId"]
        if task_id in self.tasks:
            refusal = _error("TaskAlreadyExistsException", f"Task {task_id} already exists")
            raise self.exceptions.TaskAlreadyExistsException(refusal, "StartAuditMitigationActionsTask")
        self.tasks[task_id] = {
            "taskStatus": TASK_RUNNING,
            "target": request["target"],
            "auditCheckToActionsMapping": request["auditCheckToActionsMapping"],
        }
        return {"taskId": task_id}

    def describe_audit_mitigation_actions_task(self, **request: Any) -> dict[str, Any]:
        self._validated("DescribeAuditMitigationActionsTask", request)
        task = self.tasks.get(request["taskId"])
        if task is None or self.hidden_describes:
            self.hidden_describes = max(0, self.hidden_describes - 1)
            raise self.exceptions.ResourceNotFoundException(
                _error("ResourceNotFoundException", "No such task"), "DescribeAuditMitigationActionsTask"
            )
        return dict(task)

    def started_checks(self) -> dict[str, list[str]]:
        """Each task's check and actions, by task id."""
        return {
            task_id: [f"{check}:{','.join(actions)}" for check, actions in task["auditCheckToActionsMapping"].items()]
            for task_id, task in self.tasks.items()
        }


def run_approval_document(document: str, parameters: Mapping[str, str], tasks: DeviceDefenderTasks) -> str:
    """Execute the approval Automation document the way SSM Automation would, against ``tasks``: the branch
    picks the check's start step; a refused start (not critical) goes on to the confirm step, which asserts
    the task's status. Returns the execution's final status (Success or Failed)."""
    content = json.loads(document)
    declared = content["parameters"]
    for name, value in parameters.items():
        allowed = declared[name].get("allowedValues")
        assert allowed is None or value in allowed, f"{name}={value} is not an allowed value"

    variables = {**parameters, "automation:EXECUTION_ID": str(uuid.uuid4())}

    def interpolate(value: Any) -> Any:
        if isinstance(value, str):
            for name, given in variables.items():
                value = value.replace(f"{{{{ {name} }}}}", given)
            assert "{{" not in value, f"no value for {value}"
            return value
        if isinstance(value, list):
            return [interpolate(item) for item in value]
        if isinstance(value, dict):
            return {interpolate(key): interpolate(item) for key, item in value.items()}
        return value

    steps = {step["name"]: step for step in content["mainSteps"]}
    step = content["mainSteps"][0]
    while True:
        inputs = interpolate(step["inputs"])
        if step["action"] == "aws:branch":
            [choice] = [choice for choice in inputs["Choices"] if choice["Variable"] == choice["StringEquals"]]
            step = steps[choice["NextStep"]]
            continue
        request = {key: value for key, value in inputs.items()
                   if key not in {"Service", "Api", "PropertySelector", "DesiredValues"}}
        assert inputs["Service"] == "iot"
        if step["action"] == "aws:executeAwsApi":
            try:
                tasks.start_audit_mitigation_actions_task(**request)
            except tasks.exceptions.TaskAlreadyExistsException:
                assert step["onFailure"] == f"step:{step['nextStep']}"
                assert step["isCritical"] is False
            step = steps[step["nextStep"]]
            continue
        assert step["action"] == "aws:assertAwsResourceProperty"
        assert inputs["PropertySelector"] == "$.taskStatus"
        try:
            status = tasks.describe_audit_mitigation_actions_task(**request)["taskStatus"]
        except tasks.exceptions.ResourceNotFoundException:
            return "Failed"
        return "Success" if status in inputs["DesiredValues"] else "Failed"

"""``fleetguard:audit:OnDemandAudit``: an SSM Automation document a responder runs from the console during an
incident to audit the account now, not at the next scheduled audit.

It starts a Device Defender on-demand audit of the chosen checks (by default the enabled critical ones),
waits for the task to finish, and summarises the findings by check into the execution's outputs. The
summary is ``functions/audit_summary.py``, embedded verbatim as the script step. Audit works in every
account (unlike Detect), so the document is always deployed; its role may start and read audits only, in
the stack's region (the audit actions authorise against no resource type, hence ``"*"`` with the
region condition).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.automation import automation_yaml
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, unscoped_statement
from functions import audit_summary
from functions.audit_summary import HANDLER, SUMMARY_TYPES, TASK_ID_FIELD
from settings.facts import ON_DEMAND_AUDIT_ROLE, ROLE_TAG_KEY

START_STEP: Final = "StartAudit"
WAIT_STEP: Final = "WaitForAudit"
SUMMARY_STEP: Final = "Summarise"
CHECKS_PARAMETER: Final = "CheckNames"
ROLE_PARAMETER: Final = "AutomationAssumeRole"
TASK_ID_OUTPUT: Final = "TaskId"
FINISHED_TASK_STATUSES: Final = ("COMPLETED", "FAILED", "CANCELED")
"""DescribeAuditTask's terminal ``taskStatus`` values (the model's AuditTaskStatus, less IN_PROGRESS)."""
AUDIT_WAIT_TIMEOUT_SECONDS: Final = 3600
"""The wait action's own default: an audit of the critical checks takes minutes, a large account's
certificates longer. Past it the summary still runs and reports the task as IN_PROGRESS."""
SUMMARY_TIMEOUT_SECONDS: Final = 600
"""The longest an ``aws:executeScript`` step may run."""
SCRIPT_RUNTIME: Final = "python3.11"
"""The newest Python runtime ``aws:executeScript`` offers (3.8 and older can no longer be run)."""
AUDIT_ACTIONS: Final = ("iot:StartOnDemandAuditTask", "iot:DescribeAuditTask", "iot:ListAuditFindings")


class OnDemandAuditArgs(DeploymentArgs):
    """Inputs of the on-demand audit component."""

    default_checks: Sequence[str]
    """What the document audits unless the responder chooses: the enabled critical checks (every enabled
    check when each critical one is exempted)."""
    allowed_checks: Sequence[str]
    """The checks the account audit configuration enables: AWS refuses an on-demand audit of any other."""


class OnDemandAuditComponent(pulumi.ComponentResource):
    """The document (named after the component) and the role it runs as."""

    document: aws.ssm.Document
    document_name: str
    role: aws.iam.Role

    def __init__(self, name: str, args: OnDemandAuditArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:audit:OnDemandAudit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = service_role(
            f"{name}-role", "ssm.amazonaws.com", account_id=args["account_id"],
            description=f"Assumed by SSM Automation while running {name}", tags=args["tags"], opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policy_document(unscoped_statement(list(AUDIT_ACTIONS), args["region"], sid="RunAndReadAudits")),
            opts=child,
        )
        content = self.role.arn.apply(lambda role_arn: automation_yaml(on_demand_audit_document(
            document_name=name,
            default_checks=args["default_checks"],
            allowed_checks=args["allowed_checks"],
            role_arn=role_arn,
        )))
        self.document_name = name
        self.document = aws.ssm.Document(
            f"{name}-document",
            name=name,
            document_type="Automation",
            document_format="YAML",
            content=content,
            # Tells the policy pack this Automation document is not the incident runbook.
            tags={**args["tags"], ROLE_TAG_KEY: ON_DEMAND_AUDIT_ROLE},
            # A responder may run it as soon as it exists: its role must already work.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs({"documentName": self.document.name, "roleArn": self.role.arn})


def summary_script() -> str:
    """The script step's source: the summary module as it is, so what the tests exercise is what runs."""
    return inspect.getsource(audit_summary)


def on_demand_audit_document(
    *, document_name: str, default_checks: Sequence[str], allowed_checks: Sequence[str], role_arn: str,
) -> dict[str, Any]:
    """The Automation document (schema 0.3): start the audit, wait for it, summarise it."""
    task_id = f"{{{{ {START_STEP}.{TASK_ID_OUTPUT} }}}}"
    return {
        "schemaVersion": "0.3",
        "description": (
            f"# {document_name}\n\n"
            "Audit the account's AWS IoT configuration now: start a Device Defender on-demand audit of the "
            "chosen checks, wait for it, and summarise the findings by check (the outputs of the "
            f"`{SUMMARY_STEP}` step). Findings also reach the alert topic and Security Hub like any audit's."
        ),
        "assumeRole": f"{{{{ {ROLE_PARAMETER} }}}}",
        "parameters": {
            CHECKS_PARAMETER: {
                "type": "StringList",
                "description": "Audit checks to run (only checks the account audit configuration enables).",
                # With every check disabled there is nothing to offer: the responder names the checks.
                **({"default": list(default_checks), "allowedValues": list(allowed_checks)} if allowed_checks else {}),
            },
            ROLE_PARAMETER: {
                "type": "String",
                "description": "Role the automation assumes; it may start and read Device Defender audits only.",
                "default": role_arn,
            },
        },
        "outputs": [f"{SUMMARY_STEP}.{key}" for key in SUMMARY_TYPES],
        "mainSteps": [
            {
                "name": START_STEP,
                "action": "aws:executeAwsApi",
                "description": "Start the on-demand audit task.",
                "inputs": {
                    "Service": "iot",
                    "Api": "StartOnDemandAuditTask",
                    "targetCheckNames": f"{{{{ {CHECKS_PARAMETER} }}}}",
                },
                "outputs": [{"Name": TASK_ID_OUTPUT, "Selector": "$.taskId", "Type": "String"}],
                "nextStep": WAIT_STEP,
            },
            {
                "name": WAIT_STEP,
                "action": "aws:waitForAwsResourceProperty",
                "description": "Wait until the audit task has finished (completed, failed or canceled).",
                "timeoutSeconds": AUDIT_WAIT_TIMEOUT_SECONDS,
                # Summarise what the audit found so far rather than end with nothing.
                "onFailure": f"step:{SUMMARY_STEP}",
                "inputs": {
                    "Service": "iot",
                    "Api": "DescribeAuditTask",
                    "taskId": task_id,
                    "PropertySelector": "$.taskStatus",
                    "DesiredValues": list(FINISHED_TASK_STATUSES),
                },
                "nextStep": SUMMARY_STEP,
            },
            {
                "name": SUMMARY_STEP,
                "action": "aws:executeScript",
                "description": "Summarise the findings by check; suppressed findings are counted apart.",
                "timeoutSeconds": SUMMARY_TIMEOUT_SECONDS,
                "inputs": {
                    "Runtime": SCRIPT_RUNTIME,
                    "Handler": HANDLER,
                    "InputPayload": {TASK_ID_FIELD: task_id},
                    "Script": summary_script(),
                },
                "outputs": [
                    {"Name": key.value, "Selector": f"$.Payload.{key}", "Type": kind}
                    for key, kind in SUMMARY_TYPES.items()
                ],
                "isEnd": True,
            },
        ],
    }

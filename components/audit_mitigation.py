"""Audit mitigation: the mitigation actions audit findings need beyond the quarantine's, the intake's
per-check mapping of them, and the Automation document through which a responder approves a check's
mitigation.

The actions: deactivate CA certificates (UPDATE_CA_CERTIFICATE), replace an IoT policy's default version
with a blank one (REPLACE_DEFAULT_POLICY_VERSION) and publish findings to the responders topic
(PUBLISH_FINDING_TO_SNS). The topic is KMS-encrypted, and the AWS managed policy for the last allows
sns:Publish on every topic but no use of a key, so that action's role gets its own two statements.

The approval document (``<name>``, parameters ``AuditTaskId`` and ``CheckName``) starts the task the
intake would have started, under the same id (``functions.contract_mitigation.mitigation_task_id``), with
aws:executeAwsApi: no function of its own. A second run, or a run after the intake started the task, is
refused with TaskAlreadyExistsException; the step is not critical and the next one asserts the task
exists and is running or done, so every run ends confirming the one task. Its role may start and read
audit mitigation tasks and nothing else; neither call supports a resource type, so ``*`` is the only
resource IAM accepts for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, statement, unscoped_statement
from components.mitigation_actions import (
    DEACTIVATE_CA_CERTIFICATE,
    PUBLISH_FINDING,
    REPLACE_DEFAULT_POLICY_VERSION,
    create_mitigation_action,
)
from functions.contract_mitigation import (
    AUDIT_TASK_ID_PARAMETER,
    CHECK_NAME_PARAMETER,
    CheckActions,
    mitigation_task_id,
    render_mitigations,
)
from functions.messages import AUDIT_TASK_ID_PATTERN
from settings.audit_mitigations import Approval, CheckMitigation, MitigationActionKey
from settings.facts import AUDIT_MITIGATION_ROLE, ROLE_TAG_KEY

TASK_ACTIONS: Final = ("iot:DescribeAuditMitigationActionsTask", "iot:StartAuditMitigationActionsTask")
"""What starting and confirming an audit mitigation task takes (both authorised against ``*`` only)."""
CONFIRMED_STATUSES: Final = ("IN_PROGRESS", "COMPLETED")
"""A started task's statuses that count as the approval having taken effect."""
CONFIRM_STEP: Final = "ConfirmTask"
EXECUTION_ID: Final = "{{ automation:EXECUTION_ID }}"
"""SSM Automation's variable for the running execution's id (a UUID)."""


class AuditMitigationArgs(DeploymentArgs):
    """Inputs of the audit mitigation component."""

    mitigations: tuple[CheckMitigation, ...]
    """The validated ``audit.mitigations``."""
    quarantine_actions: Mapping[MitigationActionKey, aws_native.iot.MitigationAction]
    """The quarantine component's actions, by the key ``audit.mitigations`` names them with."""
    responders_topic_arn: pulumi.Input[str]
    """Where PUBLISH_FINDING_TO_SNS publishes."""
    key_arn: pulumi.Input[str]
    """The key encrypting that topic."""


class AuditMitigationComponent(pulumi.ComponentResource):
    """The audit mitigation actions, the mapping the intake applies, and the approval document."""

    actions: dict[MitigationActionKey, aws_native.iot.MitigationAction]
    """Every mitigation action of the stack, the quarantine's included."""
    own_actions: list[aws_native.iot.MitigationAction]
    mitigations_json: pulumi.Output[str]
    """AUDIT_MITIGATIONS: each mapped check's action names and whether it needs approval."""
    automatic: bool
    """Some check is mitigated without approval (the intake then starts tasks)."""
    document: aws.ssm.Document | None
    document_name: str | None
    document_role: aws.iam.Role | None

    def __init__(self, name: str, args: AuditMitigationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:audit:Mitigation", name, None, opts)
        native = aws_native.iot
        params = native.MitigationActionActionParamsArgs
        deactivate_ca = create_mitigation_action(self, name, DEACTIVATE_CA_CERTIFICATE, args, params(
            update_ca_certificate_params=native.MitigationActionUpdateCaCertificateParamsArgs(
                action=native.MitigationActionUpdateCaCertificateParamsAction.DEACTIVATE,
            ),
        ))
        blank_policy = create_mitigation_action(self, name, REPLACE_DEFAULT_POLICY_VERSION, args, params(
            replace_default_policy_version_params=native.MitigationActionReplaceDefaultPolicyVersionParamsArgs(
                template_name=native.MitigationActionReplaceDefaultPolicyVersionParamsTemplateName.BLANK_POLICY,
            ),
        ))
        publish = create_mitigation_action(
            self, name, PUBLISH_FINDING, args,
            params(publish_finding_to_sns_params=native.MitigationActionPublishFindingToSnsParamsArgs(
                topic_arn=args["responders_topic_arn"],
            )),
            statements=[
                statement(["sns:Publish"], [args["responders_topic_arn"]], sid="PublishFindings"),
                # The topic is encrypted: SNS encrypts each message under a data key made for the publisher.
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [args["key_arn"]], sid="EncryptFindings"),
            ],
        )
        self.own_actions = [deactivate_ca, blank_policy, publish]
        self.actions = {
            **args["quarantine_actions"],
            MitigationActionKey.DEACTIVATE_CA_CERTIFICATE: deactivate_ca,
            MitigationActionKey.REPLACE_DEFAULT_POLICY_VERSION: blank_policy,
            MitigationActionKey.PUBLISH_FINDING: publish,
        }
        mitigations = args["mitigations"]
        self.automatic = any(entry.approval is Approval.AUTOMATIC for entry in mitigations)
        self.mitigations_json = self._action_names(mitigations).apply(render_mitigations)
        self.document, self.document_role, self.document_name = None, None, None
        approved = [entry for entry in mitigations if entry.approval is Approval.REQUIRED]
        if approved:
            self._approval_document(name, args, approved)
        self.register_outputs({
            "actionArns": [action.mitigation_action_arn for action in self.own_actions],
            "documentName": self.document.name if self.document is not None else None,
        })

    def _action_names(self, mitigations: tuple[CheckMitigation, ...]) -> pulumi.Output[dict[str, CheckActions]]:
        """Each mapped check's actions by their deployed names (known once the actions exist)."""
        names = {key: action.action_name for key, action in self.actions.items()}

        def resolve(resolved: dict[str, Any]) -> dict[str, CheckActions]:
            return {
                entry.check_name: CheckActions(
                    tuple(str(resolved[key.value]) for key in entry.actions),
                    entry.approval is Approval.REQUIRED,
                )
                for entry in mitigations
            }

        return pulumi.Output.all(**{key.value: name for key, name in names.items()}).apply(resolve)

    def _approval_document(self, name: str, args: DeploymentArgs, approved: list[CheckMitigation]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        self.document_role = service_role(
            f"{name}-document-role", "ssm.amazonaws.com", account_id=args["account_id"],
            description=f"Assumed by SSM Automation while running {name}: starts approved audit mitigation tasks",
            tags=args["tags"], opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-document-policy",
            role=self.document_role.id,
            policy=policy_document(unscoped_statement(TASK_ACTIONS, args["region"], sid="StartApprovedMitigation")),
            opts=child,
        )
        content = pulumi.Output.all(self._action_names(tuple(approved)), self.document_role.arn).apply(
            lambda resolved: approval_document(resolved[0], role_arn=resolved[1])
        )
        self.document_name = name
        self.document = aws.ssm.Document(
            f"{name}-document",
            name=name,
            document_type="Automation",
            document_format="JSON",
            content=content,
            # Tells the policy pack this Automation document is not the incident runbook.
            tags={**args["tags"], ROLE_TAG_KEY: AUDIT_MITIGATION_ROLE},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )


def approval_document(checks: Mapping[str, CheckActions], *, role_arn: str) -> str:
    """The Automation document (schema 0.3, JSON) that starts one approved check's mitigation task."""
    task_id = mitigation_task_id(f"{{{{ {AUDIT_TASK_ID_PARAMETER} }}}}", f"{{{{ {CHECK_NAME_PARAMETER} }}}}")
    ordered = sorted(checks)
    start_steps = [
        {
            "name": f"Start{index}",
            "description": f"Start the mitigation task for {check}",
            "action": "aws:executeAwsApi",
            # Refused when the task exists already (approved before, or started by the intake): go on to confirm it.
            "onFailure": f"step:{CONFIRM_STEP}",
            "isCritical": False,
            "nextStep": CONFIRM_STEP,
            "inputs": {
                "Service": "iot",
                "Api": "StartAuditMitigationActionsTask",
                "taskId": task_id,
                "target": {"auditTaskId": f"{{{{ {AUDIT_TASK_ID_PARAMETER} }}}}"},
                "auditCheckToActionsMapping": {check: list(checks[check].actions)},
                # Required by the API; the task id, not the token, is what makes a second run start nothing.
                "clientRequestToken": EXECUTION_ID,
            },
        }
        for index, check in enumerate(ordered, start=1)
    ]
    document = {
        "schemaVersion": "0.3",
        "description": "fleetguard: approve the Device Defender mitigation of one audit check's findings",
        "assumeRole": role_arn,
        "parameters": {
            AUDIT_TASK_ID_PARAMETER: {
                "type": "String",
                "description": "The audit task whose findings to mitigate (from the audit notification)",
                "allowedPattern": f"^{AUDIT_TASK_ID_PATTERN.pattern}$",
            },
            CHECK_NAME_PARAMETER: {
                "type": "String",
                "description": "The audit check whose mitigation is approved",
                "allowedValues": ordered,
            },
        },
        "mainSteps": [
            {
                "name": "ChooseCheck",
                "action": "aws:branch",
                "inputs": {
                    "Choices": [
                        {"NextStep": step["name"], "Variable": f"{{{{ {CHECK_NAME_PARAMETER} }}}}",
                         "StringEquals": check}
                        for step, check in zip(start_steps, ordered, strict=True)
                    ],
                },
            },
            *start_steps,
            {
                "name": CONFIRM_STEP,
                "description": "The task exists for this audit and check, and runs or ran",
                "action": "aws:assertAwsResourceProperty",
                "isEnd": True,
                "inputs": {
                    "Service": "iot",
                    "Api": "DescribeAuditMitigationActionsTask",
                    "taskId": task_id,
                    "PropertySelector": "$.taskStatus",
                    "DesiredValues": list(CONFIRMED_STATUSES),
                },
            },
        ],
    }
    return json.dumps(document, indent=2)

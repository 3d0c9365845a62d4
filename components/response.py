"""Incident response: the SSM Automation runbook an incident runs, the Incident Manager response plan that
opens incidents, engages people and starts the runbook, and saved Logs Insights queries for forensics.

The runbook contains exactly the incident's devices: Incident Manager hands it the incident record ARN
(a dynamic parameter) and the contain function reads the things from the incident's INVOLVED_RESOURCE
related items; without Incident Manager the intake starts it with the OpsCenter OpsItem instead, whose
``/aws/resources`` name the device. Every step output a later step uses is declared with a selector (the
reference sample referenced one it never declared). With neither Incident Manager nor OpsCenter there is
no incident to run a runbook for, so only the queries are created and the intake contains devices itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import yaml

from components.arns import arn
from components.contacts import incident_manager_tags
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, statement
from functions.contract import OUTPUT_TYPES, OutputKey, RequestField, Status
from settings.facts import IOT_LOG_GROUP
from settings.response import IncidentResponseSettings

CONTAIN_STEP: Final = "Contain"
INCIDENT_PARAMETER: Final = "IncidentRecordArn"
OPS_ITEM_PARAMETER: Final = "OpsItemId"
ROLE_PARAMETER: Final = "AutomationAssumeRole"
CONTAIN_STEP_TIMEOUT_SECONDS: Final = 300
"""The longest an ``aws:invokeLambdaFunction`` step waits (and the contain function's own ceiling)."""
# Each incident parameter is optional (a run gets one or the other), so each pattern also takes "".
INCIDENT_RECORD_ARN_PATTERN: Final = (
    r"^(arn:aws(-cn|-us-gov)?:ssm-incidents:[a-z0-9-]*:[0-9]{12}:incident-record/.+)?$"
)
OPS_ITEM_ID_PATTERN: Final = r"^(oi-[0-9a-f]{12})?$"
"""The ssm model's OpsItemId pattern (``^(oi)-[0-9a-f]{12}$``), or empty."""
ROLE_ARN_PATTERN: Final = r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/.+$"

# Saved queries (name suffix -> query). IoT v2 log entries carry clientId, eventType, status, topicName,
# sourceIp, principalId and reason; the handlers log JSON through Powertools (level, message, service).
DEVICE_QUERIES: Final[Mapping[str, str]] = {
    "device-activity": (
        "fields @timestamp, eventType, status, topicName, sourceIp, principalId, reason\n"
        '| filter clientId = "REPLACE_WITH_THING_NAME"\n'
        "| sort @timestamp desc\n| limit 500"
    ),
    "authorization-failures": (
        'filter status = "Failure"\n'
        "| stats count(*) as failures by clientId, eventType, reason\n"
        "| sort failures desc\n| limit 100"
    ),
    "connections-by-source-ip": (
        'filter eventType in ["Connect", "Disconnect"]\n'
        "| stats count(*) as events, count_distinct(clientId) as clients by sourceIp, eventType\n"
        "| sort events desc\n| limit 100"
    ),
}
CONTAINMENT_QUERY: Final = (
    "fields @timestamp, service, level, message, thing_name, incident_record_arn, error\n"
    "| sort @timestamp desc\n| limit 1000"
)


class ResponseArgs(DeploymentArgs):
    """Inputs of the incident response component."""

    settings: IncidentResponseSettings
    """Validated incident response settings (runbook name, Incident Manager switch, impact rules)."""
    engagement_arns: Sequence[pulumi.Input[str]]
    """Contacts or escalation plans the response plan engages (empty when Incident Manager is off)."""
    contain_function_arn: pulumi.Input[str]
    """The contain function the runbook invokes with ``{"incidentRecordArn": ..., "opsItemId": ...}``."""
    release_function_name: pulumi.Input[str]
    """The release function responders invoke once a device is clean (named in the Recovery step)."""
    containment_log_groups: Sequence[pulumi.Input[str]]
    """Log groups of the contain and release functions, for the containment-actions query."""
    quarantine_group_name: str
    """The quarantine thing group (named in the manual containment instructions)."""
    responders_topic_arn: pulumi.Input[str]
    """Notified of every incident update (notification target)."""


class ResponseComponent(pulumi.ComponentResource):
    """Runbook, its role, the role Incident Manager starts it with, the response plan, and the saved
    forensic queries. With Incident Manager off: the runbook and its role when OpsCenter is on (the intake
    starts it), otherwise only the queries."""

    runbook: aws.ssm.Document | None
    runbook_role: aws.iam.Role | None
    incident_manager_role: aws.iam.Role | None
    response_plan: aws.ssmincidents.ResponsePlan | None
    queries: list[aws.cloudwatch.QueryDefinition]
    query_names: list[str]

    def __init__(self, name: str, args: ResponseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:response:Response", name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        self.queries = [
            aws.cloudwatch.QueryDefinition(
                f"{name}-query-{suffix}",
                name=f"{name}/{suffix}",
                query_string=query,
                log_group_names=[IOT_LOG_GROUP],
                opts=child,
            )
            for suffix, query in DEVICE_QUERIES.items()
        ]
        self.queries.append(aws.cloudwatch.QueryDefinition(
            f"{name}-query-containment-actions",
            name=f"{name}/containment-actions",
            query_string=CONTAINMENT_QUERY,
            log_group_names=list(args["containment_log_groups"]),
            opts=child,
        ))
        self.query_names = [f"{name}/{suffix}" for suffix in (*DEVICE_QUERIES, "containment-actions")]

        self.runbook = self.runbook_role = self.incident_manager_role = self.response_plan = None
        if settings.incident_manager.enabled or settings.ops_center.enabled:
            self.runbook, self.runbook_role, runbook_policy = self._runbook(name, args)
            if settings.incident_manager.enabled:
                self._incident_manager(name, args, self.runbook, self.runbook_role, runbook_policy)
        self.register_outputs({
            "runbookName": self.runbook.name if self.runbook else None,
            "responsePlanArn": self.response_plan.arn if self.response_plan else None,
            "queryNames": self.query_names,
        })

    def _runbook(self, name: str, args: ResponseArgs) -> tuple[aws.ssm.Document, aws.iam.Role, aws.iam.RolePolicy]:
        """The runbook and its role: Incident Manager starts it with an incident, the intake with an OpsItem."""
        settings = args["settings"]
        tags = args["tags"]
        child = pulumi.ResourceOptions(parent=self)
        # The runbook's own identity: it may invoke the contain function and nothing else.
        runbook_role = service_role(
            f"{name}-runbook-role", "ssm.amazonaws.com", account_id=args["account_id"],
            description=f"Assumed by SSM Automation while running {settings.runbook_name}", tags=tags, opts=child,
        )
        runbook_policy = aws.iam.RolePolicy(
            f"{name}-runbook-policy",
            role=runbook_role.id,
            policy=policy_document(
                statement(["lambda:InvokeFunction"], [args["contain_function_arn"]], sid="InvokeContain"),
            ),
            opts=child,
        )
        content = pulumi.Output.all(args["contain_function_arn"], args["release_function_name"]).apply(
            lambda values: runbook_yaml(
                contain_function_arn=str(values[0]),
                release_function_name=str(values[1]),
                quarantine_group_name=args["quarantine_group_name"],
                query_names=self.query_names,
                runbook_name=settings.runbook_name,
            )
        )
        runbook = aws.ssm.Document(
            f"{name}-runbook",
            name=settings.runbook_name,
            document_type="Automation",
            document_format="YAML",
            content=content,
            tags=tags,
            opts=child,
        )
        return runbook, runbook_role, runbook_policy

    def _incident_manager(
        self, name: str, args: ResponseArgs, runbook: aws.ssm.Document, runbook_role: aws.iam.Role,
        runbook_policy: aws.iam.RolePolicy,
    ) -> None:
        settings = args["settings"]
        manager = settings.incident_manager
        tags = args["tags"]
        child = pulumi.ResourceOptions(parent=self)
        account, region, partition = args["account_id"], args["region"], args["partition"]

        # Incident Manager's identity for starting the runbook: start this document, hand it its role.
        self.incident_manager_role = service_role(
            f"{name}-incident-manager-role", "ssm-incidents.amazonaws.com", account_id=account,
            description=f"Assumed by Incident Manager to start {settings.runbook_name}", tags=tags, opts=child,
        )
        # IAM authorises the start against the runbook (as a document and as any version of it) and
        # against the execution it creates, whose id does not exist until then.
        runbook_resources = [
            arn(partition, "ssm", resource, region=region, account=account)
            for resource in (
                pulumi.Output.concat("document/", runbook.name),
                pulumi.Output.concat("automation-definition/", runbook.name, ":*"),
                "automation-execution/*",
            )
        ]
        start_policy = aws.iam.RolePolicy(
            f"{name}-incident-manager-policy",
            role=self.incident_manager_role.id,
            policy=policy_document(
                statement(["ssm:StartAutomationExecution"], runbook_resources, sid="StartRunbook"),
                statement(
                    ["iam:PassRole"], [runbook_role.arn], sid="PassRunbookRole",
                    condition={"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}},
                ),
            ),
            opts=child,
        )
        notification_topics: list[pulumi.Input[str]] = [
            args["responders_topic_arn"], *manager.extra_notification_topic_arns,
        ]
        self.response_plan = aws.ssmincidents.ResponsePlan(
            f"{name}-plan",
            name=manager.response_plan_name,
            display_name=manager.incident.title,
            incident_template=aws.ssmincidents.ResponsePlanIncidentTemplateArgs(
                title=manager.incident.title,
                # The intake overrides it per incident from the impact rules; this is their default.
                impact=settings.impact_rules.default,
                summary=manager.incident.summary,
                dedupe_string=manager.incident.dedupe_string,
                incident_tags=incident_manager_tags(tags),
                notification_targets=[
                    aws.ssmincidents.ResponsePlanIncidentTemplateNotificationTargetArgs(sns_topic_arn=topic)
                    for topic in notification_topics
                ],
            ),
            engagements=list(args["engagement_arns"]),
            action=aws.ssmincidents.ResponsePlanActionArgs(
                ssm_automations=[
                    aws.ssmincidents.ResponsePlanActionSsmAutomationArgs(
                        document_name=runbook.name,
                        role_arn=self.incident_manager_role.arn,
                        target_account="RESPONSE_PLAN_OWNER_ACCOUNT",
                        dynamic_parameters={INCIDENT_PARAMETER: "INCIDENT_RECORD_ARN"},
                        # Never empty: the provider sends {} for an absent map and the API rejects it.
                        parameters=[
                            aws.ssmincidents.ResponsePlanActionSsmAutomationParameterArgs(
                                name=ROLE_PARAMETER, values=[runbook_role.arn],
                            ),
                        ],
                    ),
                ],
            ),
            tags=incident_manager_tags(tags),
            # The first incident may arrive as soon as the plan exists: its roles must already work.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[runbook_policy, start_policy]),
        )


def runbook_document(
    *,
    contain_function_arn: str,
    release_function_name: str,
    quarantine_group_name: str,
    query_names: Sequence[str],
    runbook_name: str,
) -> dict[str, Any]:
    """The Automation runbook (schema 0.3): Contain (automated), then Analysis and Recovery (people)."""
    queries = "\n".join(f"   - `{query}`" for query in query_names)
    return {
        "schemaVersion": "0.3",
        "description": (
            f"# {runbook_name}\n\n"
            "Response to an AWS IoT Device Defender violation: quarantine the incident's devices, "
            "investigate them, then recover them. Started by Incident Manager with the incident record, or "
            "by the fleetguard intake with the OpsCenter OpsItem."
        ),
        "assumeRole": f"{{{{ {ROLE_PARAMETER} }}}}",
        "parameters": {
            INCIDENT_PARAMETER: {
                "type": "String",
                "description": "The incident record (Incident Manager passes INCIDENT_RECORD_ARN).",
                "default": "",
                "allowedPattern": INCIDENT_RECORD_ARN_PATTERN,
            },
            OPS_ITEM_PARAMETER: {
                "type": "String",
                "description": "The OpsCenter OpsItem (the intake passes it when Incident Manager is not used).",
                "default": "",
                "allowedPattern": OPS_ITEM_ID_PATTERN,
            },
            ROLE_PARAMETER: {
                "type": "String",
                "description": "Role the runbook assumes; it may only invoke the contain function.",
                "allowedPattern": ROLE_ARN_PATTERN,
            },
        },
        "outputs": [f"{CONTAIN_STEP}.{key}" for key in OUTPUT_TYPES],
        "mainSteps": [
            {
                "name": CONTAIN_STEP,
                "action": "aws:invokeLambdaFunction",
                "description": (
                    "Quarantine the devices named in the incident's related items: the contain function "
                    f"adds each to the `{quarantine_group_name}` thing group (whose policy denies all but "
                    "investigation traffic) and marks its shadow."
                ),
                "timeoutSeconds": CONTAIN_STEP_TIMEOUT_SECONDS,
                # Containing twice is safe, so one retry rides out a transient failure.
                "maxAttempts": 2,
                "onFailure": "step:ContainManually",
                "inputs": {
                    "FunctionName": contain_function_arn,
                    "InvocationType": "RequestResponse",
                    "InputPayload": {
                        RequestField.INCIDENT_RECORD_ARN.value: f"{{{{ {INCIDENT_PARAMETER} }}}}",
                        RequestField.OPS_ITEM_ID.value: f"{{{{ {OPS_ITEM_PARAMETER} }}}}",
                        RequestField.REASON.value: f"Incident runbook {runbook_name}",
                    },
                },
                "outputs": [
                    {"Name": key.value, "Selector": f"$.Payload.{key}", "Type": kind}
                    for key, kind in OUTPUT_TYPES.items()
                ],
                "nextStep": "CheckContainment",
            },
            {
                "name": "CheckContainment",
                "action": "aws:branch",
                # A contain function that raised can leave Contain.status unresolved: people take over.
                "onFailure": "step:ContainManually",
                "description": (
                    "Continue to analysis when every device is confirmed quarantined, or when the incident "
                    "names none (audit finding, or an alert storm contained in bulk)."
                ),
                "inputs": {
                    "Choices": [
                        {
                            "NextStep": "Analysis",
                            "Variable": f"{{{{ {CONTAIN_STEP}.{OutputKey.STATUS} }}}}",
                            "StringEquals": status.value,
                        }
                        for status in (Status.CONTAINED, Status.NO_DEVICES)
                    ],
                    "Default": "ContainManually",
                },
            },
            {
                "name": "ContainManually",
                "action": "aws:pause",
                "description": (
                    "## Automatic containment did not complete\n\n"
                    "The devices are the incident's *Involved resources*, or the OpsItem's *Related resources* "
                    "(IoT thing ARNs). For each:\n\n"
                    f"1. `aws iot add-thing-to-thing-group --thing-group-name {quarantine_group_name} "
                    "--thing-name <thing>`\n"
                    "2. If the thing is missing from the registry, revoke its certificate instead: "
                    "`aws iot update-certificate --certificate-id <id> --new-status REVOKED`\n\n"
                    "Resume this automation when every device is isolated."
                ),
                "inputs": {},
                "nextStep": "Analysis",
            },
            {
                "name": "Analysis",
                "action": "aws:pause",
                "description": (
                    "## Analysis\n\n"
                    "Contained devices: this automation's outputs (`Contain.things`) and the incident's "
                    "related items. When `Contain.status` is `NO_DEVICES` the incident names no device: for an "
                    "alert storm, Device Defender mitigation tasks quarantine its devices in bulk (`aws iot "
                    "list-detect-mitigation-actions-executions --task-id <task>`, task ids in the timeline); "
                    "for an audit finding, apply the audit mitigation actions (`aws iot "
                    "start-audit-mitigation-actions-task`). Answer who, what, when, where and why, offline "
                    "first:\n\n"
                    f"1. CloudWatch Logs Insights saved queries (IoT logs in `{IOT_LOG_GROUP}`; quarantined "
                    "devices log at DEBUG):\n"
                    f"{queries}\n"
                    "2. `aws iot list-active-violations --thing-name <thing>` and "
                    "`aws iot list-violation-events --thing-name <thing> --start-time <t> --end-time <t>`.\n"
                    "3. Evidence the device publishes to its forensic topic while quarantined.\n"
                    "4. Online analysis, if needed: open a secure tunnel "
                    "(`aws iotsecuretunneling open-tunnel --destination-config thingName=<thing>,services=SSH "
                    "--timeout-config maxLifetimeTimeoutMinutes=60`) and connect with the local proxy.\n\n"
                    "Record findings in the incident timeline (or the OpsItem's operational data), then resume."
                ),
                "inputs": {},
                "nextStep": "Recovery",
            },
            {
                "name": "Recovery",
                "action": "aws:pause",
                "description": (
                    "## Recovery\n\n"
                    "Decide per device: is it mission critical, is it redundant, does it hold sensitive data, "
                    "can it be reached physically?\n\n"
                    "1. Return it to a known state: a firmware update job to the device (`aws iot create-job "
                    "--job-id <id> --targets <thing ARN> --job-template-arn <recovery job template ARN>`), or a "
                    "factory reset on site.\n"
                    "2. Rotate its credentials if they may have leaked: a new certificate, and "
                    "`aws iot update-certificate --new-status REVOKED` for the old one.\n"
                    "3. Release it from quarantine: `aws lambda invoke --function-name "
                    f"{release_function_name} --cli-binary-format raw-in-base64-out "
                    "--payload '{\"thingName\": \"<thing>\"}' release.json`; add "
                    "`\"opsItemId\": \"<OpsItem id>\"` to the payload to resolve the OpsItem with it.\n"
                    "4. Resolve the incident and start the post-incident analysis.\n\n"
                    "Resume to finish this automation."
                ),
                "inputs": {},
                "isEnd": True,
            },
        ],
    }


class _RunbookDumper(yaml.SafeDumper):
    """Writes multi-line text (the steps' Markdown instructions) as literal blocks, readable in the console."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_RunbookDumper.add_representer(str, _text)


def runbook_yaml(**fields: Any) -> str:
    """``runbook_document`` as the YAML SSM stores."""
    return yaml.dump(runbook_document(**fields), Dumper=_RunbookDumper, sort_keys=False, width=120)

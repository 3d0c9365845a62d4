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
from typing import Final, NotRequired

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.contacts import incident_manager_tags
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, statement
from components.runbook import INCIDENT_PARAMETER, ROLE_PARAMETER, AuditDocuments, TunnelSteps, runbook_yaml
from components.tunnel import TunnelWiring, approval_statements
from settings.facts import IOT_LOG_GROUP
from settings.response import IncidentResponseSettings

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
    tunnel: NotRequired[TunnelWiring | None]
    """With online forensics on: the runbook asks for approval, then invokes the tunnel function."""
    on_demand_audit_document_name: str
    """The on-demand audit Automation document, linked from the runbook's Analysis step."""
    audit_mitigation_document_name: str | None
    """The Automation document that starts an approved audit mitigation (None when no check needs
    approval), linked from the Analysis step."""


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
        tunnel = args.get("tunnel")
        child = pulumi.ResourceOptions(parent=self)
        # The runbook's own identity: it may invoke the contain function and, with online forensics, request
        # the approval and invoke the tunnel function; nothing else.
        runbook_role = service_role(
            f"{name}-runbook-role", "ssm.amazonaws.com", account_id=args["account_id"],
            description=f"Assumed by SSM Automation while running {settings.runbook_name}", tags=tags, opts=child,
        )
        runbook_policy = aws.iam.RolePolicy(
            f"{name}-runbook-policy",
            role=runbook_role.id,
            policy=policy_document(
                statement(["lambda:InvokeFunction"], [args["contain_function_arn"]], sid="InvokeContain"),
                *(approval_statements(tunnel) if tunnel else []),
            ),
            opts=child,
        )
        content = pulumi.Output.all(
            args["contain_function_arn"], args["release_function_name"],
            tunnel.function_arn if tunnel else "", tunnel.approval_topic_arn if tunnel else "",
            args["partition"], args["region"],
        ).apply(
            lambda values: runbook_yaml(
                contain_function_arn=str(values[0]),
                release_function_name=str(values[1]),
                quarantine_group_name=args["quarantine_group_name"],
                query_names=self.query_names,
                runbook_name=settings.runbook_name,
                tunnel=TunnelSteps(tunnel.settings, str(values[2]), str(values[3])) if tunnel else None,
                audit_documents=AuditDocuments(
                    on_demand=args["on_demand_audit_document_name"],
                    mitigation=args["audit_mitigation_document_name"],
                    partition=str(values[4]),
                    region=str(values[5]),
                ),
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

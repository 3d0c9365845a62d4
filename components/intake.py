"""The alert intake: Device Defender alert topic -> encrypted SQS queue (with a dead-letter queue) -> the
intake function, in batches with partial batch failures.

A record that cannot be processed is retried through the queue and, after ``maxReceiveCount`` deliveries,
rests in the dead-letter queue; the records around it are unaffected. SNS deliveries that never reach the
queue land in the same dead-letter queue, so nothing an alert topic accepted is lost silently. The SNS
envelope is kept (raw delivery off): the handler reads the topic and message from it. A small DynamoDB
table records which responders notices were sent, so a redelivered alert sends none again
(``functions/notice_ledger.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypedDict

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.audit_mitigation import TASK_ACTIONS
from components.deployment import DeploymentArgs, deployment_of
from components.function import FunctionArgs, FunctionComponent
from components.iam import (
    OPS_ITEM_STACK_TAG_KEY,
    containment_statements,
    incident_statement,
    ops_item_statement,
    policy_document,
    statement,
    unscoped_statement,
)
from functions.contract import EXPIRES_AT, NOTICE_ID, IntakeEnvironment
from functions.contract_mitigation import AuditMitigationEnvironment
from functions.contract_opscenter import OpsCenterEnvironment
from settings.response import IncidentResponseSettings

REGISTRY_WRITE_TPS: Final = 100
"""AddThingToThingGroup's default rate quota per account (requests per second); containing a storm one
device at a time spends it, so the intake's concurrent invocations share it."""
DLQ_RETENTION_SECONDS: Final = 1_209_600
"""14 days, the SQS maximum: time to notice, fix the cause and redrive."""
INTAKE_QUERY: Final = (
    "fields @timestamp, level, message, thing_name, violation_id, security_profile_name, behavior_name, error\n"
    "| sort @timestamp desc\n| limit 1000"
)


class OpsCenterWiring(TypedDict):
    """What the intake needs to open OpsCenter incidents: the runbook it starts and the escalation it
    schedules."""

    runbook_name: pulumi.Input[str]
    runbook_role_arn: pulumi.Input[str]
    """The role the runbook assumes (passed to SSM Automation)."""
    schedule_group_name: pulumi.Input[str]
    escalation_function_arn: pulumi.Input[str]
    scheduler_role_arn: pulumi.Input[str]
    """The role the escalation schedules run with (passed to EventBridge Scheduler)."""
    escalation_stages: pulumi.Input[str]
    """ESCALATION_STAGES (JSON)."""
    stack_tag: str
    """The ``fleetguard:stack`` tag value every OpsItem carries."""


class AuditMitigationWiring(TypedDict):
    """What the intake needs to mitigate audit findings (``components/audit_mitigation.py``)."""

    mitigations: pulumi.Input[str]
    """AUDIT_MITIGATIONS (JSON)."""
    document_name: pulumi.Input[str] | None
    """The approval document, when some check needs approval."""
    automatic: bool
    """Some check is mitigated without approval: the intake starts tasks."""


class IntakeArgs(DeploymentArgs):
    """Inputs of the intake component."""

    settings: IncidentResponseSettings
    """Validated incident response settings (queue, intake function, storm, impact rules, routing)."""
    alert_topic_arn: pulumi.Input[str]
    """The Device Defender alert topic the queue subscribes to."""
    key_arn: pulumi.Input[str]
    """The alert KMS key: encrypts both queues, decrypts alerts, encrypts responders notifications."""
    responders_topic_arn: pulumi.Input[str]
    """Human-readable notifications (fallback path and audit findings)."""
    response_plan_arn: pulumi.Input[str] | None
    """The response plan incidents are started with; None when Incident Manager is off."""
    response_plan_name: str
    """The response plan's name, to scope the incident records the intake may update."""
    quarantine_group_name: pulumi.Input[str]
    """The quarantine thing group."""
    quarantine_group_arn: pulumi.Input[str]
    """Its ARN, for the containment permission."""
    add_to_quarantine_action_name: pulumi.Input[str | None]
    """The Device Defender mitigation action for bulk (storm) containment (aws-native types it optional)."""
    add_to_quarantine_action_arn: pulumi.Input[str]
    """Its ARN, for the mitigation task permission."""
    security_profile_names: Sequence[str]
    """The stack's security profiles: storms of their violations may be contained in bulk (none when Detect
    is off, and then no bulk containment is granted)."""
    engine_profile_names: Sequence[str]
    """The fleetguard Detect engine's profile names (none when it does not run): storms of its violations
    are contained device by device, since no mitigation task accepts their ids."""
    iot_data_endpoint: pulumi.Input[str]
    """The account's IoT data (ATS) endpoint host for shadow updates, resolved at deploy time."""
    iot_log_group_name: str
    """The AWS IoT v2 log group the handler links Logs Insights related items to."""
    layer_arn: pulumi.Input[str]
    """The Powertools layer."""
    ops_center: OpsCenterWiring | None
    """Set when alerts open OpsCenter incidents (Incident Manager off, OpsCenter on)."""
    audit_mitigation: AuditMitigationWiring | None
    """Set when ``audit.mitigations`` maps a check."""


class IntakeComponent(pulumi.ComponentResource):
    """Queue, dead-letter queue, their policies, the topic subscription, the intake function and its
    event source mapping."""

    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    subscription: aws.sns.TopicSubscription
    notice_table: aws.dynamodb.Table
    function: FunctionComponent
    event_source: aws.lambda_.EventSourceMapping
    query: aws.cloudwatch.QueryDefinition
    query_name: str

    def __init__(self, name: str, args: IntakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:intake:Intake", name, None, opts)
        settings = args["settings"]
        intake = settings.intake
        child = pulumi.ResourceOptions(parent=self)
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{name}-dlq",
            kms_master_key_id=args["key_arn"],
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=args["tags"],
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=f"{name}-queue",
            kms_master_key_id=args["key_arn"],
            visibility_timeout_seconds=intake.visibility_timeout_seconds,
            message_retention_seconds=intake.retention_seconds,
            redrive_policy=pulumi.Output.json_dumps({
                "deadLetterTargetArn": self.dead_letter_queue.arn,
                "maxReceiveCount": intake.max_receive_count,
            }),
            tags=args["tags"],
            opts=child,
        )
        # Only the intake queue may move messages into this dead-letter queue.
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=pulumi.Output.json_dumps({
                "redrivePermission": "byQueue",
                "sourceQueueArns": [self.queue.arn],
            }),
            opts=child,
        )
        policies = [
            aws.sqs.QueuePolicy(
                f"{name}-{label}-policy",
                queue_url=queue.url,
                policy=_alert_topic_may_send(queue.arn, args["alert_topic_arn"]),
                opts=child,
            )
            for label, queue in (("queue", self.queue), ("dlq", self.dead_letter_queue))
        ]
        self.subscription = aws.sns.TopicSubscription(
            f"{name}-subscription",
            topic=args["alert_topic_arn"],
            protocol="sqs",
            endpoint=self.queue.arn,
            # The handler reads the SNS envelope (topic, message id); keep it.
            raw_message_delivery=False,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.dead_letter_queue.arn}),
            # Without the queue policies SNS's first deliveries would be refused.
            opts=pulumi.ResourceOptions(parent=self, depends_on=policies),
        )
        # Items hold notice ids and times, no alert content; still, every table of the stack is under the
        # alert key, so one key policy says who may read any of them.
        self.notice_table = aws.dynamodb.Table(
            f"{name}-notices",
            name=f"{name}-notices",
            billing_mode="PAY_PER_REQUEST",
            hash_key=NOTICE_ID,
            attributes=[aws.dynamodb.TableAttributeArgs(name=NOTICE_ID, type="S")],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=EXPIRES_AT, enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args["key_arn"],
            ),
            tags=args["tags"],
            opts=child,
        )
        self.function = FunctionComponent(
            f"{name}-handler",
            self._function_args(args),
            opts=child,
        )
        self.event_source = aws.lambda_.EventSourceMapping(
            f"{name}-event-source",
            event_source_arn=self.queue.arn,
            function_name=self.function.function.arn,
            batch_size=intake.batch_size,
            # The batching window gathers an alert storm into one batch, which the handler can recognise.
            maximum_batching_window_in_seconds=settings.storm_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            # Few concurrent pollers keep a storm together instead of spreading it over many small batches.
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=intake.max_concurrency,
            ),
            tags=args["tags"],
            # Lambda checks at creation that the function's role can read the queue.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function]),
        )
        self.query_name = f"{name}/intake-decisions"
        self.query = aws.cloudwatch.QueryDefinition(
            f"{name}-query-intake-decisions",
            name=self.query_name,
            query_string=INTAKE_QUERY,
            log_group_names=[self.function.log_group.name],
            opts=child,
        )
        self.register_outputs({
            "queueUrl": self.queue.url,
            "queueArn": self.queue.arn,
            "deadLetterQueueArn": self.dead_letter_queue.arn,
            "functionArn": self.function.function.arn,
        })

    def _function_args(self, args: IntakeArgs) -> FunctionArgs:
        settings = args["settings"]
        manager = settings.incident_manager
        environment = IntakeEnvironment[pulumi.Input[str]](
            quarantine_group_name=args["quarantine_group_name"],
            incident_manager_enabled=manager.enabled,
            response_plan_arn=args["response_plan_arn"],
            responders_topic_arn=args["responders_topic_arn"],
            impact_rules=settings.impact_rules.to_json(),
            audit_routing=settings.audit_routing_json(),
            iot_log_group=args["iot_log_group_name"],
            storm_threshold=settings.storm_threshold,
            storm_window_seconds=settings.storm_window_seconds,
            add_to_quarantine_action_name=pulumi.Output.from_input(args["add_to_quarantine_action_name"]).apply(
                _named_action
            ),
            notice_ledger_table=self.notice_table.name,
            service_name="fleetguard-intake",
            retry_mode=settings.intake.retry_mode,
            iot_data_endpoint=args["iot_data_endpoint"],
            engine_profile_names=tuple(args["engine_profile_names"]),
            containment_rate=(
                containment_rate(settings.intake.max_concurrency) if args["engine_profile_names"] else None
            ),
        )
        ops_center = _ops_center_environment(settings, args["ops_center"])
        mitigation = args["audit_mitigation"]
        mitigation_environment = {} if mitigation is None else AuditMitigationEnvironment[pulumi.Input[str]](
            mitigation["mitigations"], mitigation["document_name"],
        ).to_environment()
        return {
            **deployment_of(args),
            "extra_files": {},
            "handler": "functions.intake.handler",
            "description": "Turns Device Defender alerts into contained devices, incidents and notifications",
            "environment": {
                **environment.to_environment(),
                **(ops_center.to_environment() if ops_center is not None else {}),
                **mitigation_environment,
            },
            "log_level": settings.intake.log_level,
            "statements": self._statements(args),
            "layer_arn": args["layer_arn"],
            "log_retention_days": settings.log_retention_days,
            "timeout_seconds": settings.intake.timeout_seconds,
            "memory_mb": settings.intake.memory_mb,
        }

    def _statements(self, args: IntakeArgs) -> list[dict[str, Any]]:
        partition, region, account = args["partition"], args["region"], args["account_id"]
        statements = [
            statement(["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], [self.queue.arn],
                      sid="ConsumeAlertQueue"),
            # Decrypt: read the encrypted queue. GenerateDataKey: publish to the encrypted responders topic.
            statement(["kms:Decrypt", "kms:GenerateDataKey"], [args["key_arn"]], sid="UseAlertKey"),
            statement(["sns:Publish"], [args["responders_topic_arn"]], sid="NotifyResponders"),
            statement(["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [self.notice_table.arn],
                      sid="NotifyOnce"),
        ]
        profiles = [
            arn(partition, "iot", f"securityprofile/{name}", region=region, account=account)
            for name in args["security_profile_names"]
        ]
        if profiles:
            # A storm is contained in bulk by Device Defender. The task is authorised against the task, the
            # mitigation action it runs and the security profiles whose violations it targets: this stack's.
            statements.append(statement(
                ["iot:StartDetectMitigationActionsTask"],
                [
                    args["add_to_quarantine_action_arn"],
                    arn(partition, "iot", "detectmitigationactionstask/*", region=region, account=account),
                    *profiles,
                ],
                sid="ContainStormInBulk",
            ))
        mitigation = args["audit_mitigation"]
        if mitigation is not None and mitigation["automatic"]:
            statements.append(unscoped_statement(TASK_ACTIONS, region, sid="MitigateAuditFindings"))
        response_plan_arn = args["response_plan_arn"]
        if response_plan_arn is not None:
            statements += [
                statement(["ssm-incidents:StartIncident"], [response_plan_arn], sid="OpenIncidents"),
                # A storm's devices are listed on its fleet incident, and each batch noted on the timeline.
                incident_statement(
                    ["ssm-incidents:CreateTimelineEvent", "ssm-incidents:UpdateRelatedItems"],
                    partition=partition, account_id=account, response_plan_name=args["response_plan_name"],
                    sid="AnnotateFleetIncidents",
                ),
            ]
        elif args["ops_center"] is not None:
            # The runbook the intake starts contains the device; the intake records and escalates.
            statements += _ops_center_statements(args["ops_center"], partition=partition, region=region,
                                                 account=account)
        if (response_plan_arn is None and args["ops_center"] is None) or args["engine_profile_names"]:
            # With neither, no runbook runs: the intake quarantines each device itself. Storms of the
            # fleetguard engine's violations (no bulk mitigation task takes them) it contains device by device
            # on every path.
            statements += containment_statements(
                "iot:AddThingToThingGroup", membership_sid="AddToQuarantineGroup", confirm_sid="ConfirmQuarantine",
                group_arn=args["quarantine_group_arn"], partition=partition, region=region, account_id=account,
            )
        return statements


def _ops_center_environment(
    settings: IncidentResponseSettings, wiring: OpsCenterWiring | None
) -> OpsCenterEnvironment[pulumi.Input[str]] | None:
    if wiring is None:
        return None
    ops_center = settings.ops_center
    return OpsCenterEnvironment[pulumi.Input[str]](
        category=ops_center.category,
        severity_by_impact={int(impact): severity for impact, severity in ops_center.severity_by_impact.items()},
        runbook_name=wiring["runbook_name"],
        automation_role_arn=wiring["runbook_role_arn"],
        schedule_group=wiring["schedule_group_name"],
        escalation_function_arn=wiring["escalation_function_arn"],
        scheduler_role_arn=wiring["scheduler_role_arn"],
        escalation_stages=wiring["escalation_stages"],
        ops_item_tags={OPS_ITEM_STACK_TAG_KEY: wiring["stack_tag"]},
    )


def _ops_center_statements(
    wiring: OpsCenterWiring, *, partition: pulumi.Input[str], region: pulumi.Input[str], account: pulumi.Input[str]
) -> list[dict[str, Any]]:
    """Open an OpsItem, start the runbook for it, schedule its escalation: each on this stack's own."""
    tagged_request = {"StringEquals": {f"aws:RequestTag/{OPS_ITEM_STACK_TAG_KEY}": wiring["stack_tag"]}}
    ops_items = arn(partition, "ssm", "opsitem/*", region=region, account=account)
    runbook = wiring["runbook_name"]

    def ssm(resource: pulumi.Input[str]) -> pulumi.Output[str]:
        return arn(partition, "ssm", resource, region=region, account=account)

    return [
        # CreateOpsItem names no resource type, so only "*" grants it; the condition demands the stack's tag.
        statement(["ssm:CreateOpsItem"], ["*"], sid="OpenOpsItems", condition=tagged_request),
        # Tagging a new OpsItem is authorised as tagging, on the item being created.
        statement(["ssm:AddTagsToResource"], [ops_items], sid="TagNewOpsItems", condition=tagged_request),
        ops_item_statement(["ssm:GetOpsItem", "ssm:UpdateOpsItem"], stack_tag=wiring["stack_tag"],
                           partition=partition, region=region, account_id=account, sid="RecordOnOwnOpsItems"),
        # As for Incident Manager: the runbook as a document and as any version, and the new execution.
        statement(
            ["ssm:StartAutomationExecution"],
            [ssm(pulumi.Output.concat("document/", runbook)),
             ssm(pulumi.Output.concat("automation-definition/", runbook, ":*")),
             ssm("automation-execution/*")],
            sid="StartRunbook",
        ),
        statement(["iam:PassRole"], [wiring["runbook_role_arn"]], sid="PassRunbookRole",
                  condition={"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}),
        statement(
            ["scheduler:CreateSchedule"],
            [arn(partition, "scheduler", pulumi.Output.concat("schedule/", wiring["schedule_group_name"], "/*"),
                 region=region, account=account)],
            sid="ScheduleEscalation",
        ),
        statement(["iam:PassRole"], [wiring["scheduler_role_arn"]], sid="PassSchedulerRole",
                  condition={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
    ]


def containment_rate(max_concurrency: int) -> int:
    """Devices per second one invocation contains one by one: AddThingToThingGroup's account quota shared
    by the intake's concurrent invocations (at least one a second)."""
    return max(1, REGISTRY_WRITE_TPS // max_concurrency)


def _named_action(name: str | None) -> str:
    if not name:
        raise ValueError("the add-to-quarantine mitigation action has no name; the intake cannot start tasks")
    return name


def _alert_topic_may_send(queue_arn: pulumi.Output[str], topic_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """SNS may deliver to the queue, and only on behalf of the alert topic."""
    deliver = statement(
        ["sqs:SendMessage"], [queue_arn], sid="AlertTopicDelivers",
        condition={"ArnEquals": {"aws:SourceArn": topic_arn}},
    )
    deliver["Principal"] = {"Service": "sns.amazonaws.com"}
    return policy_document(deliver)

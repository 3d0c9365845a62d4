"""Escalation without SSM Contacts: what the intake needs to escalate an OpsCenter incident on a clock.

When the intake opens an OpsItem it creates one one-time EventBridge Scheduler schedule per stage in this
component's schedule group (each deletes itself after it runs). The scheduler invokes the escalation
function through its own role, which may invoke that function and nothing else; the function notifies
the stage's topic while the OpsItem is still Open, and once someone has acknowledged or resolved it,
deletes the remaining schedules. Stages either name an existing topic or get a topic here, encrypted with
the alert key, with the email and SMS subscriptions the config lists. An optional Amazon Q Developer chat
channel relays the responders topic to Slack or Microsoft Teams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs, deployment_of
from components.function import FunctionArgs, FunctionComponent
from components.iam import aws_managed_policy_arn, ops_item_statement, policy_document, service_role, statement
from functions.contract_opscenter import EscalationEnvironment, EscalationStage, escalation_stages_json
from settings.facts import ESCALATION_ROLE, ESCALATION_STAGE_ROLE, ESCALATION_STAGES_TAG_KEY, ROLE_TAG_KEY
from settings.opscenter import ChatSettings, OpsCenterSettings

FUNCTION_TIMEOUT_SECONDS: Final = 30
"""One GetOpsItem, then one Publish or a few DeleteSchedule calls."""
FUNCTION_MEMORY_MB: Final = 256
ESCALATION_QUERY: Final = (
    "fields @timestamp, level, message, ops_item_id, stage, status, topic_arn, deleted_schedules, error\n"
    "| sort @timestamp desc\n| limit 1000"
)
CHAT_LOGGING_LEVEL: Final = "ERROR"
CHAT_GUARDRAIL_POLICY: Final = "ReadOnlyAccess"
"""The AWS managed policy capping what the chat channel may do (its own role has no permissions at all)."""


class EscalationArgs(DeploymentArgs):
    """Inputs of the escalation component."""

    settings: OpsCenterSettings
    """Validated OpsCenter settings: the stages and the optional chat channel."""
    stack_tag: str
    """The ``fleetguard:stack`` tag value of the OpsItems the intake opens: the escalation function reads
    only those."""
    key_arn: pulumi.Input[str]
    """The alert KMS key: encrypts the stage topics the stack creates."""
    responders_topic_arn: pulumi.Input[str]
    """The topic a chat channel relays."""
    layer_arn: pulumi.Input[str]
    log_level: str
    log_retention_days: int


class EscalationComponent(pulumi.ComponentResource):
    """Stage topics and subscriptions, the schedule group, the escalation function, the scheduler's role and
    the optional chat channel."""

    stage_topics: dict[str, aws.sns.Topic]
    """The topics this stack created, by stage name."""
    stage_topic_arns: list[pulumi.Output[str]]
    """Every stage's topic ARN, in stage order."""
    stages_json: pulumi.Output[str]
    """The stages as the intake and the escalation function read them (ESCALATION_STAGES)."""
    schedule_group: aws.scheduler.ScheduleGroup
    function: FunctionComponent
    scheduler_role: aws.iam.Role
    chat_channel: aws.chatbot.SlackChannelConfiguration | aws.chatbot.TeamsChannelConfiguration | None
    query_name: str
    """The saved Logs Insights query over the escalation function's decisions."""

    def __init__(self, name: str, args: EscalationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:escalation:Escalation", name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        self.stage_topics = {}
        self.stage_topic_arns = []
        for stage in settings.escalation:
            target = stage.target
            if target.topic_arn is not None:
                self.stage_topic_arns.append(pulumi.Output.from_input(target.topic_arn))
                continue
            topic = aws.sns.Topic(
                f"{name}-{stage.name}",
                name=f"{name}-{stage.name}",
                kms_master_key_id=args["key_arn"],
                tags={**args["tags"], ROLE_TAG_KEY: ESCALATION_STAGE_ROLE},
                opts=child,
            )
            for protocol, endpoints in (("email", target.emails), ("sms", target.phone_numbers)):
                for position, endpoint in enumerate(endpoints, start=1):
                    aws.sns.TopicSubscription(
                        f"{name}-{stage.name}-{protocol}-{position}",
                        topic=topic.arn,
                        protocol=protocol,
                        endpoint=endpoint,
                        opts=child,
                    )
            self.stage_topics[stage.name] = topic
            self.stage_topic_arns.append(topic.arn)
        self.stages_json = pulumi.Output.all(*self.stage_topic_arns).apply(
            lambda topic_arns: escalation_stages_json([
                EscalationStage(stage.name, stage.minutes, str(topic_arn))
                for stage, topic_arn in zip(settings.escalation, topic_arns, strict=True)
            ])
        )
        # The pack recognises the escalation by these tags, which are literals already known at preview.
        self.schedule_group = aws.scheduler.ScheduleGroup(
            f"{name}-schedules",
            name=name,
            tags={
                **args["tags"],
                ROLE_TAG_KEY: ESCALATION_ROLE,
                ESCALATION_STAGES_TAG_KEY: str(len(settings.escalation)),
            },
            opts=child,
        )
        self.function = FunctionComponent(
            f"{name}-handler",
            self._function_args(args, self.stages_json),
            opts=child,
        )
        # The scheduler's identity: it may invoke the escalation function, nothing else.
        self.scheduler_role = service_role(
            f"{name}-scheduler-role", "scheduler.amazonaws.com", account_id=args["account_id"],
            description=f"Assumed by EventBridge Scheduler to run the escalation stages of {name}",
            tags=args["tags"], opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=self.scheduler_role.id,
            policy=policy_document(
                statement(["lambda:InvokeFunction"], [self.function.function.arn], sid="InvokeEscalation"),
            ),
            opts=child,
        )
        self.query_name = f"{name}/escalation-decisions"
        aws.cloudwatch.QueryDefinition(
            f"{name}-query-escalation-decisions",
            name=self.query_name,
            query_string=ESCALATION_QUERY,
            log_group_names=[self.function.log_group.name],
            opts=child,
        )
        self.chat_channel = self._chat(name, args["settings"].chat, args) if settings.chat.enabled else None
        self.register_outputs({
            "scheduleGroupName": self.schedule_group.name,
            "stageTopicArns": self.stage_topic_arns,
            "functionArn": self.function.function.arn,
            "schedulerRoleArn": self.scheduler_role.arn,
        })

    def _function_args(self, args: EscalationArgs, stages_json: pulumi.Output[str]) -> FunctionArgs:
        return {
            **deployment_of(args),
            "handler": "functions.escalation.handler",
            "description": "Notifies an escalation stage while its OpsItem is unacknowledged; cancels the rest after",
            "environment": EscalationEnvironment[pulumi.Input[str]](
                schedule_group=self.schedule_group.name,
                escalation_stages=stages_json,
                service_name="fleetguard-escalation",
                retry_mode="standard",
            ).to_environment(),
            "log_level": args["log_level"],
            "extra_files": {},
            "statements": self._statements(args),
            "layer_arn": args["layer_arn"],
            "log_retention_days": args["log_retention_days"],
            "timeout_seconds": FUNCTION_TIMEOUT_SECONDS,
            "memory_mb": FUNCTION_MEMORY_MB,
        }

    def _statements(self, args: EscalationArgs) -> list[dict[str, Any]]:
        partition, region, account = args["partition"], args["region"], args["account_id"]
        statements = [
            ops_item_statement(["ssm:GetOpsItem"], stack_tag=args["stack_tag"], partition=partition, region=region,
                               account_id=account, sid="ReadOwnOpsItems"),
            statement(
                ["scheduler:DeleteSchedule"],
                [arn(partition, "scheduler", pulumi.Output.concat("schedule/", self.schedule_group.name, "/*"),
                     region=region, account=account)],
                sid="CancelRemainingStages",
            ),
        ]
        if self.stage_topic_arns:
            statements.append(statement(["sns:Publish"], list(self.stage_topic_arns), sid="NotifyStages"))
        if self.stage_topics:
            # Publishing to a topic the alert key encrypts needs a data key from it.
            statements.append(statement(["kms:GenerateDataKey"], [args["key_arn"]], sid="EncryptStageNotices"))
        return statements

    def _chat(
        self, name: str, chat: ChatSettings, args: EscalationArgs
    ) -> aws.chatbot.SlackChannelConfiguration | aws.chatbot.TeamsChannelConfiguration | None:
        child = pulumi.ResourceOptions(parent=self)
        # The channel only relays notifications: its role carries no permissions, so chat members can run
        # nothing in the account through it.
        role = service_role(
            f"{name}-chat-role", "chatbot.amazonaws.com", account_id=None,
            description=f"Chat channel role of {name}: relays notifications only", tags=args["tags"], opts=child,
        )
        topics: Sequence[pulumi.Input[str]] = [args["responders_topic_arn"]]
        # The guardrail caps what any role used from the channel may do, should user roles be enabled later.
        guardrails = [aws_managed_policy_arn(args["partition"], CHAT_GUARDRAIL_POLICY)]
        if chat.slack is not None:
            return aws.chatbot.SlackChannelConfiguration(
                f"{name}-slack",
                configuration_name=f"{name}-responders",
                iam_role_arn=role.arn,
                slack_team_id=chat.slack.workspace_id,
                slack_channel_id=chat.slack.channel_id,
                sns_topic_arns=topics,
                guardrail_policy_arns=guardrails,
                logging_level=CHAT_LOGGING_LEVEL,
                tags=args["tags"],
                opts=child,
            )
        if chat.teams is not None:
            return aws.chatbot.TeamsChannelConfiguration(
                f"{name}-teams",
                configuration_name=f"{name}-responders",
                iam_role_arn=role.arn,
                team_id=chat.teams.team_id,
                channel_id=chat.teams.channel_id,
                tenant_id=chat.teams.tenant_id,
                sns_topic_arns=topics,
                guardrail_policy_arns=guardrails,
                logging_level=CHAT_LOGGING_LEVEL,
                tags=args["tags"],
                opts=child,
            )
        return None

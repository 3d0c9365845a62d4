"""fleetguard's own Detect engine, for accounts that cannot use Device Defender Detect.

Every source writes into one KMS-encrypted Kinesis data stream, partitioned by device so that one
device's records stay in order on one shard:

* device metrics reports, which devices publish in Device Defender's format to a Basic Ingest topic
  (``$aws/rules/<rule>/things/<thingName>/metrics``: no messaging charge); the rule keeps only reports
  whose thing name segment is the publishing client's id;
* AWS IoT lifecycle events (connected, disconnected, connect failures) from ``$aws/events/presence``;
* one rule per listed topic filter, for messages sent and their sizes;
* authorization failures from the ``AWSIotLogsV2`` log group, through a subscription filter.

Every rule has an error action into an encrypted queue, so a record the stream refused is kept. The
evaluator function reads the stream in batches (partial batch failures, bisect on error, an on-failure
destination), keeps one state item per device in a DynamoDB table encrypted with the alert key, and
publishes ViolationEvents to the alert topic; a scheduled sweep sends alarm-invalidated for devices that
went silent. The behaviors travel in the function's archive (``functions/engine_profile.json``).
"""

from __future__ import annotations

from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs, deployment_of
from components.function import FunctionArgs, FunctionComponent
from components.iam import policy_document, service_role, statement
from functions.contract_engine import (
    STATE_ALARMED,
    STATE_ALARMED_INDEX,
    STATE_DEVICE,
    STATE_EXPIRES_AT,
    EngineHandlerEnvironment,
    EngineSweepEnvironment,
)
from functions.engine_behaviors import PROFILE_FILE, EngineBehavior, EngineProfile
from settings.detect import DetectSettings

SQL_VERSION: Final = "2016-03-23"
"""The current AWS IoT SQL version (2015-10-08, 2016-03-23 and beta exist); nested objects need it."""
DEVICE_TOPIC_FILTER: Final = "things/+/metrics"
"""What the report rule selects. Basic Ingest strips ``$aws/rules/<rule>/`` before the rule sees the
topic, so ``topic(2)`` is the thing name segment."""
THING_NAME_SEGMENT: Final = "topic(2)"
PRESENCE_TOPIC_FILTER: Final = "$aws/events/presence/+/+"
"""connected, disconnected and connect_failed events, each ending in the client id."""
PAYLOAD_BYTES: Final = "(length(encode(*, 'base64')) / 4) * 3"
"""A message's payload size in bytes: base64 text is 4 characters per 3 bytes, padded to a multiple of
4, so this is exact up to the padding: it over-counts by at most 2 bytes."""
AUTHORIZATION_FAILURES: Final = '{ ($.status = "Failure") && ($.reason = "AUTHORIZATION_FAILURE") }'
"""The v2 log lines the engine counts; everything else stays out of the stream (and its cost)."""
QUEUE_RETENTION_SECONDS: Final = 1_209_600
"""14 days, the SQS maximum: time to notice a failure, fix it and replay."""
STARTING_POSITION: Final = "TRIM_HORIZON"
"""A replaced event source mapping reads what the stream still holds: a record seen twice changes no
state (the evaluator ignores reports that are not newer), a record never read is a missed alarm."""
STREAM_READ_ACTIONS: Final = (
    "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
"""What Lambda's event source mapping reads a stream with, as the function's role."""


def rule_name(prefix: str, purpose: str) -> str:
    """A topic rule name (``^[a-zA-Z0-9_]+$``, at most 128): the stack prefix with dashes as underscores."""
    name = f"{prefix}_{purpose}".replace("-", "_")
    if len(name) > 128:
        raise ValueError(f"topic rule name {name!r} is longer than 128 characters")
    return name


def report_topic(rule: str, thing_name: str = "<thingName>") -> str:
    """The Basic Ingest topic a device publishes its metrics reports to."""
    return f"$aws/rules/{rule}/things/{thing_name}/metrics"


def report_sql() -> str:
    return (
        f"SELECT *, 'device-report' AS fg_kind, {THING_NAME_SEGMENT} AS fg_device, clientid() AS fg_client, "
        f"timestamp() AS fg_received_ms FROM '{DEVICE_TOPIC_FILTER}' WHERE {THING_NAME_SEGMENT} = clientid()"
    )


def presence_sql() -> str:
    return (
        "SELECT *, 'presence' AS fg_kind, clientId AS fg_device, timestamp() AS fg_received_ms "
        f"FROM '{PRESENCE_TOPIC_FILTER}'"
    )


def message_sql(topic_filter: str) -> str:
    return (
        f"SELECT 'message' AS fg_kind, clientid() AS fg_device, topic() AS fg_topic, {PAYLOAD_BYTES} AS fg_bytes, "
        f"timestamp() AS fg_received_ms FROM '{topic_filter}'"
    )


def engine_profile(settings: DetectSettings) -> EngineProfile:
    """The behavior document the evaluator reads: the stack's rule behaviors, targets and profile name."""
    return EngineProfile(
        profile_name=settings.engine.profile_name,
        target_groups=settings.target_groups,
        behaviors=tuple(
            EngineBehavior(
                name=behavior.name,
                metric=behavior.metric,
                operator=behavior.operator,
                count=behavior.count,
                ports=behavior.ports,
                cidrs=behavior.cidrs,
                duration_seconds=behavior.duration_seconds,
                datapoints_to_alarm=behavior.datapoints_to_alarm,
                datapoints_to_clear=behavior.datapoints_to_clear,
                suppress_alerts=behavior.suppress_alerts,
            )
            for behavior in settings.rule_behaviors
        ),
    )


class DetectEngineArgs(DeploymentArgs):
    """Inputs of the Detect engine component."""

    settings: DetectSettings
    """Validated Detect settings with the fleetguard engine on."""
    key_arn: pulumi.Input[str]
    """The alert key: encrypts the stream, the table and the queues."""
    alert_topic_arn: pulumi.Input[str]
    """Where the engine publishes its ViolationEvents (the intake reads them from there)."""
    iot_log_group_name: str
    """The AWS IoT v2 log group whose authorization failures the engine counts."""
    iot_log_group: pulumi.Resource | None
    """That log group when this stack creates it (the subscription waits for it), else None."""
    layer_arn: pulumi.Input[str]
    """The Powertools layer."""


class DetectEngineComponent(pulumi.ComponentResource):
    """Stream, topic rules, log subscription, state table, evaluator and sweep functions, queues."""

    stream: aws.kinesis.Stream
    rule_errors_queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    state_table: aws.dynamodb.Table
    report_rule: aws.iot.TopicRule
    rules: list[aws.iot.TopicRule]
    evaluator: FunctionComponent
    sweep: FunctionComponent
    event_source: aws.lambda_.EventSourceMapping
    device_policy: aws.iot.Policy
    report_rule_name: str
    report_topic_template: str

    def __init__(self, name: str, args: DetectEngineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:detect_engine:DetectEngine", name, None, opts)
        options = args["settings"].engine.options
        child = pulumi.ResourceOptions(parent=self)
        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=f"{name}-stream",
            encryption_type="KMS",
            kms_key_id=args["key_arn"],
            retention_period=options.stream_retention_hours,
            shard_count=options.stream_shards or None,
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(
                stream_mode="PROVISIONED" if options.stream_shards else "ON_DEMAND",
            ),
            tags=args["tags"],
            opts=child,
        )
        self.rule_errors_queue = self._queue(f"{name}-rule-errors", args)
        # Where the evaluator's failures rest: records it cannot decode (with the reason, sent by the
        # handler) and batches given up after their retries (Lambda's on-failure record, with the shard
        # and sequence numbers to read them again from the stream).
        self.dead_letter_queue = self._queue(f"{name}-dlq", args)
        self.state_table = aws.dynamodb.Table(
            f"{name}-state",
            name=f"{name}-state",
            billing_mode="PAY_PER_REQUEST",
            hash_key=STATE_DEVICE,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=STATE_DEVICE, type="S"),
                aws.dynamodb.TableAttributeArgs(name=STATE_ALARMED, type="N"),
            ],
            global_secondary_indexes=[aws.dynamodb.TableGlobalSecondaryIndexArgs(
                name=STATE_ALARMED_INDEX, hash_key=STATE_ALARMED, projection_type="KEYS_ONLY",
            )],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=STATE_EXPIRES_AT, enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args["key_arn"],
            ),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=options.point_in_time_recovery),
            tags=args["tags"],
            opts=child,
        )
        self._rules(name, args)
        self._log_subscription(name, args)
        self._functions(name, args)
        self.register_outputs({
            "streamArn": self.stream.arn,
            "reportTopic": self.report_topic_template,
            "stateTableName": self.state_table.name,
            "evaluatorArn": self.evaluator.function.arn,
        })

    def _queue(self, name: str, args: DetectEngineArgs) -> aws.sqs.Queue:
        return aws.sqs.Queue(
            name,
            name=name,
            kms_master_key_id=args["key_arn"],
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            tags=args["tags"],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _rules(self, name: str, args: DetectEngineArgs) -> None:
        """The topic rules of every IoT source, sharing one role that may only write to the stream and
        keep its failures."""
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            f"{name}-rules-role", "iot.amazonaws.com", account_id=args["account_id"],
            description="Assumed by the Detect engine's topic rules to write to its stream", tags=args["tags"],
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-rules-policy",
            role=role.id,
            policy=policy_document(
                statement(["kinesis:PutRecord"], [self.stream.arn], sid="WriteStream"),
                statement(["sqs:SendMessage"], [self.rule_errors_queue.arn], sid="KeepRuleFailures"),
                # GenerateDataKey: write to the encrypted stream and queue; Decrypt: SQS reuses data keys.
                statement(["kms:Decrypt", "kms:GenerateDataKey"], [args["key_arn"]], sid="UseAlertKey"),
            ),
            opts=child,
        )
        prefix = name.removesuffix("-detect-engine")
        self.report_rule_name = rule_name(prefix, "device_metrics")
        self.report_topic_template = report_topic(self.report_rule_name)
        sources = [
            ("device-metrics", self.report_rule_name, "Device Defender metrics reports from devices (Basic Ingest)",
             report_sql(), "${" + THING_NAME_SEGMENT + "}"),
            ("presence", rule_name(prefix, "device_presence"), "AWS IoT lifecycle events of every client",
             presence_sql(), "${clientId}"),
        ]
        for index, topic_filter in enumerate(args["settings"].engine.message_topic_filters):
            sources.append((
                f"messages-{index}", rule_name(prefix, f"messages_{index}"), f"Messages sent on {topic_filter}",
                message_sql(topic_filter), "${clientid()}",
            ))
        self.rules = []
        for suffix, physical_name, description, sql, partition_key in sources:
            self.rules.append(aws.iot.TopicRule(
                f"{name}-{suffix}-rule",
                name=physical_name,
                description=f"fleetguard Detect engine: {description}",
                enabled=True,
                sql=sql,
                sql_version=SQL_VERSION,
                kineses=[aws.iot.TopicRuleKinesisArgs(
                    role_arn=role.arn, stream_name=self.stream.name, partition_key=partition_key,
                )],
                error_action=aws.iot.TopicRuleErrorActionArgs(sqs=aws.iot.TopicRuleErrorActionSqsArgs(
                    queue_url=self.rule_errors_queue.url, role_arn=role.arn, use_base64=False,
                )),
                tags=args["tags"],
                # AWS IoT checks at creation that it can assume the role.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            ))
        self.report_rule = self.rules[0]
        self.device_policy = aws.iot.Policy(
            f"{name}-device-policy",
            name=f"{name}-device-publish-metrics",
            policy=device_policy_document(args, self.report_rule_name),
            tags=args["tags"],
            opts=child,
        )

    def _log_subscription(self, name: str, args: DetectEngineArgs) -> None:
        """Authorization failures from the v2 logs into the stream."""
        child = pulumi.ResourceOptions(parent=self)
        log_groups = arn(args["partition"], "logs", "*", region=args["region"], account=args["account_id"])
        trust = {
            "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            # CloudWatch Logs assumes the role for this account's log groups only (the confused deputy).
            "Condition": {"StringLike": {"aws:SourceArn": log_groups}},
        }
        role = aws.iam.Role(
            f"{name}-logs-role",
            description="Assumed by CloudWatch Logs to send AWS IoT authorization failures to the Detect engine",
            assume_role_policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [trust]}),
            tags=args["tags"],
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-logs-policy",
            role=role.id,
            policy=policy_document(
                statement(["kinesis:PutRecord"], [self.stream.arn], sid="WriteStream"),
                statement(["kms:GenerateDataKey"], [args["key_arn"]], sid="EncryptRecords"),
            ),
            opts=child,
        )
        after = [policy] + ([args["iot_log_group"]] if args["iot_log_group"] is not None else [])
        aws.cloudwatch.LogSubscriptionFilter(
            f"{name}-authorization-failures",
            name=f"{name}-authorization-failures",
            log_group=args["iot_log_group_name"],
            filter_pattern=AUTHORIZATION_FAILURES,
            destination_arn=self.stream.arn,
            role_arn=role.arn,
            # The handler groups log lines by client id itself; spreading them evens out the shards.
            distribution="Random",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _functions(self, name: str, args: DetectEngineArgs) -> None:
        options = args["settings"].engine.options
        child = pulumi.ResourceOptions(parent=self)
        shared = self._shared_statements(args)
        evaluator_env = EngineHandlerEnvironment[pulumi.Input[str]](
            state_table=self.state_table.name,
            alert_topic_arn=args["alert_topic_arn"],
            dead_letter_queue_url=self.dead_letter_queue.url,
            service_name="fleetguard-detect-engine",
        )
        self.evaluator = FunctionComponent(f"{name}-evaluator", self._function_args(
            args,
            handler="functions.engine_handler.handler",
            description="fleetguard Detect engine: evaluates device behaviors from the stream",
            environment=evaluator_env.to_environment(),
            statements=[
                *shared,
                statement(STREAM_READ_ACTIONS, [self.stream.arn], sid="ReadStream"),
                statement(["sqs:SendMessage"], [self.dead_letter_queue.arn],
                          sid="KeepUnreadableRecordsAndFailedBatches"),
                # A profile that targets thing groups needs each device's groups (cached in its state).
                statement(["iot:ListThingGroupsForThing"],
                          [arn(args["partition"], "iot", "thing/*", region=args["region"], account=args["account_id"])],
                          sid="DeviceGroups"),
            ],
        ), opts=child)
        self.event_source = aws.lambda_.EventSourceMapping(
            f"{name}-event-source",
            event_source_arn=self.stream.arn,
            function_name=self.evaluator.function.arn,
            starting_position=STARTING_POSITION,
            batch_size=options.batch_size,
            maximum_batching_window_in_seconds=options.batch_window_seconds,
            parallelization_factor=options.parallelization_factor,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=options.maximum_retry_attempts,
            function_response_types=["ReportBatchItemFailures"],
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.dead_letter_queue.arn,
                ),
            ),
            tags=args["tags"],
            # Lambda checks at creation that the function's role can read the stream.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.evaluator]),
        )
        sweep_env = EngineSweepEnvironment[pulumi.Input[str]](
            state_table=self.state_table.name,
            alert_topic_arn=args["alert_topic_arn"],
            service_name="fleetguard-detect-engine-sweep",
        )
        alarmed_index = pulumi.Output.concat(self.state_table.arn, f"/index/{STATE_ALARMED_INDEX}")
        self.sweep = FunctionComponent(f"{name}-sweep", self._function_args(
            args,
            handler="functions.engine_sweep.handler",
            description="fleetguard Detect engine: alarm-invalidated for alarmed devices silent for two days",
            environment=sweep_env.to_environment(),
            statements=[
                *shared,
                statement(["dynamodb:Scan"], [alarmed_index], sid="FindAlarmedDevices"),
            ],
        ), opts=child)
        schedule = aws.cloudwatch.EventRule(
            f"{name}-sweep-schedule",
            name=f"{name}-sweep",
            description="fleetguard Detect engine: look for silent devices",
            schedule_expression=f"rate({options.sweep_interval_minutes} minutes)",
            tags=args["tags"],
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-sweep-permission",
            action="lambda:InvokeFunction",
            function=self.sweep.function.name,
            principal="events.amazonaws.com",
            source_arn=schedule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-sweep-target",
            rule=schedule.name,
            arn=self.sweep.function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

    def _shared_statements(self, args: DetectEngineArgs) -> list[dict[str, Any]]:
        """What both functions do: keep device state (batch reads, a single read after a lost conditional
        write, conditional puts and updates) and publish violations (sns:Publish covers PublishBatch)."""
        return [
            statement(["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                      [self.state_table.arn], sid="DeviceState"),
            statement(["sns:Publish"], [args["alert_topic_arn"]], sid="PublishViolations"),
            # Decrypt: the stream, the table; GenerateDataKey: the table, the encrypted topic and queues.
            statement(["kms:Decrypt", "kms:GenerateDataKey"], [args["key_arn"]], sid="UseAlertKey"),
        ]

    @staticmethod
    def _function_args(
        args: DetectEngineArgs,
        *,
        handler: str,
        description: str,
        environment: dict[str, pulumi.Input[str]],
        statements: list[dict[str, Any]],
    ) -> FunctionArgs:
        options = args["settings"].engine.options
        return {
            **deployment_of(args),
            "handler": handler,
            "description": description,
            "environment": environment,
            "log_level": options.log_level,
            "statements": statements,
            "layer_arn": args["layer_arn"],
            "log_retention_days": options.log_retention_days,
            "timeout_seconds": options.function_timeout_seconds,
            "memory_mb": options.function_memory_mb,
            # Both functions read the behaviors: the evaluator to judge, the sweep to name them.
            "extra_files": {f"functions/{PROFILE_FILE}": engine_profile(args["settings"]).to_json()},
        }


def device_policy_document(args: DetectEngineArgs, report_rule: str) -> pulumi.Output[str]:
    """What a device needs to feed the engine: publish its own reports, nothing else. Attach it beside
    the device's own policy (to its certificate or thing group); the policy variable makes each device's
    grant its own thing name, which AWS IoT knows when the client id is the thing name."""
    own_topic = arn(
        args["partition"], "iot", f"topic/{report_topic(report_rule, '${iot:Connection.Thing.ThingName}')}",
        region=args["region"], account=args["account_id"],
    )
    return policy_document(statement(["iot:Publish"], [own_topic], sid="PublishOwnMetricsReports"))

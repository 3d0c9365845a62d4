"""fleetguard's own Detect engine (accounts without Device Defender Detect): its stream and state are
encrypted with a customer-managed key and its stream consumer keeps the batches it gives up on (its topic
rules' error actions are `topic-rule-error-action`'s, which judges every topic rule). Security telemetry
that is silently dropped is an alarm that never rings."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, Severity

from .building import Controls, Report, ResourceContext, of_types, resource_policy
from .encryption import is_aws_managed_key
from .values import has_value, known, path

STREAM: Final = "aws:kinesis/stream:Stream"
TABLE: Final = "aws:dynamodb/table:Table"
EVENT_SOURCE_MAPPING: Final = "aws:lambda/eventSourceMapping:EventSourceMapping"

ENCRYPTION_CONTROLS = Controls(
    pci=("3.5.1", "3.6.1"),
    hipaa=("164.312(a)(2)(iv)",),
    nist=("SC-12", "SC-28"),
)
DELIVERY_CONTROLS = Controls(
    pci=("10.2.1", "10.7.2"),
    hipaa=("164.312(b)",),
    nist=("AU-5", "SI-4"),
)


def check_stream_key(ctx: ResourceContext, report: Report) -> None:
    encryption = known(ctx.props.get("encryptionType"), "encryptionType")
    if encryption != "KMS":
        report(f"encryptionType is {encryption or 'NONE'}: stream records are not encrypted with KMS")
        return
    key_id = ctx.props.get("kmsKeyId")
    if not has_value(key_id):
        report("kmsKeyId is missing; set it to a customer-managed KMS key")
    elif is_aws_managed_key(key_id):
        report(f"kmsKeyId {key_id} is an AWS-managed key (alias/aws/kinesis); use a customer-managed KMS key")


def check_table_key(ctx: ResourceContext, report: Report) -> None:
    encryption = known(ctx.props.get("serverSideEncryption"), "serverSideEncryption")
    enabled = known(path(encryption, "enabled"), "serverSideEncryption.enabled")
    if enabled is not True:
        report("serverSideEncryption is not enabled: items are encrypted with a key AWS owns, which no key "
               "policy of ours governs; enable it with kmsKeyArn set to a customer-managed KMS key")
        return
    key_arn = path(encryption, "kmsKeyArn")
    if not has_value(key_arn):
        report("serverSideEncryption.kmsKeyArn is missing: the table uses the AWS-managed key aws/dynamodb; "
               "set a customer-managed KMS key")
    elif is_aws_managed_key(key_arn):
        report(f"serverSideEncryption.kmsKeyArn {key_arn} is an AWS-managed key; use a customer-managed KMS key")


def check_on_failure_destination(ctx: ResourceContext, report: Report) -> None:
    # Only stream sources (Kinesis, DynamoDB Streams) take a starting position; an SQS queue redrives to
    # its own dead-letter queue instead.
    if not has_value(known(ctx.props.get("startingPosition"), "startingPosition")):
        return
    config = known(ctx.props.get("destinationConfig"), "destinationConfig")
    # An ARN unknown at preview is the output of a queue or topic this stack creates: it is set.
    if not has_value(path(config, "onFailure", "destinationArn")):
        report("the stream's event source mapping has no on-failure destination: a batch that exhausts its "
               "retries (or its record age) is skipped and lost")


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="detect-engine-stream-customer-key",
            description="Kinesis data streams are encrypted with a customer-managed KMS key.",
            severity=Severity.HIGH,
            controls=ENCRYPTION_CONTROLS,
            remediation_steps="Set encryptionType to KMS and kmsKeyId to a customer-managed key (the alert key).",
            governs=of_types(STREAM),
            check=check_stream_key,
        ),
        resource_policy(
            name="detect-engine-table-customer-key",
            description="DynamoDB tables are encrypted with a customer-managed KMS key.",
            severity=Severity.HIGH,
            controls=ENCRYPTION_CONTROLS,
            remediation_steps=(
                "Set serverSideEncryption to {enabled: true, kmsKeyArn: <customer-managed key ARN>}; the key policy "
                "must let the account use it through DynamoDB (kms:CreateGrant, kms:DescribeKey, kms:Decrypt, "
                "kms:GenerateDataKey with kms:ViaService dynamodb)."
            ),
            governs=of_types(TABLE),
            check=check_table_key,
        ),
        resource_policy(
            name="detect-engine-stream-consumer-on-failure",
            description="A Lambda function reading a stream sends batches it gives up on to an on-failure destination.",
            severity=Severity.MEDIUM,
            controls=DELIVERY_CONTROLS,
            remediation_steps=(
                "Set destinationConfig.onFailure.destinationArn to an encrypted SQS queue (or SNS topic) the "
                "function's role may send to, with bisectBatchOnFunctionError and maximumRetryAttempts."
            ),
            governs=of_types(EVENT_SOURCE_MAPPING),
            check=check_on_failure_destination,
        ),
    ]

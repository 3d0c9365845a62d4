"""Encryption at rest: customer-managed KMS keys for topics and queues, rotating keys, and dead-letter
queues so undeliverable security events are kept rather than lost."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, Severity

from .building import (
    Controls,
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    each,
    of_types,
    resource_policy,
    stack_policy,
)
from .values import UNKNOWN, CannotVerify, InvalidProperty, has_value, json_value, known, path

TOPIC: Final = "aws:sns/topic:Topic"
QUEUE: Final = "aws:sqs/queue:Queue"
KMS_KEY: Final = "aws:kms/key:Key"
REDRIVE_POLICY: Final = "aws:sqs/redrivePolicy:RedrivePolicy"
REDRIVE_ALLOW_POLICY: Final = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
EVENT_SOURCE_MAPPING: Final = "aws:lambda/eventSourceMapping:EventSourceMapping"
TOPIC_RULE: Final = "aws:iot/topicRule:TopicRule"
FAILURE_DESTINATIONS: Final = {
    EVENT_SOURCE_MAPPING: ("destinationConfig", ("onFailure", "destinationArn")),
    TOPIC_RULE: ("errorAction", ("sqs", "queueUrl")),
}
"""Other services' "where failures rest" settings that name a queue: a stream consumer's on-failure
destination, a topic rule's error action. Such a queue is a dead-letter queue too."""

ENCRYPTION_CONTROLS = Controls(
    pci=("3.5.1", "3.6.1"),
    hipaa=("164.312(a)(2)(iv)", "164.312(e)(2)(ii)"),
    nist=("SC-12", "SC-28"),
)


def is_aws_managed_key(key_id: Any) -> bool:
    """``alias/aws/sns``-style aliases, by name or ARN, name keys AWS manages (no key policy of ours,
    no control over rotation or who may decrypt)."""
    if key_id is UNKNOWN:
        return False  # the output of a key or alias this stack creates, so a customer key
    text = str(key_id)
    return text.startswith("alias/aws/") or ":alias/aws/" in text


def check_customer_key(ctx: ResourceContext, report: Report) -> None:
    key_id = ctx.props.get("kmsMasterKeyId")
    if not has_value(key_id):
        managed_sse = ctx.props.get("sqsManagedSseEnabled") is True
        how = "uses SQS-managed encryption (an AWS-owned key)" if managed_sse else "is not encrypted with KMS"
        report(f"{ctx.type.split(':')[-1].lower()} {how}; set kmsMasterKeyId to a customer-managed KMS key")
        return
    if is_aws_managed_key(key_id):
        report(f"kmsMasterKeyId {key_id} is an AWS-managed key; use a customer-managed KMS key")


def rotates(ctx: ResourceContext) -> bool | None:
    """Whether rotation applies: None for keys KMS cannot rotate automatically."""
    spec = known(ctx.props.get("customerMasterKeySpec"), "customerMasterKeySpec")
    usage = known(ctx.props.get("keyUsage"), "keyUsage")
    if spec not in (None, "SYMMETRIC_DEFAULT") or usage not in (None, "ENCRYPT_DECRYPT"):
        return None
    if has_value(ctx.props.get("customKeyStoreId")):
        return None
    return known(ctx.props.get("enableKeyRotation"), "enableKeyRotation") is True


def check_rotation(ctx: ResourceContext, report: Report) -> None:
    if rotates(ctx) is False:
        report("enableKeyRotation is not true; symmetric customer-managed keys must rotate")


def enable_rotation(ctx: ResourceContext) -> dict[str, Any] | None:
    try:
        return {"enableKeyRotation": True} if rotates(ctx) is False else None
    except CannotVerify:
        return None  # leave an unknown setting alone; the validation reports it


def dead_letter_target(source: StackResource) -> Any:
    """The deadLetterTargetArn of a redrive policy (on a queue or a RedrivePolicy resource): None
    without one, ``UNKNOWN`` when the policy is unknown at preview."""
    redrive = source.props.get("redrivePolicy")
    if not has_value(redrive):
        return None
    if redrive is UNKNOWN:
        return UNKNOWN
    document = json_value(redrive, f"redrivePolicy of {source.name}")
    if not isinstance(document, dict):
        raise InvalidProperty(f"redrivePolicy of {source.name} must be a JSON object")
    return document.get("deadLetterTargetArn")


def names_queue(source: StackResource, prop: str, queue: StackResource) -> bool:
    """Whether ``source``'s ``prop`` (an ARN or a URL) identifies ``queue``, by dependency or value."""
    if source.depends_on(prop, queue):
        return True
    value = source.props.get(prop)
    arn, url, name = (queue.props.get(key) for key in ("arn", "url", "name"))
    return isinstance(value, str) and (
        value in (arn, url) or (isinstance(name, str) and value.endswith((f":{name}", f"/{name}")))
    )


def permits_redrive(source: StackResource) -> bool:
    """Whether ``source`` sets a redrive allow policy that lets other queues use the queue as their
    dead-letter queue: one with redrivePermission denyAll marks an ordinary queue, not a dead-letter queue.
    A policy unknown at preview counts as permitting (only dead-letter queues carry one)."""
    value = source.props.get("redriveAllowPolicy")
    if not has_value(value):
        return False
    if value is UNKNOWN:
        return True
    try:
        document = json_value(value, f"redriveAllowPolicy of {source.name}")
    except InvalidProperty:
        return False
    return not (isinstance(document, dict) and document.get("redrivePermission") == "denyAll")


def safe_dead_letter_target(source: StackResource) -> Any:
    try:
        return dead_letter_target(source)
    except InvalidProperty:
        return None  # reported against the source itself


def check_dead_letter_queues(ctx: StackContext, report: Report) -> None:
    queues = ctx.require(QUEUE, reason="the stack has no SQS queues")
    # pulumi-aws can also set either policy with a separate resource naming the queue by URL.
    separate_redrive = ctx.of_type(REDRIVE_POLICY)
    separate_allow = ctx.of_type(REDRIVE_ALLOW_POLICY)
    queue_urns = frozenset(queue.urn for queue in queues)
    # Every redrive policy is read once: what it names (ARNs, and their last segment, the queue name)
    # and, at preview, which queues its unknown value depends on.
    targets = [safe_dead_letter_target(source) for source in [*queues, *separate_redrive]]
    target_arns = {target for target in targets if isinstance(target, str)}
    target_names = {arn.rsplit(":", 1)[-1] for arn in target_arns}
    depended_on = frozenset().union(*(
        source.property_dependencies.get("redrivePolicy", frozenset()) for source in [*queues, *separate_redrive]
    ))

    failure_sources = [
        (source, FAILURE_DESTINATIONS[source.type]) for source in ctx.of_type(*FAILURE_DESTINATIONS)
    ]

    def keeps_failures_of_another_service(queue: StackResource) -> bool:
        identities = {queue.props.get(key) for key in ("arn", "url")} - {None, UNKNOWN}
        return any(
            source.depends_on(prop, queue) or path(source.props.get(prop), *inner) in identities
            for source, (prop, inner) in failure_sources
        )

    def is_dead_letter_queue(queue: StackResource) -> bool:
        return (
            permits_redrive(queue)
            or keeps_failures_of_another_service(queue)
            or any(names_queue(allow, "queueUrl", queue) and permits_redrive(allow) for allow in separate_allow)
            or queue.urn in depended_on
            or queue.props.get("arn") in target_arns
            or queue.props.get("name") in target_names
        )

    def check(queue: StackResource) -> None:
        if is_dead_letter_queue(queue):
            return
        source = queue
        if not has_value(queue.props.get("redrivePolicy")):
            source = next((item for item in separate_redrive if names_queue(item, "queueUrl", queue)), queue)
        redrive = source.props.get("redrivePolicy")
        if not has_value(redrive):
            report(f"queue {queue.name} has no redrivePolicy: messages that keep failing are lost after the "
                   "retention period instead of landing in a dead-letter queue", queue.urn)
        elif redrive is UNKNOWN:
            # At preview a redrive policy naming a queue's ARN is unknown but depends on that queue.
            if not source.property_dependencies.get("redrivePolicy", frozenset()) & queue_urns:
                raise CannotVerify(f"the redrivePolicy of {source.name}")
        elif not has_value(dead_letter_target(source)):
            report(f"redrivePolicy of {source.name} has no deadLetterTargetArn", queue.urn)

    each(queues, report, check)


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="messaging-customer-managed-kms",
            description="SNS topics and SQS queues are encrypted with a customer-managed KMS key.",
            severity=Severity.HIGH,
            controls=ENCRYPTION_CONTROLS,
            remediation_steps=(
                "Set kmsMasterKeyId to the ARN or id of a customer-managed aws:kms/key:Key (not alias/aws/sns or "
                "alias/aws/sqs, and not SQS-managed SSE) whose key policy lets the publishing services use it."
            ),
            governs=of_types(TOPIC, QUEUE),
            check=check_customer_key,
        ),
        resource_policy(
            name="kms-key-rotation",
            description="Symmetric customer-managed KMS keys rotate automatically.",
            severity=Severity.MEDIUM,
            controls=Controls(pci=("3.6.1", "3.7.4"), hipaa=("164.312(a)(2)(iv)",), nist=("SC-12",)),
            remediation_steps=(
                "Set enableKeyRotation: true (optionally rotationPeriodInDays). With enforcement level "
                "'remediate' the pack sets it for you: turning rotation on never breaks decryption."
            ),
            governs=of_types(KMS_KEY),
            check=check_rotation,
            fix=enable_rotation,
        ),
        stack_policy(
            name="sqs-dead-letter-queue",
            description=(
                "Every SQS queue that is not itself a dead-letter queue (of a queue, a stream consumer or a topic "
                "rule) has a redrive policy to one."
            ),
            severity=Severity.MEDIUM,
            controls=Controls(pci=("10.7.2",), hipaa=("164.312(c)(1)",), nist=("AU-5", "IR-4")),
            remediation_steps=(
                "Create a dead-letter queue (encrypted with the same customer key) and set redrivePolicy to "
                "{\"deadLetterTargetArn\": <its ARN>, \"maxReceiveCount\": N} on each work queue."
            ),
            check=check_dead_letter_queues,
        ),
    ]


"""Encryption rules over gRPC: customer-managed keys for topics and queues, key rotation (with its
remediation), and dead-letter queues."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.analyzer import PolicyPackProcess
from tests.policies.stack_builders import (
    KEY_ARN,
    changed,
    compliant_stack,
    device_policy,
    kms_key,
    log_group,
    queue,
    replace,
    resource,
    topic,
    unknown,
    violations,
    without,
    work_and_dead_letter_queues,
)

KMS = "messaging-customer-managed-kms"
ROTATION = "kms-key-rotation"
DLQ = "sqs-dead-letter-queue"


@pytest.mark.parametrize("key_id", [KEY_ARN, "alias/fleetguard-alerts", "1234abcd-12ab-34cd-56ef-1234567890ab"])
def test_topics_and_queues_with_a_customer_key_pass(pack: PolicyPackProcess, key_id: str) -> None:
    for encrypted in (topic(kmsMasterKeyId=key_id), queue("q", kmsMasterKeyId=key_id)):
        result = pack.analyze(encrypted)
        assert not violations(result, KMS)
        assert KMS not in result.not_applicable


def test_a_key_id_unknown_at_preview_is_a_customer_key(pack: PolicyPackProcess) -> None:
    # It is the output of a key or alias this stack creates, so it cannot be AWS-managed.
    assert not violations(pack.analyze(topic(kmsMasterKeyId=unknown())), KMS)


@pytest.mark.parametrize(("encrypted", "reported"), [
    (changed(topic(), kmsMasterKeyId=None), "topic is not encrypted with KMS"),
    (topic(kmsMasterKeyId="alias/aws/sns"), "alias/aws/sns is an AWS-managed key"),
    (topic(kmsMasterKeyId="arn:aws:kms:us-east-1:123456789012:alias/aws/sns"), "is an AWS-managed key"),
    (changed(queue("q"), kmsMasterKeyId=None), "queue is not encrypted with KMS"),
    (changed(queue("q", sqsManagedSseEnabled=True), kmsMasterKeyId=None), "SQS-managed encryption"),
    (queue("q", kmsMasterKeyId="alias/aws/sqs"), "AWS-managed key"),
])
def test_unencrypted_or_aws_managed_encryption_is_blocked(
    pack: PolicyPackProcess, encrypted: object, reported: str,
) -> None:
    [message] = violations(pack.analyze(encrypted), KMS)  # type: ignore[arg-type]

    assert reported in message


def test_a_rotating_key_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(kms_key())

    assert not violations(result, ROTATION)
    assert ROTATION not in result.not_applicable


@pytest.mark.parametrize("rotation", [False, None])
def test_a_key_that_does_not_rotate_is_blocked(pack: PolicyPackProcess, rotation: object) -> None:
    [message] = violations(pack.analyze(changed(kms_key(), enableKeyRotation=rotation)), ROTATION)

    assert "enableKeyRotation is not true" in message


@pytest.mark.parametrize("overrides", [
    {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"},
    {"customerMasterKeySpec": "HMAC_256", "keyUsage": "GENERATE_VERIFY_MAC"},
    {"customKeyStoreId": "cks-1234567890abcdef0"},
])
def test_keys_kms_cannot_rotate_automatically_are_left_alone(
    pack: PolicyPackProcess, overrides: dict[str, str],
) -> None:
    assert not violations(pack.analyze(changed(kms_key(), enableKeyRotation=False, **overrides)), ROTATION)


def test_unknown_rotation_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(kms_key(enableKeyRotation=unknown())), ROTATION)

    assert message.startswith("cannot verify at the update")


def test_the_rotation_remediation_turns_rotation_on(pack: PolicyPackProcess) -> None:
    pack.configure({ROTATION: "remediate"})
    key = changed(kms_key(), enableKeyRotation=False)

    properties, applied = pack.remediate(key)

    assert [item.policy_name for item in applied] == [ROTATION]
    assert properties["enableKeyRotation"] is True
    assert properties["description"] == key.inputs["description"]
    assert not violations(pack.analyze(dataclasses.replace(key, inputs=properties)), ROTATION)


def test_the_rotation_remediation_leaves_compliant_and_asymmetric_keys_unchanged(pack: PolicyPackProcess) -> None:
    pack.configure({ROTATION: "remediate"})

    for key in (kms_key(), changed(kms_key(), enableKeyRotation=False, customerMasterKeySpec="RSA_2048",
                                   keyUsage="SIGN_VERIFY")):
        properties, applied = pack.remediate(key)
        assert not applied
        assert properties == dict(key.inputs)


def test_remediation_runs_only_at_the_remediate_level(pack: PolicyPackProcess) -> None:
    properties, applied = pack.remediate(changed(kms_key(), enableKeyRotation=False))

    assert not applied
    assert properties["enableKeyRotation"] is False


def test_encryption_resource_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(log_group())

    assert KMS in result.not_applicable
    assert ROTATION in result.not_applicable


# -- dead-letter queues (a stack policy) ---------------------------------------------------------------------

def test_a_work_queue_with_a_dead_letter_queue_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, DLQ)
    assert DLQ not in result.not_applicable


def test_a_queue_without_a_redrive_policy_is_blocked(pack: PolicyPackProcess) -> None:
    stack = [*compliant_stack(), queue("fleetguard-orphan")]

    [message] = violations(pack.analyze_stack(stack), DLQ)

    assert "queue fleetguard-orphan has no redrivePolicy" in message


def test_a_redrive_policy_without_a_target_is_blocked(pack: PolicyPackProcess) -> None:
    stack = [*compliant_stack(), queue("fleetguard-broken", redrivePolicy=json.dumps({"maxReceiveCount": 3}))]

    [message] = violations(pack.analyze_stack(stack), DLQ)

    assert "has no deadLetterTargetArn" in message


def test_a_redrive_policy_that_is_not_json_is_reported(pack: PolicyPackProcess) -> None:
    stack = [*compliant_stack(), queue("fleetguard-broken", redrivePolicy="{oops")]

    [message] = violations(pack.analyze_stack(stack), DLQ)

    assert "redrivePolicy of fleetguard-broken is not valid JSON" in message


def test_a_redrive_policy_unknown_at_preview_counts_when_it_depends_on_a_queue(pack: PolicyPackProcess) -> None:
    work, dead_letter = work_and_dead_letter_queues()
    preview_work = dataclasses.replace(changed(work, redrivePolicy=unknown()),
                                       property_dependencies={"redrivePolicy": [dead_letter.urn]})

    assert not violations(pack.analyze_stack(replace(compliant_stack(), preview_work)), DLQ)


def test_an_unknown_redrive_policy_without_a_queue_dependency_fails_closed(pack: PolicyPackProcess) -> None:
    work, _ = work_and_dead_letter_queues()

    result = pack.analyze_stack(replace(compliant_stack(), changed(work, redrivePolicy=unknown())))

    work_diagnostics = [item for item in result.diagnostics if item.policy_name == DLQ and item.urn == work.urn]
    assert len(work_diagnostics) == 1
    assert "cannot verify at the update: the redrivePolicy of fleetguard-events" in work_diagnostics[0].message


def test_a_queue_declaring_itself_a_dead_letter_queue_needs_no_redrive(pack: PolicyPackProcess) -> None:
    dead_letter = queue("fleetguard-shared-dlq", redriveAllowPolicy=json.dumps({"redrivePermission": "allowAll"}))

    assert not violations(pack.analyze_stack([*compliant_stack(), dead_letter]), DLQ)


def test_a_queue_that_refuses_to_be_a_dead_letter_queue_still_needs_one(pack: PolicyPackProcess) -> None:
    denies = queue("fleetguard-closed", redriveAllowPolicy=json.dumps({"redrivePermission": "denyAll"}))

    [message] = violations(pack.analyze_stack([*compliant_stack(), denies]), DLQ)

    assert "queue fleetguard-closed has no redrivePolicy" in message


def test_separate_redrive_resources_count(pack: PolicyPackProcess) -> None:
    # pulumi-aws can attach either policy with its own resource that names the queue by URL.
    work, dead_letter = work_and_dead_letter_queues()
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/fleetguard-events"
    bare_work = changed(work, redrivePolicy=None)
    bare_work = dataclasses.replace(bare_work, outputs={**(bare_work.outputs or {}), "url": url})
    redrive = resource("aws:sqs/redrivePolicy:RedrivePolicy", "events-redrive",
                       {"queueUrl": url, "redrivePolicy": work.inputs["redrivePolicy"]})
    allow_redrive = resource(
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy", "dlq-allow",
        {"queueUrl": unknown(), "redriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})},
        property_dependencies={"queueUrl": [dead_letter.urn]},
    )
    stack = [*replace(compliant_stack(), bare_work), redrive, allow_redrive]

    assert not violations(pack.analyze_stack(stack), DLQ)
    [message] = violations(pack.analyze_stack([item for item in stack if item is not redrive]), DLQ)
    assert "queue fleetguard-events has no redrivePolicy" in message


def test_the_dead_letter_rule_does_not_apply_without_queues(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([*without(compliant_stack(), "aws:sqs/queue:Queue"), device_policy()])

    assert DLQ in result.not_applicable

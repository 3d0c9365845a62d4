"""The fleetguard Detect engine's rules over gRPC: customer keys on the stream and the table, error actions
on topic rules, an on-failure destination for stream consumers; and the engine stacks pass them."""

from __future__ import annotations

from typing import Any

import pytest

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    AnalyzerResource,
    PolicyPackProcess,
    PreviewReport,
    from_registrations,
    load_policy_config_file,
)
from harness.mockstack import Phase, run_stack
from tests.policies.stack_builders import (
    ACCOUNT,
    KEY_ARN,
    REGION,
    TAGS,
    changed,
    judge_shipped,
    queue,
    resource,
    unknown,
    violations,
)
from tests.test_stack_outputs import ENGINE_ONLY, SIDE_BY_SIDE

STREAM_KEY = "detect-engine-stream-customer-key"
TABLE_KEY = "detect-engine-table-customer-key"
ERROR_ACTION = "topic-rule-error-action"
"""The engine's topic rules are judged by the rule every topic rule is."""
ON_FAILURE = "detect-engine-stream-consumer-on-failure"
ENGINE_RULES = (STREAM_KEY, TABLE_KEY, ERROR_ACTION, ON_FAILURE)
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/errors"


def stream(**overrides: Any) -> Any:
    return resource("aws:kinesis/stream:Stream", "reports",
                    {"name": "reports", "encryptionType": "KMS", "kmsKeyId": KEY_ARN, "tags": TAGS, **overrides})


def table(**overrides: Any) -> Any:
    return resource("aws:dynamodb/table:Table", "state", {
        "name": "state", "hashKey": "device", "attributes": [{"name": "device", "type": "S"}],
        "billingMode": "PAY_PER_REQUEST", "serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN},
        "tags": TAGS, **overrides,
    })


def topic_rule(**overrides: Any) -> Any:
    return resource("aws:iot/topicRule:TopicRule", "reports_rule", {
        "name": "reports_rule", "enabled": True, "sql": "SELECT * FROM 'things/+/metrics'", "sqlVersion": "2016-03-23",
        "kineses": [{"streamName": "reports", "partitionKey": "${topic(2)}", "roleArn": "arn:aws:iam::1:role/r"}],
        "errorAction": {"sqs": {"queueUrl": QUEUE_URL, "roleArn": "arn:aws:iam::1:role/r", "useBase64": False}},
        "tags": TAGS, **overrides,
    })


def stream_mapping(**overrides: Any) -> Any:
    return resource("aws:lambda/eventSourceMapping:EventSourceMapping", "evaluator", {
        "eventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/reports", "functionName": "evaluator",
        "startingPosition": "TRIM_HORIZON", "functionResponseTypes": ["ReportBatchItemFailures"],
        "destinationConfig": {"onFailure": {"destinationArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed"}},
        "tags": TAGS, **overrides,
    })


@pytest.mark.parametrize("build", [stream, table, topic_rule, stream_mapping])
def test_compliant_engine_resources_pass(pack: PolicyPackProcess, build: Any) -> None:
    result = pack.analyze(build())
    assert [d.policy_name for d in result.diagnostics if d.policy_name in ENGINE_RULES] == []


@pytest.mark.parametrize(("overrides", "reported"), [
    ({"encryptionType": "NONE", "kmsKeyId": None}, "encryptionType is NONE"),
    ({"encryptionType": None, "kmsKeyId": None}, "encryptionType is NONE"),
    ({"kmsKeyId": "alias/aws/kinesis"}, "is an AWS-managed key"),
    ({"kmsKeyId": None}, "kmsKeyId is missing"),
])
def test_a_stream_without_a_customer_key_is_reported(
    pack: PolicyPackProcess, overrides: dict[str, Any], reported: str
) -> None:
    [message] = violations(pack.analyze(changed(stream(), **overrides)), STREAM_KEY)
    assert reported in message


@pytest.mark.parametrize(("encryption", "reported"), [
    (None, "serverSideEncryption is not enabled"),
    ({"enabled": False}, "serverSideEncryption is not enabled"),
    ({"enabled": True}, "uses the AWS-managed key aws/dynamodb"),
    ({"enabled": True, "kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/dynamodb"}, "is an AWS-managed key"),
])
def test_a_table_without_a_customer_key_is_reported(pack: PolicyPackProcess, encryption: Any, reported: str) -> None:
    [message] = violations(pack.analyze(changed(table(), serverSideEncryption=encryption)), TABLE_KEY)
    assert reported in message


def test_a_key_unknown_at_preview_is_the_stacks_own_key(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(changed(stream(), kmsKeyId=unknown())), STREAM_KEY)
    unknown_key = changed(table(), serverSideEncryption={"enabled": True, "kmsKeyArn": unknown()})
    assert not violations(pack.analyze(unknown_key), TABLE_KEY)


@pytest.mark.parametrize("error_action", [None, {}, {"sqs": None}])
def test_a_topic_rule_without_an_error_action_is_reported(pack: PolicyPackProcess, error_action: Any) -> None:
    [message] = violations(pack.analyze(changed(topic_rule(), errorAction=error_action)), ERROR_ACTION)
    assert "errorAction is not set: messages whose actions fail are dropped" in message


def test_a_stream_consumer_without_an_on_failure_destination_is_reported(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(changed(stream_mapping(), destinationConfig=None)), ON_FAILURE)
    assert "no on-failure destination" in message


def test_a_queue_consumer_needs_no_on_failure_destination(pack: PolicyPackProcess) -> None:
    # SQS sources take no starting position; their queue's redrive policy keeps what fails.
    queue_mapping = changed(stream_mapping(), startingPosition=None, destinationConfig=None,
                            eventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:work")
    assert not violations(pack.analyze(queue_mapping), ON_FAILURE)


def judge_prod(pack: PolicyPackProcess, resources: list[AnalyzerResource], *, ml_required: bool) -> PreviewReport:
    """The prod policy config; a new account, which cannot run ML Detect, turns that requirement off."""
    config = load_policy_config_file(POLICY_CONFIG_DIR / "prod.json")
    config["detect-ml-profile-present"] = {"required": ml_required}
    return judge_shipped(pack, "prod", resources, config=config)


@pytest.mark.parametrize(("variant", "overrides", "ml_required"), [
    ("engine only", ENGINE_ONLY, False),
    ("side by side", SIDE_BY_SIDE, True),
])
def test_the_engine_stacks_pass_the_prod_policy_config_at_the_update(
    pack: PolicyPackProcess, variant: str, overrides: dict[str, Any], ml_required: bool
) -> None:
    report = judge_prod(pack, from_registrations(run_stack("prod", overrides).resources), ml_required=ml_required)

    assert not report.diagnostics, [f"{item.policy_name}: {item.message}" for item in report.diagnostics]


def test_the_engine_stacks_first_preview_blocks_nothing(preview_pack: PolicyPackProcess) -> None:
    run = run_stack("prod", ENGINE_ONLY, phase=Phase.PREVIEW)

    report = judge_prod(preview_pack, from_registrations(run.resources), ml_required=False)

    assert not report.mandatory, [f"{item.policy_name}: {item.message}" for item in report.mandatory]
    # The engine's own rules decide at preview: their values are literals or this stack's own outputs.
    assert not [item for item in report.diagnostics if item.policy_name in ENGINE_RULES]


def test_a_queue_where_a_consumer_or_rule_keeps_failures_is_a_dead_letter_queue(pack: PolicyPackProcess) -> None:
    failures = queue("failed")
    errors = resource("aws:sqs/queue:Queue", "errors", {"name": "errors", "kmsMasterKeyId": KEY_ARN, "tags": TAGS},
                      computed={"arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:errors", "url": QUEUE_URL})
    mapping = stream_mapping()  # on-failure destination: the "failed" queue's ARN
    rule = topic_rule()  # error action: the "errors" queue's URL

    assert not violations(pack.analyze_stack([failures, errors, mapping, rule]), "sqs-dead-letter-queue")
    # Without the consumer and the rule naming them, both are ordinary queues without a redrive policy.
    assert len(violations(pack.analyze_stack([failures, errors]), "sqs-dead-letter-queue")) == 2

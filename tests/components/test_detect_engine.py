"""The fleetguard Detect engine's resources, as the program registers them for a new account (engine only)
and a migration (both engines): every name and value checked against AWS's own models where AWS has one."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pulumi
import pytest
from botocore.loaders import Loader  # type: ignore[import-untyped]

import stack_outputs as out
from components.detect_engine import AUTHORIZATION_FAILURES, PAYLOAD_BYTES, rule_name
from functions.contract import EnvVar, IntakeEnvironment
from functions.contract_engine import (
    EngineHandlerEnvironment,
    EngineSweepEnvironment,
    create_engine_state_table_request,
)
from functions.engine_behaviors import PROFILE_FILE, EngineProfile
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun, run_stack
from settings import load_settings, read_stack_config
from tests.test_stack_outputs import ENGINE_BEHAVIORS, ENGINE_ONLY, SIDE_BY_SIDE

PREFIX = "fleetguard-prod-detect-engine"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/fleetguard-prod-alerts-key-0000"


@pytest.fixture(scope="module")
def engine_only() -> StackRun:
    return run_stack("prod", ENGINE_ONLY)


@pytest.fixture(scope="module")
def side_by_side() -> StackRun:
    return run_stack("prod", SIDE_BY_SIDE)


@pytest.fixture(scope="module")
def shapes() -> dict[str, dict[str, Any]]:
    loader = Loader()
    return {service: loader.load_service_model(service, "service-2")["shapes"]
            for service in ("iot", "kinesis", "lambda", "logs")}


def named(run: StackRun, suffix: str) -> RegisteredResource:
    return run.by_name(f"{PREFIX}-{suffix}")


def document(resource: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def grants(run: StackRun, policy: str) -> dict[str, list[str]]:
    granted: dict[str, list[str]] = {}
    for entry in document(named(run, policy))["Statement"]:
        for action in entry["Action"]:
            granted.setdefault(action, []).extend(entry["Resource"])
    return granted


def rules(run: StackRun) -> list[RegisteredResource]:
    return [rule for rule in run.of_type("aws:iot/topicRule:TopicRule") if rule.name.startswith(PREFIX)]


def test_the_engine_alone_creates_no_security_profile(engine_only: StackRun, side_by_side: StackRun) -> None:
    assert engine_only.of_type("aws-native:iot:SecurityProfile") == []
    profiles = {p.inputs["securityProfileName"] for p in side_by_side.of_type("aws-native:iot:SecurityProfile")}
    # Side by side, Device Defender keeps the ML profile the engine cannot replace.
    assert profiles == {"fleetguard-prod-rules", "fleetguard-prod-ml"}


def test_device_defender_stacks_create_no_engine(any_stack: StackRun) -> None:
    assert not [r for r in any_stack.resources if r.name.startswith(PREFIX)]


def test_the_stream_is_encrypted_with_the_alert_key_and_on_demand(engine_only: StackRun,
                                                                  shapes: dict[str, Any]) -> None:
    stream = named(engine_only, "stream")
    assert (stream.inputs["encryptionType"], stream.inputs["kmsKeyId"]) == ("KMS", KEY_ARN)
    assert stream.inputs["streamModeDetails"] == {"streamMode": "ON_DEMAND"}
    assert "shardCount" not in stream.inputs
    assert re.fullmatch(shapes["kinesis"]["StreamName"]["pattern"], stream.inputs["name"])


def test_shards_make_the_stream_provisioned() -> None:
    section = {**ENGINE_ONLY["detect"], "engineOptions": {"streamShards": 4, "streamRetentionHours": 48}}
    stream = named(run_stack("prod", {"detect": section}), "stream")
    assert stream.inputs["streamModeDetails"] == {"streamMode": "PROVISIONED"}
    assert (stream.inputs["shardCount"], stream.inputs["retentionPeriod"]) == (4, 48)


def test_every_rule_writes_to_the_stream_by_device_and_keeps_its_failures(side_by_side: StackRun,
                                                                          shapes: dict[str, Any]) -> None:
    found = rules(side_by_side)
    # Reports, presence, and one rule per topic filter (two in this variant).
    assert len(found) == 4
    errors_queue = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{PREFIX}-rule-errors"
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/{PREFIX}-rules-role"
    for rule in found:
        assert re.fullmatch(shapes["iot"]["RuleName"]["pattern"], rule.inputs["name"]), rule.inputs["name"]
        assert len(rule.inputs["name"]) <= shapes["iot"]["RuleName"]["max"]
        assert rule.inputs["sqlVersion"] == "2016-03-23"
        [kinesis] = rule.inputs["kineses"]
        assert kinesis["streamName"] == f"{PREFIX}-stream"
        assert kinesis["roleArn"] == role
        assert re.fullmatch(r"\$\{[^}]+\}", kinesis["partitionKey"])
        assert rule.inputs["errorAction"] == {"sqs": {"queueUrl": errors_queue, "roleArn": role, "useBase64": False}}


def test_the_report_rule_takes_basic_ingest_reports_only_from_the_thing_itself(engine_only: StackRun) -> None:
    rule = named(engine_only, "device-metrics-rule")
    # Basic Ingest hides $aws/rules/<rule>/ from the rule: things/<thingName>/metrics, thing name is topic(2).
    assert rule.inputs["sql"].endswith("FROM 'things/+/metrics' WHERE topic(2) = clientid()")
    assert "'device-report' AS fg_kind, topic(2) AS fg_device" in rule.inputs["sql"]
    assert rule.inputs["kineses"][0]["partitionKey"] == "${topic(2)}"
    topic = engine_only.outputs[out.ENGINE_REPORT_TOPIC]
    assert topic == f"$aws/rules/{rule.inputs['name']}/things/<thingName>/metrics"


def test_presence_and_message_rules(side_by_side: StackRun) -> None:
    presence = named(side_by_side, "presence-rule")
    assert presence.inputs["sql"].endswith("FROM '$aws/events/presence/+/+'")
    assert presence.inputs["kineses"][0]["partitionKey"] == "${clientId}"
    messages = [named(side_by_side, f"messages-{index}-rule") for index in range(2)]
    assert [m.inputs["sql"].rsplit("FROM ", 1)[1] for m in messages] == ["'telemetry/+/data'", "'commands/#'"]
    assert all(f"{PAYLOAD_BYTES} AS fg_bytes" in m.inputs["sql"] for m in messages)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 100, 65536])
def test_the_payload_size_expression_overcounts_by_at_most_two_bytes(size: int) -> None:
    encoded = len(base64.b64encode(b"x" * size))
    # IoT SQL's integer division: the base64 length is a multiple of 4, so the division is exact.
    measured = (encoded // 4) * 3
    assert size <= measured <= size + 2


def test_the_rules_role_writes_only_to_the_stream_and_its_failure_queue(engine_only: StackRun) -> None:
    role = named(engine_only, "rules-role")
    trust = document(role, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert grants(engine_only, "rules-policy") == {
        "kinesis:PutRecord": [f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{PREFIX}-stream"],
        "sqs:SendMessage": [f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{PREFIX}-rule-errors"],
        "kms:Decrypt": [KEY_ARN], "kms:GenerateDataKey": [KEY_ARN],
    }


def test_authorization_failures_come_from_the_iot_logs(engine_only: StackRun, shapes: dict[str, Any]) -> None:
    subscription = named(engine_only, "authorization-failures")
    assert subscription.inputs["logGroup"] == "AWSIotLogsV2"
    assert subscription.inputs["filterPattern"] == AUTHORIZATION_FAILURES
    assert subscription.inputs["destinationArn"].endswith(f":stream/{PREFIX}-stream")
    assert subscription.inputs["distribution"] in shapes["logs"]["Distribution"]["enum"]
    # Prod creates the log group: the subscription waits for it.
    log_group = engine_only.by_name("fleetguard-prod-quarantine-iot-logs")
    assert log_group.urn in subscription.dependencies
    trust = document(named(engine_only, "logs-role"), "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    assert trust["Condition"] == {"StringLike": {"aws:SourceArn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:*"}}


def test_the_state_table_is_the_one_the_handler_expects_encrypted_with_the_alert_key(engine_only: StackRun) -> None:
    table = named(engine_only, "state")
    expected = create_engine_state_table_request(table.inputs["name"])
    assert table.inputs["hashKey"] == expected["KeySchema"][0]["AttributeName"]
    assert {(a["name"], a["type"]) for a in table.inputs["attributes"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in expected["AttributeDefinitions"]
    }
    [index] = expected["GlobalSecondaryIndexes"]
    assert table.inputs["globalSecondaryIndexes"] == [{
        "name": index["IndexName"], "hashKey": index["KeySchema"][0]["AttributeName"],
        "projectionType": index["Projection"]["ProjectionType"],
    }]
    assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": KEY_ARN}
    assert table.inputs["ttl"] == {"enabled": True, "attributeName": "expiresAt"}
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}


def test_the_evaluator_reads_the_stream_with_partial_failures_and_an_on_failure_queue(
    engine_only: StackRun, shapes: dict[str, Any]
) -> None:
    mapping = named(engine_only, "event-source")
    assert mapping.inputs["eventSourceArn"].endswith(f":stream/{PREFIX}-stream")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["bisectBatchOnFunctionError"] is True
    assert mapping.inputs["destinationConfig"] == {
        "onFailure": {"destinationArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{PREFIX}-dlq"}
    }
    assert mapping.inputs["startingPosition"] in shapes["lambda"]["EventSourcePosition"]["enum"]
    for key, shape in (("batchSize", "BatchSize"), ("maximumBatchingWindowInSeconds", "MaximumBatchingWindowInSeconds"),
                       ("parallelizationFactor", "ParallelizationFactor"),
                       ("maximumRetryAttempts", "MaximumRetryAttemptsEventSourceMapping")):
        bounds = shapes["lambda"][shape]
        assert bounds["min"] <= mapping.inputs[key] <= bounds["max"], key


@pytest.mark.parametrize("function", ["evaluator", "sweep"])
def test_both_functions_carry_the_profile_built_from_the_rule_behaviors(engine_only: StackRun, function: str) -> None:
    code = named(engine_only, f"{function}-function").inputs["code"]
    assert isinstance(code, pulumi.AssetArchive)
    asset = code.assets[f"functions/{PROFILE_FILE}"]
    assert isinstance(asset, pulumi.StringAsset)
    profile = EngineProfile.from_json(asset.text)
    assert profile.profile_name == "fleetguard-prod-engine"
    assert profile.target_groups == ()
    assert [(b.name, b.metric, b.operator) for b in profile.behaviors] == [
        (b["name"], b["metric"], b["operator"]) for b in ENGINE_BEHAVIORS
    ]
    assert profile.behaviors[1].datapoints_to_clear == 2
    assert profile.behaviors[0].ports == (443, 8883)


def test_the_functions_environments_read_back(engine_only: StackRun) -> None:
    evaluator = named(engine_only, "evaluator-function").inputs["environment"]["variables"]
    config = EngineHandlerEnvironment.from_environment(evaluator)
    assert config.state_table == f"{PREFIX}-state"
    assert config.dead_letter_queue_url.endswith(f"/{PREFIX}-dlq")
    assert config.alert_topic_arn == f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:fleetguard-prod-alerts"
    sweep = named(engine_only, "sweep-function").inputs["environment"]["variables"]
    assert EngineSweepEnvironment.from_environment(sweep).state_table == f"{PREFIX}-state"


def test_the_evaluator_may_do_exactly_its_work(engine_only: StackRun) -> None:
    granted = grants(engine_only, "evaluator-policy")
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{PREFIX}-state"
    assert set(granted) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "sns:Publish", "kms:Decrypt", "kms:GenerateDataKey",
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
        "kinesis:ListShards", "sqs:SendMessage", "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem",
        "dynamodb:UpdateItem", "iot:ListThingGroupsForThing",
    }
    assert granted["dynamodb:PutItem"] == [table]
    sweep = grants(engine_only, "sweep-policy")
    assert sweep["dynamodb:Scan"] == [f"{table}/index/alarmed"]
    assert sweep["dynamodb:UpdateItem"] == [table]
    assert "kinesis:GetRecords" not in sweep


def test_the_sweep_runs_on_a_schedule(engine_only: StackRun) -> None:
    schedule = named(engine_only, "sweep-schedule")
    assert schedule.inputs["scheduleExpression"] == "rate(60 minutes)"
    permission = named(engine_only, "sweep-permission")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"] == f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{PREFIX}-sweep"


def test_the_device_policy_lets_a_device_publish_its_own_reports_only(engine_only: StackRun) -> None:
    policy = document(named(engine_only, "device-policy"))
    rule = rule_name("fleetguard-prod", "device_metrics")
    assert policy["Statement"] == [{
        "Sid": "PublishOwnMetricsReports", "Effect": "Allow", "Action": ["iot:Publish"],
        "Resource": [f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:topic/$aws/rules/{rule}/things/"
                     "${iot:Connection.Thing.ThingName}/metrics"],
    }]


def test_the_alert_key_serves_kinesis_only_with_the_engine(
    engine_only: StackRun, prod_stack: StackRun
) -> None:
    def via_services(run: StackRun) -> list[str]:
        key = document(run.one("aws:kms/key:Key"))
        [use] = [s for s in key["Statement"] if s["Sid"] == "AccountPrincipalsUseKeyViaMessaging"]
        services: list[str] = use["Condition"]["StringEquals"]["kms:ViaService"]
        return services

    assert via_services(prod_stack) == [f"{service}.{REGION}.amazonaws.com" for service in ("sns", "sqs", "dynamodb")]
    assert via_services(engine_only) == [f"{service}.{REGION}.amazonaws.com"
                                         for service in ("sns", "sqs", "dynamodb", "kinesis")]
    key = document(engine_only.one("aws:kms/key:Key"))
    [grant] = [s for s in key["Statement"] if s["Sid"] == "AccountPrincipalsLetDynamoDbUseKey"]
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_the_intake_knows_the_engine_profile_and_may_contain_devices_itself(engine_only: StackRun) -> None:
    variables = engine_only.by_name("fleetguard-prod-intake-handler-function").inputs["environment"]["variables"]
    config = IntakeEnvironment.from_environment(variables)
    settings = load_settings(read_stack_config(engine_only.config))
    assert config.engine_profile_names == ("fleetguard-prod-engine",)
    assert config.containment_rate == 100 // settings.incident_response.intake.max_concurrency
    assert config.incident_manager_enabled  # prod has Incident Manager, and still contains engine storms itself
    statements = document(engine_only.by_name("fleetguard-prod-intake-handler-policy"))["Statement"]
    assert any("iot:AddThingToThingGroup" in s["Action"] for s in statements)
    # No Device Defender profile here, so no bulk mitigation task is granted.
    assert not any("iot:StartDetectMitigationActionsTask" in s["Action"] for s in statements)


def test_device_defender_intake_names_no_engine_profile(prod_stack: StackRun) -> None:
    variables = prod_stack.by_name("fleetguard-prod-intake-handler-function").inputs["environment"]["variables"]
    assert EnvVar.ENGINE_PROFILE_NAMES.value not in variables

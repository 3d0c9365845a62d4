"""The shared Lambda function component: every function the program registers gets its own role, a log
group with retention it can write to, and the Powertools layer published for its partition and region."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.function import (
    ARCHITECTURE,
    RUNTIME,
    powertools_layer_account,
    powertools_layer_name,
)
from tools.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun


def children(stack: StackRun, parent: RegisteredResource) -> dict[str, RegisteredResource]:
    return {r.type: r for r in stack.resources if r.parent == parent.urn}


def function_components(stack: StackRun) -> list[RegisteredResource]:
    found = stack.of_type("fleetguard:function:Function")
    assert found, "the program registers no function"
    return found


@pytest.mark.parametrize(("partition", "region", "account"), [
    ("aws", "us-east-1", "017000801446"),
    ("aws", "ap-southeast-5", "017000801446"),
    ("aws-cn", "cn-north-1", "498634801083"),
    ("aws-us-gov", "us-gov-east-1", "165087284144"),
    ("aws-us-gov", "us-gov-west-1", "165093116878"),
])
def test_layer_account_follows_the_partition_and_region(partition: str, region: str, account: str) -> None:
    assert powertools_layer_account(partition, region) == account


def test_a_region_without_a_published_layer_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"no layer in cn-northwest-1 \(partition aws-cn\)"):
        powertools_layer_account("aws-cn", "cn-northwest-1")


def test_layer_name_matches_runtime_and_architecture() -> None:
    assert RUNTIME == "python3.13"
    assert ARCHITECTURE == "arm64"
    assert powertools_layer_name() == "AWSLambdaPowertoolsPythonV3-python313-arm64"


def test_each_function_has_its_own_log_group_with_retention(any_stack: StackRun) -> None:
    for component in function_components(any_stack):
        parts = children(any_stack, component)
        log_group = parts["aws:cloudwatch/logGroup:LogGroup"]
        function = parts["aws:lambda/function:Function"]
        assert log_group.inputs["name"] == f"/aws/lambda/{component.name}"
        assert log_group.inputs["retentionInDays"] > 0
        assert function.inputs["name"] == component.name
        assert function.inputs["loggingConfig"] == {"logFormat": "JSON", "logGroup": log_group.inputs["name"]}
        # Created after its log group, so Lambda never creates one without retention first.
        assert log_group.urn in function.dependencies


def test_each_function_role_trusts_lambda_and_writes_only_its_own_logs(any_stack: StackRun) -> None:
    roles = set()
    for component in function_components(any_stack):
        parts = children(any_stack, component)
        role, grant = parts["aws:iam/role:Role"], parts["aws:iam/rolePolicy:RolePolicy"]
        function, log_group = parts["aws:lambda/function:Function"], parts["aws:cloudwatch/logGroup:LogGroup"]
        assert function.inputs["role"] == role.outputs["arn"]
        assert grant.inputs["role"] == role.id
        assert grant.urn in function.dependencies
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert [entry["Principal"] for entry in trust] == [{"Service": "lambda.amazonaws.com"}]
        statements: list[dict[str, Any]] = json.loads(grant.inputs["policy"])["Statement"]
        logs = next(entry for entry in statements if entry.get("Sid") == "WriteOwnLogs")
        assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert logs["Resource"] == [f"{log_group.outputs['arn']}:*"]
        log_groups = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group"
        assert log_group.outputs["arn"] == f"{log_groups}:/aws/lambda/{component.name}"
        roles.add(role.urn)
    assert len(roles) == len(function_components(any_stack))


def test_each_function_runs_the_pinned_runtime_with_the_powertools_layer(any_stack: StackRun) -> None:
    for component in function_components(any_stack):
        function = children(any_stack, component)["aws:lambda/function:Function"]
        assert function.inputs["runtime"] == RUNTIME
        assert function.inputs["architectures"] == [ARCHITECTURE]
        [layer] = function.inputs["layers"]
        assert layer.startswith(f"arn:aws:lambda:{REGION}:017000801446:layer:{powertools_layer_name()}:")
        assert int(layer.rsplit(":", 1)[1]) > 0
        assert function.inputs["handler"].startswith("functions.")

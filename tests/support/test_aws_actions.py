"""tests.support.aws_actions: policy actions checked against botocore's service models."""

import json
from typing import Any

import pytest

from tests.support.aws_actions import (
    NON_API_ACTIONS,
    SERVICE_MODELS,
    service_operations,
    unknown_actions,
    wildcard_actions,
)


def allow(*actions: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "arn:aws:iot:*:*:thing/x"}],
    }


@pytest.mark.parametrize(
    "action",
    [
        "iot:AddThingToThingGroup",
        "iot:StartDetectMitigationActionsTask",
        "iot:ListActiveViolations",
        "sns:Publish",
        "sts:AssumeRole",
        "ssm-incidents:StartIncident",
        "ssm-contacts:StartEngagement",
        "ssm:StartAutomationExecution",
        "securityhub:BatchImportFindings",
        "kms:GenerateDataKey",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "cloudwatch:PutMetricData",
        "events:PutEvents",
        "sqs:SendMessage",
        "lambda:InvokeFunction",
        "iam:PassRole",
    ],
)
def test_real_actions_pass(action: str) -> None:
    assert unknown_actions(allow(action)) == []


@pytest.mark.parametrize(
    "action",
    [
        # MQTT data plane, authorised by IoT policies.
        "iot:Connect",
        "iot:Publish",
        "iot:Subscribe",
        "iot:Receive",
        "iot:RetainPublish",
        # Device Shadow (iot-data model).
        "iot:GetThingShadow",
        "iot:UpdateThingShadow",
        "iot:DeleteThingShadow",
        # Jobs for devices (iot-jobs-data model).
        "iot:DescribeJobExecution",
        "iot:GetPendingJobExecutions",
        "iot:StartNextPendingJobExecution",
        "iot:UpdateJobExecution",
        # Secure tunneling (iotsecuretunneling model), authorised under the iot prefix.
        "iot:OpenTunnel",
        "iot:RotateTunnelAccessToken",
    ],
)
def test_iot_policy_actions_for_devices_pass(action: str) -> None:
    assert unknown_actions(allow(action)) == []


def test_action_names_compare_case_insensitively_as_iam_does() -> None:
    assert unknown_actions(allow("IOT:addthingtothinggroup", "iot:connect")) == []


def test_typo_is_reported_with_location_and_suggestion() -> None:
    findings = unknown_actions(allow("iot:DescribeThing", "iot:AddThingToGroup"))

    assert len(findings) == 1, findings
    assert findings[0].startswith("Statement[0].Action[1]: iot:AddThingToGroup is not an operation")
    assert "iot, iot-data, iot-jobs-data, iotsecuretunneling" in findings[0]
    assert findings[0].endswith("did you mean iot:AddThingToThingGroup?")


def test_unmapped_prefix_is_reported() -> None:
    (finding,) = unknown_actions(allow("gamelift:CreateFleet"))

    assert "no botocore model is mapped for IAM prefix 'gamelift'" in finding


def test_action_without_a_service_prefix_is_reported() -> None:
    (finding,) = unknown_actions(allow("Publish"))

    assert "'Publish' is not of the form service:Action" in finding


def test_wildcards_are_reported_separately() -> None:
    document = allow("iot:*", "iot:Describe*", "sns:Publish")

    assert unknown_actions(document) == []
    findings = wildcard_actions(document)
    assert len(findings) == 2, findings
    assert findings[0].startswith("Statement[0].Action[0]: 'iot:*' is a wildcard")
    assert findings[1].startswith("Statement[0].Action[1]: 'iot:Describe*' is a wildcard")


def test_bare_star_and_question_mark_are_wildcards() -> None:
    assert len(wildcard_actions(allow("*", "sns:Publis?"))) == 2


def test_wildcard_matching_nothing_is_also_unknown() -> None:
    (finding,) = unknown_actions(allow("iot:Frobnicate*"))

    assert "'iot:Frobnicate*' matches no iot action" in finding


def test_named_actions_are_not_wildcards() -> None:
    assert wildcard_actions(allow("iot:Connect", "iot:Publish")) == []


def test_json_string_single_statement_and_string_action_are_accepted() -> None:
    document = json.dumps({"Statement": {"Effect": "Deny", "Action": "iot:AddThingToGroup", "Resource": "*"}})

    (finding,) = unknown_actions(document)

    assert finding.startswith("Statement.Action: iot:AddThingToGroup")
    assert wildcard_actions(json.dumps({"Statement": {"Effect": "Deny", "Action": "iot:*"}})) == [
        "Statement.Action: 'iot:*' is a wildcard; name each action the statement needs"
    ]


def test_deny_statements_are_checked_too() -> None:
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Deny", "Action": ["iot:Publsh"], "Resource": "*"},
        ]
    }

    (finding,) = unknown_actions(document)

    assert finding.startswith("Statement[1].Action[0]: iot:Publsh")


def test_not_action_is_a_finding() -> None:
    document = {"Statement": [{"Effect": "Deny", "NotAction": ["iot:Connect"], "Resource": "*"}]}

    (finding,) = unknown_actions(document)

    assert finding.startswith("Statement[0].NotAction: ")


def test_statement_without_any_action_is_a_finding() -> None:
    (finding,) = unknown_actions({"Statement": [{"Effect": "Allow", "Resource": "*"}]})

    assert finding == "Statement[0]: has neither Action nor NotAction, which AWS rejects"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object, got list"),
        ({"Version": "2012-10-17"}, "needs a Statement object or list, got None"),
        ({"Statement": ["iot:Connect"]}, r"Statement\[0\] must be an object, got str"),
        ({"Statement": {"Effect": "Allow", "Action": 7}}, "Statement.Action must be a string or a list"),
        ({"Statement": {"Effect": "Allow", "Action": ["iot:Connect", None]}}, "Statement.Action must be"),
    ],
)
def test_malformed_documents_raise_a_clear_error(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        unknown_actions(document)


@pytest.mark.parametrize("action", sorted(NON_API_ACTIONS))
def test_non_api_allow_list_holds_only_actions_the_models_lack(action: str) -> None:
    prefix, operation = action.split(":")
    assert prefix in SERVICE_MODELS
    assert not any(operation in service_operations(service) for service in SERVICE_MODELS[prefix])
    assert NON_API_ACTIONS[action]  # every entry says why it is allowed


@pytest.mark.parametrize("service", sorted({service for services in SERVICE_MODELS.values() for service in services}))
def test_every_mapped_service_model_exists(service: str) -> None:
    assert service_operations(service)

"""tests.support.iam_reference: statements checked against the Service Authorization Reference's resource types."""

import json
from typing import Any

import pytest

from tests.support.iam_reference import arn_may_match, authorisation_gaps, reference_version, resource_types

ACCOUNT = "123456789012"
RESPONSE_PLAN = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/fleet-plan"
INCIDENT_RECORDS = f"arn:aws:ssm-incidents::{ACCOUNT}:incident-record/fleet-plan/*"
THINGS = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/*"
QUARANTINE_GROUP = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/QUARANTINED"


def allow(actions: list[str], resources: list[str] | str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}]}


@pytest.mark.parametrize(
    "action",
    ["ssm-incidents:CreateTimelineEvent", "ssm-incidents:UpdateRelatedItems", "ssm-incidents:ListRelatedItems"],
)
def test_incident_record_actions_also_require_the_response_plan(action: str) -> None:
    required = {resource_type.name for resource_type in resource_types(action) if resource_type.required}

    assert required == {"incident-record", "response-plan"}
    (finding,) = authorisation_gaps(allow([action], [INCIDENT_RECORDS]))
    assert finding.startswith(f"Statement[0].Action[0]: {action} is authorised against required resource type ")
    assert "response-plan (arn:${Partition}:ssm-incidents::${Account}:response-plan/${ResponsePlan})" in finding
    assert authorisation_gaps(allow([action], [INCIDENT_RECORDS, RESPONSE_PLAN])) == []


def test_each_missing_required_type_is_named() -> None:
    (finding,) = authorisation_gaps(allow(["iot:AddThingToThingGroup"], [f"arn:aws:s3:::bucket/{ACCOUNT}"]))

    assert "thing (arn:" in finding
    assert "thinggroup (arn:" in finding


def test_one_statement_covering_every_required_type_passes() -> None:
    assert authorisation_gaps(allow(["iot:AddThingToThingGroup"], [QUARANTINE_GROUP, THINGS])) == []
    (finding,) = authorisation_gaps(allow(["iot:AddThingToThingGroup"], [THINGS]))
    assert "thinggroup" in finding


def test_action_without_resource_types_needs_star() -> None:
    (finding,) = authorisation_gaps(allow(["xray:PutTraceSegments"], [THINGS]))

    assert finding == (
        'Statement[0].Action[0]: xray:PutTraceSegments supports no resource type, so only "Resource": "*" grants it'
    )
    assert authorisation_gaps(allow(["xray:PutTraceSegments"], "*")) == []


def test_action_with_only_optional_types_needs_one_of_them() -> None:
    profile = f"arn:aws:iot:us-east-1:{ACCOUNT}:securityprofile/rules"

    assert authorisation_gaps(allow(["iot:StartDetectMitigationActionsTask"], [profile])) == []
    (finding,) = authorisation_gaps(allow(["iot:StartDetectMitigationActionsTask"], [QUARANTINE_GROUP]))
    assert "is authorised against one of securityprofile" in finding


def test_unknown_action_and_prefix_are_reported() -> None:
    findings = authorisation_gaps(allow(["iot:AddThingToGroup", "nosuchservice:Do"], "*"))

    assert findings == [
        f"Statement[0].Action[0]: iot:AddThingToGroup is not in the Service Authorization Reference "
        f"({reference_version()})",
        "Statement[0].Action[1]: nosuchservice:Do has no service prefix 'nosuchservice' in the Service "
        "Authorization Reference",
    ]


def test_action_names_compare_case_insensitively() -> None:
    assert authorisation_gaps(allow(["IOT:describething"], [THINGS])) == []


def test_wildcard_actions_are_checked_for_each_action_they_stand_for() -> None:
    findings = authorisation_gaps(allow(["ssm-incidents:*RelatedItems"], [INCIDENT_RECORDS]))

    assert [finding.split(" is ")[0] for finding in findings] == [
        "Statement[0].Action[0]: ssm-incidents:ListRelatedItems",
        "Statement[0].Action[0]: ssm-incidents:UpdateRelatedItems",
    ]


def test_deny_and_resourceless_statements_are_checked_for_actions_only() -> None:
    document = json.dumps({"Statement": [
        {"Effect": "Deny", "Action": ["iot:Connect"], "NotResource": [f"arn:aws:iot:us-east-1:{ACCOUNT}:client/x"]},
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Action": "iot:Publsh", "Resource": THINGS},
    ]})

    (finding,) = authorisation_gaps(document)

    assert finding.startswith("Statement[2].Action: iot:Publsh is not in the Service Authorization Reference")


def test_allow_with_not_resource_is_reported() -> None:
    document = {"Statement": {"Effect": "Allow", "Action": "iot:DescribeThing", "NotResource": QUARANTINE_GROUP}}

    assert authorisation_gaps(document) == [
        "Statement.NotResource: allows every resource except those listed; name them instead"
    ]


def test_malformed_resource_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"Statement\[0\]\.Resource must be a string or a list of strings"):
        authorisation_gaps(allow(["iot:DescribeThing"], [THINGS, 7]))  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("resource", "template"),
    [
        ("*", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        (THINGS, "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        (f"arn:aws:iot:*:{ACCOUNT}:thing/sensor-?", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        # A policy variable stands for some value, as a placeholder does.
        (f"arn:aws:iot:us-east-1:{ACCOUNT}:client/${{iot:Connection.Thing.ThingName}}",
         "arn:${Partition}:iot:${Region}:${Account}:client/${ClientId}"),
        # The resource part may hold colons; a trailing wildcard reaches the log streams of one group.
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/contain:*",
         "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"),
        # A wildcard that ends a segment reaches across the colons after it.
        ("arn:aws:iot:*", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        # Both sides may be wildcards.
        (f"arn:aws:ssm:us-east-1:{ACCOUNT}:automation-execution/*",
         "arn:${Partition}:ssm:${Region}:${Account}:automation-execution/${AutomationExecutionId}"),
    ],
)
def test_matching_resources(resource: str, template: str) -> None:
    assert arn_may_match(resource, template)


@pytest.mark.parametrize(
    ("resource", "template"),
    [
        # Incident Manager ARNs carry no region: a regional ARN names nothing.
        (f"arn:aws:ssm-incidents:us-east-1:{ACCOUNT}:response-plan/p",
         "arn:${Partition}:ssm-incidents::${Account}:response-plan/${ResponsePlan}"),
        (INCIDENT_RECORDS, "arn:${Partition}:ssm-incidents::${Account}:response-plan/${ResponsePlan}"),
        # A placeholder is never empty.
        (f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        # A wildcard inside a segment does not reach across the colons after it.
        ("arn:aws:iot*thing/x", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        # ARNs compare case-sensitively.
        (f"arn:aws:iot:us-east-1:{ACCOUNT}:Thing/*", "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"),
        # Without a wildcard, the log group alone is not one of its streams.
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/contain",
         "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"),
    ],
)
def test_non_matching_resources(resource: str, template: str) -> None:
    assert not arn_may_match(resource, template)


def test_escaped_wildcard_is_a_literal_character() -> None:
    template = "arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}"

    assert arn_may_match(f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/a${{*}}b", template)
    assert not arn_may_match(f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/${{*}}", "arn:aws:iot:us-east-1:1:thing/ab")

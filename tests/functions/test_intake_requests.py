"""The Incident Manager requests and links the intake builds: valid against the ssm-incidents model at
the limits, and Logs Insights links that decode back to the query they carry."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

from functions.incidents import (
    MAX_RAW_DATA,
    MAX_URL,
    AccountScope,
    add_device_request,
    audit_incident_request,
    bounded_json,
    device_logs_query,
    device_logs_url,
    epoch_ms_to_datetime,
    logs_insights_url,
    storm_incident_request,
    timeline_note_request,
    violation_incident_request,
)
from functions.messages import AuditNotification, ViolationEvent, parse_message
from functions.notices import Notice, publish
from tests.functions.intake_support import LOG_GROUP, PLAN_ARN, incident_arn, violation

SCOPE = AccountScope("aws", "eu-west-1", "123456789012")
LONGEST_NAME = "n" * 127 + ":"
MODEL = botocore.session.get_session().get_service_model("ssm-incidents")


def limit_problems(shape: Any, value: Any, path: str) -> list[str]:
    """What botocore's validator leaves to the service: string and list length bounds and string patterns."""
    problems: list[str] = []
    bounds = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                problems += limit_problems(member, value[name], f"{path}.{name}")
    elif shape.type_name in {"list", "map"}:
        if len(value) > bounds.get("max", len(value)) or len(value) < bounds.get("min", 0):
            problems.append(f"{path}: {len(value)} items, expected {bounds.get('min', 0)}..{bounds.get('max')}")
        items = value if shape.type_name == "list" else value.values()
        member = shape.member if shape.type_name == "list" else shape.value
        for index, item in enumerate(items):
            problems += limit_problems(member, item, f"{path}[{index}]")
    elif shape.type_name == "string":
        if len(value) > bounds.get("max", len(value)) or len(value) < bounds.get("min", 0):
            problems.append(f"{path}: {len(value)} characters, expected {bounds.get('min', 0)}..{bounds.get('max')}")
        if "pattern" in bounds and not re.fullmatch(bounds["pattern"], value, re.DOTALL):
            problems.append(f"{path}: {value[:60]!r} does not match {bounds['pattern']}")
    return problems


def check(operation: str, params: dict[str, Any]) -> None:
    """Fails if the request breaks the API model: types and required members (botocore's own validator),
    then lengths, item counts and patterns, which botocore leaves to the service."""
    shape = MODEL.operation_model(operation).input_shape
    validate_parameters(params, shape)
    assert limit_problems(shape, params, operation) == []


def test_the_limit_check_catches_what_botocore_lets_through() -> None:
    request = {"responsePlanArn": "not an arn", "title": "x" * 201}
    shape = MODEL.operation_model("StartIncident").input_shape
    validate_parameters(request, shape)  # botocore accepts both
    problems = limit_problems(shape, request, "StartIncident")
    assert any(problem.startswith("StartIncident.title: 201 characters") for problem in problems)
    assert any(problem.startswith("StartIncident.responsePlanArn:") for problem in problems)


def test_a_long_colon_thing_name_keeps_every_link_within_the_url_limit() -> None:
    # ':' triples in the console's encoding: the full query would make a link over 1,000 characters.
    name = "a:" * 64
    scope = AccountScope("aws", "ap-southeast-2", "123456789012")
    query = device_logs_query(name)
    assert query is not None
    full = logs_insights_url(scope, LOG_GROUP, query, datetime(2026, 1, 1, tzinfo=UTC))
    assert len(full) > MAX_URL
    message = violation(name, violation_id="v-1")
    event = parse_message(json.dumps(message))
    assert isinstance(event, ViolationEvent)

    request = violation_incident_request(event, response_plan_arn=PLAN_ARN, impact=1, scope=scope,
                                         log_group=LOG_GROUP)

    check("StartIncident", request)
    (logs_item,) = [item for item in request["relatedItems"] if "logs-insights" in item["identifier"]["value"].get(
        "url", "")]
    url = logs_item["identifier"]["value"]["url"]
    assert len(url) <= MAX_URL
    assert device_logs_url(scope, LOG_GROUP, name, epoch_ms_to_datetime(event.event_time_ms)) == url
    assert "thingName" not in url  # the client-id-only query


def longest_violation() -> ViolationEvent:
    message = violation(LONGEST_NAME, violation_id="v" * 128, profile=LONGEST_NAME, behavior=LONGEST_NAME)
    message["behavior"]["criteria"] = {"comparisonOperator": "in-cidr-set",
                                       "value": {"cidrs": [f"10.{n // 256}.{n % 256}.0/24" for n in range(2000)]}}
    message["metricValue"] = {"cidrs": [f"192.168.{n % 256}.{n // 256}/32" for n in range(2000)]}
    event = parse_message(json.dumps(message))
    assert isinstance(event, ViolationEvent)
    return event


def test_every_request_is_valid_for_the_api_with_the_longest_names_and_values() -> None:
    event = longest_violation()
    arn = incident_arn("x")
    requests = {
        "StartIncident": violation_incident_request(event, response_plan_arn=PLAN_ARN, impact=1, scope=SCOPE,
                                                    log_group=LOG_GROUP),
        "UpdateRelatedItems": add_device_request(SCOPE, arn, LONGEST_NAME),
        "CreateTimelineEvent": timeline_note_request(arn, "x" * 20_000, datetime(2026, 1, 1, tzinfo=UTC), ["t"]),
    }
    storm = storm_incident_request(LONGEST_NAME, LONGEST_NAME, datetime(2026, 1, 1, tzinfo=UTC),
                                   response_plan_arn=PLAN_ARN, impact=2, scope=SCOPE, log_group=LOG_GROUP)

    for operation, params in requests.items():
        check(operation, params)
    check("StartIncident", storm)
    assert len(requests["StartIncident"]["title"]) == 200
    assert requests["StartIncident"]["title"].endswith("...")
    assert len(requests["StartIncident"]["triggerDetails"]["rawData"]) <= MAX_RAW_DATA
    assert not requests["StartIncident"]["triggerDetails"]["source"].startswith("aws.")


def test_an_oversized_message_keeps_its_identifiers_in_the_trigger_data() -> None:
    event = longest_violation()

    raw = json.loads(bounded_json(event.raw, MAX_RAW_DATA))

    assert raw["violationId"] == "v" * 128
    assert raw["violationEventType"] == "in-alarm"
    assert raw["metricValue"].startswith("omitted: ")
    assert len(json.dumps(raw, separators=(",", ":"))) <= MAX_RAW_DATA


def test_audit_incident_request_is_valid_and_names_the_checks() -> None:
    message = {
        "accountId": "123456789012", "taskId": "a" * 40, "taskStatus": "COMPLETED",
        "taskType": "ON_DEMAND_AUDIT_TASK", "failedChecksCount": 0, "canceledChecksCount": 0,
        "nonCompliantChecksCount": 1, "compliantChecksCount": 0, "totalChecksCount": 1,
        "taskStartTime": 1795219200000,
        "auditDetails": [{"checkName": "DEVICE_CERTIFICATE_SHARED_CHECK", "checkRunStatus": "COMPLETED_NON_COMPLIANT",
                          "nonCompliantResourcesCount": 4, "totalResourcesCount": 9}],
    }
    audit = parse_message(json.dumps(message))
    assert isinstance(audit, AuditNotification)

    request = audit_incident_request(audit, audit.non_compliant_checks, response_plan_arn=PLAN_ARN, impact=1)

    check("StartIncident", request)
    assert request["title"].endswith("1 critical check(s) non-compliant: DEVICE_CERTIFICATE_SHARED_CHECK")


@pytest.mark.parametrize(
    ("function_arn", "thing_arn", "console"),
    [
        ("arn:aws:lambda:eu-west-1:123456789012:function:intake", "arn:aws:iot:eu-west-1:123456789012:thing/t",
         "https://eu-west-1.console.aws.amazon.com"),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:intake:live",
         "arn:aws-cn:iot:cn-north-1:123456789012:thing/t", "https://cn-north-1.console.amazonaws.cn"),
        ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:intake",
         "arn:aws-us-gov:iot:us-gov-west-1:123456789012:thing/t", "https://us-gov-west-1.console.amazonaws-us-gov.com"),
    ],
)
def test_arns_and_console_links_follow_the_partition(function_arn: str, thing_arn: str, console: str) -> None:
    scope = AccountScope.from_function_arn(function_arn)

    assert scope.thing_arn("t") == thing_arn
    assert scope.console == console


def test_a_context_without_a_function_arn_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"context\.invoked_function_arn: expected a Lambda function ARN"):
        AccountScope.from_function_arn("intake")


def decode_logs_insights(url: str) -> dict[str, str]:
    """Undo the console's two encodings and read the ~(key~'value ...) pairs of the query detail."""
    fragment = url.split("#logsV2:logs-insights", 1)[1]
    detail = unquote(fragment.replace("$", "%"))
    assert detail.startswith("?queryDetail=~(")
    pairs = re.findall(r"[(~](\w+)~'([^~()]*)", detail)
    source = re.search(r"~source~\(~'([^~()]*)\)", detail)
    assert source is not None
    decoded = {key: unquote(value.replace("*", "%")) for key, value in pairs}
    decoded["source"] = unquote(source.group(1).replace("*", "%"))
    return decoded


def test_logs_insights_link_carries_the_thing_query_log_group_and_window() -> None:
    thing = "plant-7:line_2~sensor"
    query = device_logs_query(thing)
    assert query is not None
    url = logs_insights_url(SCOPE, LOG_GROUP, query, datetime(2026, 11, 20, 9, 5, tzinfo=UTC))

    decoded = decode_logs_insights(url)

    assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:")
    assert decoded["source"] == LOG_GROUP
    assert decoded["editorString"] == device_logs_query(thing)
    assert f'filter clientId = "{thing}" or thingName = "{thing}"' in decoded["editorString"]
    assert (decoded["start"], decoded["end"]) == ("2026-11-20T08:05:00.000Z", "2026-11-20T10:05:00.000Z")
    assert decoded["timeType"] == "ABSOLUTE"


# --- devices named by an MQTT client id no thing can have --------------------------------------------

CLIENT_IDS = [
    'Gateway 7/line.2 #Ström "west"',
    "it's \"both\" quotes",
    "line\nbreak\u2028and\ttab",
    "\u00e9" * 128,
    "/" * 128,
    "~(tilde) and 'quote'",
    " ",
]


@pytest.mark.parametrize("client_id", CLIENT_IDS)
def test_a_client_id_gives_a_valid_incident_without_a_thing(client_id: str) -> None:
    event = parse_message(json.dumps(violation(client_id, violation_id="v-client")))
    assert isinstance(event, ViolationEvent)

    request = violation_incident_request(event, response_plan_arn=PLAN_ARN, impact=2, scope=SCOPE,
                                         log_group=LOG_GROUP)

    check("StartIncident", request)
    values = [item["identifier"]["value"] for item in request["relatedItems"]]
    assert not any(":thing/" in value.get("arn", "") for value in values)
    assert not any("/iot/home" in value.get("url", "") for value in values)
    assert "\n" not in request["title"]
    assert request["title"].startswith("MQTT client ")
    assert all(len(value.get("url", "")) <= MAX_URL for value in values)


@pytest.mark.parametrize("client_id", CLIENT_IDS)
def test_a_client_id_link_queries_exactly_that_client_or_is_left_out(client_id: str) -> None:
    around = datetime(2026, 11, 20, 9, tzinfo=UTC)

    url = device_logs_url(SCOPE, LOG_GROUP, client_id, around)

    if url is None:
        # Only what cannot be quoted in one kind of quote, or what the URL limit cannot hold, is left out.
        unquotable = ('"' in client_id and "'" in client_id) or any(ord(c) < 32 for c in client_id)
        too_long = len(logs_insights_url(SCOPE, LOG_GROUP, f'filter clientId = "{client_id}"', around)) > MAX_URL
        assert unquotable or too_long
        return
    editor = decode_logs_insights(url)["editorString"]
    literal = re.search(r"clientId = (['\"])(.*?)\1(?: or |\n)", editor, re.DOTALL)
    assert literal is not None
    assert literal.group(2) == client_id
    assert len(url) <= MAX_URL


def test_the_notice_subject_is_one_line_of_at_most_99_characters() -> None:
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    topic = "arn:aws:sns:us-east-1:123456789012:responders"
    with Stubber(sns) as stub:
        stub.add_response("publish", {"MessageId": "1"}, {
            "TopicArn": topic, "Subject": "client a?b?c" + "x" * 84 + "...", "Message": "body",
        })
        publish(sns, topic, Notice("client a\nb\u2028c" + "x" * 100, "body"))
        stub.assert_no_pending_responses()

"""The OpsCenter, Automation and Scheduler requests the functions build: valid against the botocore models
(types, lengths, patterns, enums) with the longest names and values, and reading back what they write."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session  # type: ignore[import-untyped]
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

from functions.contract import RequestField, Status
from functions.contract_opscenter import ESCALATION_STAGE_KEY, EscalationStage
from functions.messages import ViolationEvent, parse_message
from functions.opscenter import (
    OpsItemStyle,
    acknowledge_command,
    audit_ops_item_request,
    automation_request,
    escalation_message,
    escalation_schedule_requests,
    progress_request,
    record_automation_request,
    recorded_automation,
    resolve_request,
    storm_ops_item_request,
    thing_name_of,
    violation_ops_item_request,
)
from tests.functions.intake_support import LOG_GROUP, violation
from tests.functions.test_intake_requests import LONGEST_NAME, SCOPE, longest_violation

SESSION = botocore.session.get_session()
OPS_ITEM_ID = "oi-0123456789ab"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:fleetguard-escalation"
ROLE_ARN = "arn:aws:iam::123456789012:role/fleetguard-scheduler"
STYLE = OpsItemStyle(
    category="Security",
    severity_by_impact={1: "1", 2: "2", 3: "3", 4: "4", 5: "4"},
    responders_topic_arn="arn:aws:sns:eu-west-1:123456789012:fleetguard-responders",
    tags={"fleetguard:stack": "prod"},
)
STAGES = tuple(
    EscalationStage(name, minutes, f"arn:aws:sns:eu-west-1:123456789012:{name}")
    for name, minutes in (("oncall", 5), ("lead", 15), ("s" * 32, 1440))
)
_UNICODE_CLASSES = re.compile(r"\\p\{[A-Z]\}")


def problems(shape: Any, value: Any, path: str) -> list[str]:
    """What botocore's validator leaves to the service: length bounds, patterns and enums. Patterns with
    Unicode property classes (tag keys and values) are left to ``test_tags_fit_the_tag_patterns``."""
    found: list[str] = []
    bounds = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                found += problems(member, value[name], f"{path}.{name}")
    elif shape.type_name in {"list", "map"}:
        if not bounds.get("min", 0) <= len(value) <= bounds.get("max", len(value)):
            found.append(f"{path}: {len(value)} items")
        if shape.type_name == "map":
            for key, item in value.items():
                found += problems(shape.key, key, f"{path}<key {key}>") + problems(shape.value, item, f"{path}.{key}")
        else:
            for index, item in enumerate(value):
                found += problems(shape.member, item, f"{path}[{index}]")
    elif shape.type_name == "string":
        found += _string_problems(shape, value, path)
    elif shape.type_name == "integer" and not bounds.get("min", value) <= value <= bounds.get("max", value):
        found.append(f"{path}: {value} out of range")
    return found


def _string_problems(shape: Any, value: str, path: str) -> list[str]:
    found: list[str] = []
    bounds = shape.metadata
    if not bounds.get("min", 0) <= len(value) <= bounds.get("max", len(value)):
        found.append(f"{path}: {len(value)} characters")
    pattern = bounds.get("pattern")
    if pattern and not _UNICODE_CLASSES.search(pattern) and not re.search(pattern, value, re.DOTALL):
        found.append(f"{path}: {value[:60]!r} does not match {pattern}")
    if shape.enum and value not in shape.enum:
        found.append(f"{path}: {value!r} not in {shape.enum}")
    return found


def check(service: str, operation: str, params: dict[str, Any]) -> None:
    shape = SESSION.get_service_model(service).operation_model(operation).input_shape
    validate_parameters(params, shape)
    assert problems(shape, params, operation) == []


def test_the_check_catches_what_botocore_lets_through() -> None:
    shape = SESSION.get_service_model("ssm").operation_model("CreateOpsItem").input_shape
    request = {"Title": "t" * 1025, "Description": "d", "Source": "s", "Priority": 6}
    validate_parameters(request, shape)
    assert len(problems(shape, request, "CreateOpsItem")) == 2


def test_every_request_is_valid_with_the_longest_names_and_values() -> None:
    event = longest_violation()
    created = datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
    check("ssm", "CreateOpsItem", violation_ops_item_request(
        event, dedup="violation-" + "f" * 64, impact=1, style=STYLE, scope=SCOPE, log_group=LOG_GROUP))
    check("ssm", "CreateOpsItem", storm_ops_item_request(
        LONGEST_NAME, LONGEST_NAME, created, "x" * 5000, dedup="storm-" + "f" * 64, impact=5, style=STYLE,
        logs_url="https://example.com/" + "q" * 900))
    check("ssm", "CreateOpsItem", audit_ops_item_request(
        "a" * 40, [f"{'C' * 120}_CHECK"] * 17, {"taskId": "a" * 40}, dedup="audit-" + "f" * 64, impact=2, style=STYLE))
    check("ssm", "StartAutomationExecution", automation_request(
        OPS_ITEM_ID, "violation-" + "f" * 64, runbook_name="r" * 128, role_arn=ROLE_ARN))
    check("ssm", "UpdateOpsItem", record_automation_request(OPS_ITEM_ID, str(uuid.uuid4())))
    check("ssm", "UpdateOpsItem", progress_request(OPS_ITEM_ID, Status.CONTAINED.value, [LONGEST_NAME], created))
    check("ssm", "UpdateOpsItem", resolve_request(OPS_ITEM_ID, LONGEST_NAME, "r" * 256, created))
    for request in escalation_schedule_requests(OPS_ITEM_ID, STAGES, opened_at=created, now=created,
                                                group="g" * 64, function_arn=FUNCTION_ARN, role_arn=ROLE_ARN):
        check("scheduler", "CreateSchedule", request)


def test_tags_fit_the_tag_patterns() -> None:
    request = violation_ops_item_request(longest_violation(), dedup="d", impact=1, style=STYLE, scope=SCOPE,
                                         log_group=LOG_GROUP)
    for tag in request["Tags"]:
        assert re.fullmatch(r"[\w\s.:/=+\-@]{1,128}", tag["Key"])
        assert re.fullmatch(r"[\w\s.:/=+\-@]{0,256}", tag["Value"])


def test_a_violation_item_names_the_device_the_violation_and_the_dedup_string() -> None:
    event = longest_violation()
    request = violation_ops_item_request(event, dedup="violation-1", impact=2, style=STYLE, scope=SCOPE,
                                         log_group=LOG_GROUP)
    data = request["OperationalData"]

    assert json.loads(data["/aws/dedup"]["Value"]) == {"dedupString": "violation-1"}
    assert json.loads(data["/aws/resources"]["Value"]) == [{"arn": SCOPE.thing_arn(LONGEST_NAME)}]
    assert json.loads(data["fleetguard:violation"]["Value"])["violationId"] == event.violation_id
    assert (request["Source"], request["Priority"], request["Severity"]) == ("fleetguard", 2, "2")
    assert request["Notifications"] == [{"Arn": STYLE.responders_topic_arn}]
    assert thing_name_of(request) == LONGEST_NAME


def test_a_client_id_that_is_no_thing_is_no_related_resource() -> None:
    event = parse_message(json.dumps(violation("client id with spaces", violation_id="v-2")))
    assert isinstance(event, ViolationEvent)
    request = violation_ops_item_request(event, dedup="d", impact=3, style=STYLE, scope=SCOPE, log_group=LOG_GROUP)

    assert "/aws/resources" not in request["OperationalData"]
    assert thing_name_of(request) is None


def test_the_automation_token_is_a_uuid_stable_per_dedup_string() -> None:
    first = automation_request(OPS_ITEM_ID, "violation-a", runbook_name="rb", role_arn=ROLE_ARN)
    again = automation_request(OPS_ITEM_ID, "violation-a", runbook_name="rb", role_arn=ROLE_ARN)
    other = automation_request(OPS_ITEM_ID, "violation-b", runbook_name="rb", role_arn=ROLE_ARN)

    assert first["ClientToken"] == again["ClientToken"] != other["ClientToken"]
    assert first["Parameters"] == {"OpsItemId": [OPS_ITEM_ID], "AutomationAssumeRole": [ROLE_ARN]}


def test_the_recorded_automation_reads_back() -> None:
    request = record_automation_request(OPS_ITEM_ID, "exec-1")
    assert recorded_automation(request) == "exec-1"
    assert recorded_automation({"OperationalData": {}}) is None


def test_each_stage_is_scheduled_its_minutes_after_the_item_opened_and_never_in_the_past() -> None:
    opened = datetime(2026, 11, 20, 8, 15, 2, 700_000, tzinfo=UTC)
    fresh = escalation_schedule_requests(OPS_ITEM_ID, STAGES[:2], opened_at=opened, now=opened, group="g",
                                         function_arn=FUNCTION_ARN, role_arn=ROLE_ARN)
    late = escalation_schedule_requests(OPS_ITEM_ID, STAGES[:2], opened_at=opened, now=opened + timedelta(hours=1),
                                        group="g", function_arn=FUNCTION_ARN, role_arn=ROLE_ARN)

    expressions = [request["ScheduleExpression"] for request in fresh]
    assert expressions == ["at(2026-11-20T08:20:02)", "at(2026-11-20T08:30:02)"]
    assert [request["ScheduleExpression"] for request in late] == ["at(2026-11-20T09:16:02)"] * 2
    assert [request["Name"] for request in fresh] == [f"{OPS_ITEM_ID}-oncall", f"{OPS_ITEM_ID}-lead"]
    assert all(request["ActionAfterCompletion"] == "DELETE" for request in fresh)
    assert json.loads(fresh[1]["Target"]["Input"]) == {RequestField.OPS_ITEM_ID.value: OPS_ITEM_ID,
                                                       ESCALATION_STAGE_KEY: "lead"}


def test_the_escalation_message_carries_the_acknowledge_command() -> None:
    item = {"OpsItemId": OPS_ITEM_ID, "Title": "IoT device dev-1 violated", "Priority": 2, "Severity": "2",
            "CreatedTime": datetime(2026, 11, 20, 8, 15, tzinfo=UTC)}
    subject, message = escalation_message(item, STAGES[0], SCOPE)

    assert OPS_ITEM_ID in subject
    assert "oncall" in subject
    assert acknowledge_command(OPS_ITEM_ID, "eu-west-1") in message
    assert "--status InProgress" in acknowledge_command(OPS_ITEM_ID, "eu-west-1")
    assert "InProgress" in SESSION.get_service_model("ssm").shape_for("OpsItemStatus").enum

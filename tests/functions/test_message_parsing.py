"""Parsing Device Defender messages and their SNS / SQS envelopes, from the sample events in tests/events."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from functions.messages import (
    AuditCheckResult,
    AuditNotification,
    EventType,
    MessageError,
    ViolationEvent,
    is_thing_name,
    message_from_sns_record,
    message_from_sqs_body,
    parse_message,
)

LoadEvent = Callable[[str], Any]


def parse_sns_event(event: Any) -> ViolationEvent | AuditNotification:
    (record,) = event["Records"]
    return parse_message(message_from_sns_record(record))


def violation(event: Any) -> ViolationEvent:
    parsed = parse_sns_event(event)
    assert isinstance(parsed, ViolationEvent)
    return parsed


def audit(event: Any) -> AuditNotification:
    parsed = parse_sns_event(event)
    assert isinstance(parsed, AuditNotification)
    return parsed


def seed_message(load_event: LoadEvent) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(load_event("detect-rule-in-alarm.json")["Records"][0]["Sns"]["Message"])
    return message


# --- every message kind ---------------------------------------------------------------------------


def test_seed_rule_based_in_alarm(load_event: LoadEvent) -> None:
    event = load_event("detect-rule-in-alarm.json")
    parsed = violation(event)
    assert parsed.violation_id == "37e18651d207bbc74236c13faf146127"
    assert parsed.thing_name == "dev-IZWB"
    assert parsed.security_profile_name == "MySecProfile"
    assert parsed.behavior.name == "MessagesPub"
    assert parsed.behavior.metric == "aws:num-messages-sent"
    assert parsed.behavior.kind == "rule"
    assert parsed.behavior.criteria["comparisonOperator"] == "less-than"
    assert parsed.behavior.criteria["value"] == {"count": 10}
    assert parsed.behavior.metric_dimension is None
    assert parsed.behavior.suppress_alerts is False
    assert parsed.metric_value == {"count": 54}
    assert parsed.event_type is EventType.IN_ALARM
    assert parsed.is_in_alarm
    assert parsed.event_time_ms == 1573786800000
    assert parsed.confidence_level is None
    assert parsed.verification_state is None
    assert parsed.raw == json.loads(event["Records"][0]["Sns"]["Message"])


def test_statistical_in_alarm_with_dimension(load_event: LoadEvent) -> None:
    parsed = violation(load_event("sns-detect-statistical-in-alarm.json"))
    assert parsed.behavior.kind == "statistical"
    assert parsed.behavior.criteria["statisticalThreshold"] == {"statistic": "p90"}
    assert parsed.behavior.metric_dimension == {"dimensionName": "AdminTopics", "operator": "IN"}
    assert parsed.verification_state == "UNKNOWN"
    assert parsed.thing_name == "gw_eu-west_0042"
    assert parsed.is_in_alarm


def test_ml_in_alarm_has_confidence_level(load_event: LoadEvent) -> None:
    parsed = violation(load_event("sns-detect-ml-in-alarm.json"))
    assert parsed.behavior.kind == "ml"
    assert parsed.behavior.criteria["mlDetectionConfig"] == {"confidenceLevel": "HIGH"}
    assert parsed.confidence_level == "HIGH"
    assert parsed.thing_name == "plant-7:line_2-sensor"
    assert parsed.violation_id == "b3d1e7c4-0a2f-4e9b-8c6d-1f2e3a4b5c6d"
    assert parsed.metric_value == {"count": 9834211}


def test_alarm_cleared_is_not_in_alarm(load_event: LoadEvent) -> None:
    parsed = violation(load_event("sns-detect-alarm-cleared.json"))
    assert parsed.event_type is EventType.ALARM_CLEARED
    assert not parsed.is_in_alarm
    assert parsed.metric_value == {"ports": [22, 443]}
    assert parsed.behavior.criteria["value"] == {"ports": [22, 53, 443]}


def test_alarm_invalidated_without_metric_value(load_event: LoadEvent) -> None:
    parsed = violation(load_event("sns-detect-alarm-invalidated.json"))
    assert parsed.event_type is EventType.ALARM_INVALIDATED
    assert not parsed.is_in_alarm
    assert parsed.metric_value == {}
    assert parsed.behavior.criteria["value"] == {"cidrs": ["10.0.0.0/8", "192.168.0.0/16"]}


def test_audit_completed_with_non_compliant_checks(load_event: LoadEvent) -> None:
    parsed = audit(load_event("sns-audit-completed-noncompliant.json"))
    assert parsed.account_id == "123456789012"
    assert parsed.task_id == "4e2a1f3b9c8d7e6f5a4b3c2d1e0f9a8b"
    assert parsed.task_status == "COMPLETED"
    assert parsed.task_type == "SCHEDULED_AUDIT_TASK"
    assert parsed.scheduled_audit_name == "fleetguard-dev-daily"
    assert (parsed.failed_checks_count, parsed.canceled_checks_count) == (1, 0)
    assert (parsed.non_compliant_checks_count, parsed.compliant_checks_count, parsed.total_checks_count) == (2, 1, 4)
    assert parsed.task_start_time_ms == 1795132800000
    assert [check.check_name for check in parsed.non_compliant_checks] == [
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    ]
    policy_check = parsed.non_compliant_checks[0]
    assert (policy_check.non_compliant_resources_count, policy_check.total_resources_count) == (2, 14)
    assert policy_check.suppressed_non_compliant_resources_count == 1
    failed = parsed.checks[3]
    assert failed.run_status == "FAILED"
    assert failed.error_code == "INSUFFICIENT_PERMISSIONS"
    assert failed.non_compliant_resources_count is None
    assert failed.message == "Insufficient permissions to describe CA certificates"


def test_audit_all_compliant(load_event: LoadEvent) -> None:
    parsed = audit(load_event("sns-audit-all-compliant.json"))
    assert parsed.task_type == "ON_DEMAND_AUDIT_TASK"
    assert parsed.scheduled_audit_name is None
    assert len(parsed.checks) == 3
    assert parsed.non_compliant_checks == ()
    assert parsed.raw["totalChecksCount"] == 3


def test_sqs_bodies_that_are_sns_notifications(load_event: LoadEvent) -> None:
    event = load_event("sqs-sns-detect-in-alarm.json")
    parsed = [parse_message(message_from_sqs_body(record["body"])) for record in event["Records"]]
    assert [(item.violation_id, item.thing_name) for item in parsed if isinstance(item, ViolationEvent)] == [
        ("37e18651d207bbc74236c13faf146127", "dev-IZWB"),
        ("5f0c2d9a8b7e4f61a3c2b1d0e9f8a7b6", "gw_eu-west_0042"),
    ]


def test_sqs_raw_delivery_body_is_the_message(load_event: LoadEvent) -> None:
    (record,) = load_event("sqs-raw-detect-ml-in-alarm.json")["Records"]
    assert message_from_sqs_body(record["body"]) == record["body"]
    parsed = parse_message(message_from_sqs_body(record["body"]))
    assert isinstance(parsed, ViolationEvent)
    assert parsed.behavior.kind == "ml"
    assert parsed == violation(load_event("sns-detect-ml-in-alarm.json"))


def test_a_device_named_by_a_client_id_no_thing_can_have_is_accepted(load_event: LoadEvent) -> None:
    parsed = violation(load_event("sns-detect-unregistered-client-in-alarm.json"))

    assert parsed.thing_name == 'Gateway 7/line.2 #Ström "west"'
    assert parsed.is_in_alarm
    assert not is_thing_name(parsed.thing_name)


@pytest.mark.parametrize(
    "client_id",
    ["dev IZWB", "a/b", "a.b", "#", "+", "x" * 128, "\u00e9" * 128, "line\nbreak", "\U0001F512 lock", " "],
)
def test_any_name_of_1_to_128_characters_is_accepted(load_event: LoadEvent, client_id: str) -> None:
    parsed = parse_message(mutated(seed_message(load_event), lambda m: m.update(thingName=client_id)))

    assert isinstance(parsed, ViolationEvent)
    assert parsed.thing_name == client_id


@pytest.mark.parametrize(
    ("name", "registrable"),
    [("dev-IZWB", True), ("plant-7:line_2-sensor", True), ("x" * 128, True), ("dev IZWB", False), ("a/b", False),
     ("\u00e9", False), ("", False), ("x" * 129, False)],
)
def test_is_thing_name_follows_the_registry_pattern(name: str, registrable: bool) -> None:
    assert is_thing_name(name) is registrable


# --- broken input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("broken-not-json.json", "message: not valid JSON"),
        ("broken-missing-violation-id.json", "violationId: required field is missing"),
        ("broken-bad-violation-id.json", "violationId: '37e18651/../d207 bbc7' does not match [a-zA-Z0-9-]{1,128}"),
        (
            "broken-unknown-event-type.json",
            "violationEventType: expected one of in-alarm, alarm-cleared, alarm-invalidated, got 'in-alarm-maybe'",
        ),
        (
            "broken-criteria-two-kinds.json",
            "behavior.criteria: expected exactly one of value, statisticalThreshold, mlDetectionConfig, "
            "got value, statisticalThreshold",
        ),
        ("broken-event-time-type.json", "violationEventTime: expected an integer (epoch milliseconds), got string"),
        ("broken-sns-no-message.json", "Sns.Message: required field is missing"),
        ("broken-unknown-shape.json", "message: unknown shape"),
        ("broken-empty-thing-name.json", "thingName: expected 1-128 characters, got 0"),
        ("broken-long-thing-name.json", "thingName: expected 1-128 characters, got 129"),
    ],
)
def test_broken_events_raise_message_error_naming_the_problem(
    load_event: LoadEvent, file_name: str, expected: str
) -> None:
    with pytest.raises(MessageError) as raised:
        parse_sns_event(load_event(file_name))
    assert expected in str(raised.value)


def mutated(message: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> str:
    copied = copy.deepcopy(message)
    change(copied)
    return json.dumps(copied)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.update(thingName="x" * 129), "thingName: expected 1-128 characters, got 129"),
        (lambda m: m.update(thingName=""), "thingName: expected 1-128 characters, got 0"),
        (lambda m: m.update(violationId="a" * 129), "violationId:"),
        (lambda m: m.update(violationEventTime=1573786800), "violationEventTime: 1573786800 is not epoch milliseconds"),
        (lambda m: m.update(violationEventTime=True), "violationEventTime: expected an integer"),
        (lambda m: m.pop("behavior"), "behavior: required field is missing"),
        (lambda m: m.update(behavior=[]), "behavior: expected an object, got array"),
        (
            lambda m: m["behavior"]["criteria"].pop("value"),
            "behavior.criteria: expected exactly one of value, statisticalThreshold, mlDetectionConfig, got none",
        ),
        (lambda m: m["behavior"].update(suppressAlerts="yes"), "behavior.suppressAlerts: expected a boolean"),
        (lambda m: m["behavior"].update(metricDimension={}), "behavior.metricDimension.dimensionName: required"),
        (lambda m: m.update(metricValue={"count": -1}), "metricValue.count: expected a non-negative integer"),
        (lambda m: m.update(metricValue={"ports": [22, 70000]}), "metricValue.ports[1]: expected an integer 0-65535"),
        (lambda m: m.update(metricValue={"cidrs": "10.0.0.0/8"}), "metricValue.cidrs: expected an array, got string"),
        (lambda m: m.update(metricValue={"numbers": [1.5, "2"]}), "metricValue.numbers[1]: expected a number"),
        (lambda m: m.update(metricValue={"number": None, "strings": [1]}), "metricValue.strings[0]: expected a string"),
        (
            lambda m: m["behavior"]["criteria"].update(value={}),
            "behavior.criteria.value: expected one of count, cidrs, ports, number, numbers, strings, got none",
        ),
        (
            lambda m: m["behavior"]["criteria"].update(value=None, mlDetectionConfig={}),
            "behavior.criteria.mlDetectionConfig.confidenceLevel: required field is missing",
        ),
        (
            lambda m: m.update(violationEventAdditionalInfo={"confidenceLevel": 3}),
            "violationEventAdditionalInfo.confidenceLevel: expected a string, got number",
        ),
        (lambda m: m.update(securityProfileName=None), "securityProfileName: required field is missing"),
    ],
)
def test_malformed_violation_fields(
    load_event: LoadEvent, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    with pytest.raises(MessageError) as raised:
        parse_message(mutated(seed_message(load_event), change))
    assert expected in str(raised.value)


def test_criteria_key_set_to_null_does_not_count_as_a_kind(load_event: LoadEvent) -> None:
    text = mutated(seed_message(load_event), lambda m: m["behavior"]["criteria"].update(statisticalThreshold=None))
    parsed = parse_message(text)
    assert isinstance(parsed, ViolationEvent)
    assert parsed.behavior.kind == "rule"


def test_extra_keys_are_tolerated(load_event: LoadEvent) -> None:
    text = mutated(seed_message(load_event), lambda m: m.update(newFieldFromAws={"x": 1}))
    parsed = parse_message(text)
    assert isinstance(parsed, ViolationEvent)
    assert parsed.raw["newFieldFromAws"] == {"x": 1}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.update(accountId="12345"), "accountId: '12345' does not match"),
        (lambda m: m.update(taskStatus="DONE"), "taskStatus: expected one of CANCELED, COMPLETED, FAILED, IN_PROGRESS"),
        (lambda m: m.update(taskType="NIGHTLY"), "taskType: expected one of"),
        (lambda m: m.pop("totalChecksCount"), "totalChecksCount: required field is missing"),
        (lambda m: m.update(failedChecksCount=1.5), "failedChecksCount: expected a non-negative integer"),
        (lambda m: m.update(auditDetails={}), "auditDetails: expected an array, got object"),
        (lambda m: m["auditDetails"].append("x"), "auditDetails[4]: expected an object, got string"),
        (
            lambda m: m["auditDetails"][1].pop("totalResourcesCount"),
            "auditDetails[1].totalResourcesCount: required field is missing",
        ),
        (lambda m: m["auditDetails"][0].update(checkRunStatus="OK"), "auditDetails[0].checkRunStatus: expected one of"),
        (lambda m: m.update(taskStartTime="yesterday"), "taskStartTime: expected an integer"),
    ],
)
def test_malformed_audit_fields(
    load_event: LoadEvent, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    message = json.loads(load_event("sns-audit-completed-noncompliant.json")["Records"][0]["Sns"]["Message"])
    with pytest.raises(MessageError) as raised:
        parse_message(mutated(message, change))
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2]", "message: expected a JSON object, got array"),
        ("{}", "message: unknown shape"),
        ("", "message: not valid JSON"),
    ],
)
def test_message_that_is_not_an_object(text: str, expected: str) -> None:
    with pytest.raises(MessageError, match=expected):
        parse_message(text)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"EventSource": "aws:sqs", "Sns": {"Message": "{}"}}, "EventSource: expected 'aws:sns', got 'aws:sqs'"),
        ({"EventSource": "aws:sns"}, "Sns: required field is missing"),
        ({"EventSource": "aws:sns", "Sns": {"Message": {"a": 1}}}, "Sns.Message: expected a string, got object"),
        ("not a record", "SNS record: expected an object, got string"),
    ],
)
def test_bad_sns_records(record: Any, expected: str) -> None:
    with pytest.raises(MessageError, match=expected):
        message_from_sns_record(record)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "SQS body: not valid JSON"),
        (json.dumps({"Type": "SubscriptionConfirmation", "Message": "x"}), "SQS body.Type: expected 'Notification'"),
        (json.dumps({"Type": "Notification"}), "SQS body.Message: required field is missing"),
    ],
)
def test_bad_sqs_bodies(body: str, expected: str) -> None:
    with pytest.raises(MessageError, match=expected):
        message_from_sqs_body(body)


@pytest.mark.parametrize(("found", "suppressed", "all_suppressed"), [
    (2, 2, True),
    (2, 1, False),
    # A count the message leaves out, or a contradictory zero, is no evidence that nothing is left to act on.
    (None, 2, False),
    (0, 0, False),
    (3, None, False),
])
def test_a_check_is_all_suppressed_only_when_its_counts_say_so(
    found: int | None, suppressed: int | None, all_suppressed: bool
) -> None:
    check = AuditCheckResult("DEVICE_CERTIFICATE_SHARED_CHECK", "COMPLETED_NON_COMPLIANT", found, 10, suppressed,
                             None, None)
    assert check.all_findings_suppressed is all_suppressed

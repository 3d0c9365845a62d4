"""The intake handler on real-shaped messages (tests/events/) as the intake queue delivers them.

IoT, the IoT data plane, SNS and SQS are moto; Incident Manager (which moto does not implement) is a
botocore Stubber with every request's parameters asserted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import ANY  # type: ignore[import-untyped]

from functions import aws_clients, intake
from functions.contract import EnvVar, Outcome, RecordOutcome
from functions.incidents import violation_incident_token
from functions.intake import RecordFailedError
from tests.functions.intake_support import (
    ACCOUNT,
    GROUP,
    PLAN_ARN,
    REGION,
    LogCapture,
    Responders,
    Stubbed,
    failed_ids,
    incident_arn,
    set_intake_env,
    sqs_event,
    sqs_record,
    sqs_record_from_sns_event,
    violation,
)

pytest_plugins = ("tests.functions.intake_support",)

SEED_MESSAGE_ID = "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a"
SEED_VIOLATION_ID = "37e18651d207bbc74236c13faf146127"
MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"
BROKEN_EVENTS = {
    "broken-not-json.json": "message: not valid JSON",
    "broken-missing-violation-id.json": "violationId: required field is missing",
    "broken-bad-violation-id.json": "violationId: '37e18651/../d207 bbc7' does not match",
    "broken-unknown-event-type.json": "violationEventType: expected one of in-alarm, alarm-cleared, alarm-invalidated",
    "broken-criteria-two-kinds.json": "behavior.criteria: expected exactly one of",
    "broken-event-time-type.json": "violationEventTime: expected an integer (epoch milliseconds), got string",
    "broken-sns-no-message.json": "SQS body.Message: required field is missing",
    "broken-unknown-shape.json": "message: unknown shape",
}

LoadEvent = Callable[[str], Any]


def token(violation_id: str) -> str:
    return "violation-" + hashlib.sha256(violation_id.encode()).hexdigest()


def sns_message(load_event: LoadEvent, name: str) -> str:
    message: str = load_event(name)["Records"][0]["Sns"]["Message"]
    return message


def expected_incident(
    message: str, *, thing: str, thing_in_url: str, profile: str, behavior: str, impact: int, time: datetime
) -> dict[str, Any]:
    """StartIncident parameters for one device's violation, written out independently of the code."""
    violation_id = json.loads(message)["violationId"]
    return {
        "responsePlanArn": PLAN_ARN,
        "clientToken": token(violation_id),
        "title": f"IoT device {thing} violated behavior {behavior} of security profile {profile}",
        "impact": impact,
        "relatedItems": [
            {
                "identifier": {
                    "type": "INVOLVED_RESOURCE",
                    "value": {"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"},
                },
                "title": f"IoT thing {thing}",
            },
            {
                "identifier": {
                    "type": "INVOLVED_RESOURCE",
                    "value": {"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:securityprofile/{profile}"},
                },
                "title": f"Security profile {profile}",
            },
            {
                "identifier": {
                    "type": "OTHER",
                    "value": {
                        "url": f"https://{REGION}.console.aws.amazon.com/iot/home?region={REGION}#/thing/{thing_in_url}"
                    },
                },
                "title": f"Thing {thing} in the AWS IoT console",
            },
            # The Logs Insights link's encoding is checked on its own in test_intake_requests.py.
            {"identifier": {"type": "OTHER", "value": {"url": ANY}}, "title": ANY},
        ],
        "triggerDetails": {"source": "fleetguard.device-defender", "timestamp": time, "rawData": message},
    }


@pytest.fixture
def im_enabled(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=True)


@pytest.fixture
def im_disabled(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=False)
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, MOTO_IOT_DATA_ENDPOINT)


def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = intake.handler(event, context)
    return response


# --- in-alarm violations with Incident Manager ------------------------------------------------------


@dataclass(frozen=True)
class InAlarmCase:
    event_name: str
    thing: str
    thing_in_url: str
    profile: str
    behavior: str
    impact: int
    time: datetime


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(InAlarmCase("detect-rule-in-alarm.json", "dev-IZWB", "dev-IZWB", "MySecProfile", "MessagesPub", 3,
                                 datetime(2019, 11, 15, 3, 0, tzinfo=UTC)), id="rule-default-impact"),
        pytest.param(InAlarmCase("sns-detect-statistical-in-alarm.json", "gw_eu-west_0042", "gw_eu-west_0042",
                                 "fleetguard-dev-statistical", "AuthFailuresP90", 3,
                                 datetime(2026, 11, 20, 9, 0, tzinfo=UTC)), id="statistical"),
        pytest.param(InAlarmCase("sns-detect-ml-in-alarm.json", "plant-7:line_2-sensor", "plant-7%3Aline_2-sensor",
                                 "fleetguard-dev-ml", "AllBytesOutML", 2,
                                 datetime(2026, 11, 20, 9, 5, tzinfo=UTC)), id="ml-impact-by-confidence"),
    ],
)
@pytest.mark.usefixtures("im_enabled")
def test_in_alarm_violation_starts_one_incident_with_the_response_plan(
    case: InAlarmCase, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture,
) -> None:
    message = sns_message(load_event, case.event_name)
    stubbed.expect_start_incident(
        expected_incident(message, thing=case.thing, thing_in_url=case.thing_in_url, profile=case.profile,
                          behavior=case.behavior, impact=case.impact, time=case.time),
        incident_arn("a1"),
    )

    response = run(sqs_event([sqs_record_from_sns_event(load_event(case.event_name), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    handled = intake_logs.with_message("record handled")
    assert [(entry["record_id"], entry["outcome"]) for entry in handled] == [
        ("m-1", str(RecordOutcome(Outcome.INCIDENT, incident_arn("a1"))))
    ]


def test_profile_impact_overrides_the_confidence_impact(
    im_enabled: None, stubbed: Stubbed, lambda_context: Any
) -> None:
    message = violation("crit-1", violation_id="c1", profile="fleetguard-dev-critical")
    text = json.dumps(message, separators=(",", ":"))
    params = expected_incident(text, thing="crit-1", thing_in_url="crit-1", profile="fleetguard-dev-critical",
                               behavior="MessagesPub", impact=1, time=datetime(2019, 11, 15, 3, tzinfo=UTC))
    stubbed.expect_start_incident(params, incident_arn("c1"))

    assert run(sqs_event([sqs_record(text, message_id="m-1")]), lambda_context) == {"batchItemFailures": []}


def test_raw_message_delivery_is_accepted_too(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any
) -> None:
    event = load_event("sqs-raw-detect-ml-in-alarm.json")
    message = event["Records"][0]["body"]
    stubbed.expect_start_incident(
        expected_incident(message, thing="plant-7:line_2-sensor", thing_in_url="plant-7%3Aline_2-sensor",
                          profile="fleetguard-dev-ml", behavior="AllBytesOutML", impact=2,
                          time=datetime(2026, 11, 20, 9, 5, tzinfo=UTC)),
        incident_arn("ml"),
    )

    assert run(event, lambda_context) == {"batchItemFailures": []}


def test_redelivered_violation_reuses_its_token_so_no_second_incident_starts(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any
) -> None:
    event = load_event("sqs-sns-detect-in-alarm.json")
    first_record = event["Records"][0]
    message = json.loads(first_record["body"])["Message"]
    params = expected_incident(message, thing="dev-IZWB", thing_in_url="dev-IZWB", profile="MySecProfile",
                               behavior="MessagesPub", impact=3, time=datetime(2019, 11, 15, 3, tzinfo=UTC))
    # Incident Manager answers a repeated clientToken with the incident it already started.
    stubbed.expect_start_incident(params, incident_arn("seed"))
    stubbed.expect_start_incident(params, incident_arn("seed"))

    run(sqs_event([first_record]), lambda_context)
    redelivered = {**first_record, "attributes": {**first_record["attributes"], "ApproximateReceiveCount": "2"}}
    response = run(sqs_event([redelivered]), lambda_context)

    assert response == {"batchItemFailures": []}


def test_the_same_violation_twice_in_one_batch_is_acted_on_once(
    im_enabled: None, stubbed: Stubbed, lambda_context: Any
) -> None:
    text = json.dumps(violation("dev-1", violation_id="dup1"), separators=(",", ":"))
    stubbed.expect_start_incident(
        expected_incident(text, thing="dev-1", thing_in_url="dev-1", profile="MySecProfile", behavior="MessagesPub",
                          impact=3, time=datetime(2019, 11, 15, 3, tzinfo=UTC)),
        incident_arn("dup"),
    )

    response = run(sqs_event([sqs_record(text, message_id="m-1"), sqs_record(text, message_id="m-2")]), lambda_context)

    assert response == {"batchItemFailures": []}


def test_tokens_differ_for_devices_alarming_at_the_same_time() -> None:
    same_time = [violation(f"dev-{n}", violation_id=f"v{n}") for n in range(3)]

    assert len({violation_incident_token(message["violationId"]) for message in same_time}) == 3


def test_incident_manager_failure_fails_only_that_record(
    im_enabled: None, stubbed: Stubbed, lambda_context: Any, load_event: LoadEvent, intake_logs: LogCapture
) -> None:
    # Stubber answers before botocore's retry handler, so this is the error left after the retries.
    stubbed.incidents.add_client_error(
        "start_incident", service_error_code="ThrottlingException", service_message="Rate exceeded",
        http_status_code=429,
    )
    cleared = sqs_record_from_sns_event(load_event("sns-detect-alarm-cleared.json"), message_id="m-cleared")
    seed = sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-seed")

    response = run(sqs_event([seed, cleared]), lambda_context)

    assert failed_ids(response) == ["m-seed"]
    assert "ThrottlingException" in intake_logs.failure_reasons()["m-seed"]


# --- alarms that ended ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "logged"),
    [
        ("sns-detect-alarm-cleared.json", ("c0ffee00c0ffee00c0ffee00c0ffee00", "alarm-cleared")),
        ("sns-detect-alarm-invalidated.json", ("9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "alarm-invalidated")),
    ],
)
@pytest.mark.usefixtures("im_enabled", "stubbed")
def test_cleared_and_invalidated_alarms_are_logged_and_never_open_an_incident(
    event_name: str, logged: tuple[str, str], load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    # No response is queued on the stubbed Incident Manager client: any call would fail the record.
    response = run(sqs_event([sqs_record_from_sns_event(load_event(event_name), message_id="m-1")]), lambda_context)

    assert response == {"batchItemFailures": []}
    [entry] = intake_logs.with_message("alarm ended; no incident")
    assert (entry["violation_id"], entry["event_type"]) == logged


# --- audit notifications -------------------------------------------------------------------------------


def test_audit_critical_checks_open_an_incident_and_the_others_notify_responders(
    im_enabled: None, stubbed: Stubbed, responders: Responders, load_event: LoadEvent, lambda_context: Any
) -> None:
    event = load_event("sns-audit-completed-noncompliant.json")
    message = event["Records"][0]["Sns"]["Message"]
    task_id = "4e2a1f3b9c8d7e6f5a4b3c2d1e0f9a8b"
    stubbed.expect_start_incident(
        {
            "responsePlanArn": PLAN_ARN,
            "clientToken": "audit-" + hashlib.sha256(task_id.encode()).hexdigest(),
            "title": f"Device Defender audit {task_id}: 1 critical check(s) non-compliant: "
                     "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            "impact": 3,
            "triggerDetails": {
                "source": "fleetguard.device-defender",
                "timestamp": datetime(2026, 11, 20, tzinfo=UTC),
                "rawData": message,
            },
        },
        incident_arn("audit"),
    )

    response = run(sqs_event([sqs_record_from_sns_event(event, message_id="m-audit")]), lambda_context)

    assert response == {"batchItemFailures": []}
    [notice] = responders.notices()
    assert notice["subject"] == f"fleetguard: audit {task_id}: 1 non-compliant check(s)"
    assert "- DEVICE_CERTIFICATE_EXPIRING_CHECK: 3 of 120 resource(s) non-compliant" in notice["message"]
    assert "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" not in notice["message"]
    assert f"aws iot list-audit-findings --task-id {task_id} --check-name DEVICE_CERTIFICATE_EXPIRING_CHECK" in (
        notice["message"]
    )
    assert f"opened incident {incident_arn('audit')}" in notice["message"]


def test_audit_with_incident_manager_off_notifies_every_non_compliant_check(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any
) -> None:
    event = load_event("sns-audit-completed-noncompliant.json")

    response = run(sqs_event([sqs_record_from_sns_event(event, message_id="m-audit")]), lambda_context)

    assert response == {"batchItemFailures": []}
    [notice] = responders.notices()
    assert "2 non-compliant check(s)" in notice["subject"]
    assert "- IOT_POLICY_OVERLY_PERMISSIVE_CHECK: 2 of 14 resource(s) non-compliant, 1 suppressed" in notice["message"]
    assert "- DEVICE_CERTIFICATE_EXPIRING_CHECK: 3 of 120" in notice["message"]
    assert "incident" not in notice["message"]


def _with_suppressed(event: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """The audit notification with ``counts`` (check -> suppressed non-compliant resources) set."""
    record = event["Records"][0]["Sns"]
    message = json.loads(record["Message"])
    for check in message["auditDetails"]:
        if check["checkName"] in counts:
            check["suppressedNonCompliantResourcesCount"] = counts[check["checkName"]]
    record["Message"] = json.dumps(message)
    return event


def test_a_check_whose_findings_are_all_suppressed_is_left_out_of_the_notice(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any
) -> None:
    # All three expiring certificates are suppressed; one of the two permissive policies is not.
    event = _with_suppressed(load_event("sns-audit-completed-noncompliant.json"),
                             {"DEVICE_CERTIFICATE_EXPIRING_CHECK": 3})

    response = run(sqs_event([sqs_record_from_sns_event(event, message_id="m-audit")]), lambda_context)

    assert response == {"batchItemFailures": []}
    [notice] = responders.notices()
    assert "1 non-compliant check(s)" in notice["subject"]
    assert "- IOT_POLICY_OVERLY_PERMISSIVE_CHECK: 2 of 14 resource(s) non-compliant, 1 suppressed" in notice["message"]
    assert "DEVICE_CERTIFICATE_EXPIRING_CHECK" not in notice["message"]


def test_an_audit_whose_non_compliant_findings_are_all_suppressed_is_only_logged(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    event = _with_suppressed(load_event("sns-audit-completed-noncompliant.json"),
                             {"DEVICE_CERTIFICATE_EXPIRING_CHECK": 3, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": 2})

    response = run(sqs_event([sqs_record_from_sns_event(event, message_id="m-audit")]), lambda_context)

    assert response == {"batchItemFailures": []}
    assert responders.notices() == []
    assert len(intake_logs.with_message("audit without non-compliant checks")) == 1
    [entry] = intake_logs.with_message("audit checks with every finding suppressed")
    assert entry["checks"] == ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK"]


@pytest.mark.usefixtures("im_enabled", "stubbed")
def test_compliant_audit_is_logged_without_any_call(
    responders: Responders, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    event = load_event("sns-audit-all-compliant.json")

    response = run(sqs_event([sqs_record_from_sns_event(event, message_id="m-audit")]), lambda_context)

    assert response == {"batchItemFailures": []}
    assert responders.notices() == []
    [entry] = intake_logs.with_message("audit without non-compliant checks")
    assert entry["task_id"] == "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"


# --- malformed input -------------------------------------------------------------------------------------


def test_every_malformed_sample_fails_its_record_with_the_reason_logged(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    broken = [sqs_record_from_sns_event(load_event(name), message_id=name) for name in BROKEN_EVENTS]
    cleared = sqs_record_from_sns_event(load_event("sns-detect-alarm-cleared.json"), message_id="good")

    response = run(sqs_event([*broken, cleared]), lambda_context)

    assert failed_ids(response) == list(BROKEN_EVENTS)
    reasons = intake_logs.failure_reasons()
    assert set(reasons) == set(BROKEN_EVENTS)
    for name, expected in BROKEN_EVENTS.items():
        assert expected in reasons[name], name


def test_a_batch_of_only_malformed_records_reports_each_of_them(
    im_enabled: None, stubbed: Stubbed, lambda_context: Any
) -> None:
    records = [sqs_record("not json", message_id="m-1"), sqs_record({"deviceId": "x"}, message_id="m-2")]

    # No exception for a wholly failed batch: the response names every record, as for a partial one.
    assert failed_ids(run(sqs_event(records), lambda_context)) == ["m-1", "m-2"]


# --- Incident Manager off: the intake contains the device ----------------------------------------------


def register(thing: str) -> None:
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing(thingName=thing)


def test_without_incident_manager_the_device_is_contained_and_responders_told(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any, call_log: Any
) -> None:
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName=GROUP)
    register("dev-IZWB")
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())

    response = run(sqs_event([sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    things = iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
    assert things == ["dev-IZWB"]
    shadow = json.loads(boto3.client("iot-data", region_name=REGION,
                                     endpoint_url=f"https://{MOTO_IOT_DATA_ENDPOINT}")
                        .get_thing_shadow(thingName="dev-IZWB")["payload"].read())
    assert shadow["state"]["desired"]["quarantine"] is True
    assert SEED_VIOLATION_ID in shadow["state"]["desired"]["quarantineReason"]
    assert call_log.calls == ["AddThingToThingGroup", "UpdateThingShadow", "ListThingGroupsForThing"]
    [notice] = responders.notices()
    assert notice["subject"] == "fleetguard: dev-IZWB contained (MessagesPub)"
    assert f"IoT device dev-IZWB is in the quarantine thing group {GROUP}" in notice["message"]
    assert "Behavior: MessagesPub (metric aws:num-messages-sent), rule behavior of security profile MySecProfile" in (
        notice["message"]
    )
    assert "Alarm time: 2019-11-15T03:00:00.000Z" in notice["message"]
    assert f"Violation id: {SEED_VIOLATION_ID}" in notice["message"]
    assert f"https://{REGION}.console.aws.amazon.com/iot/home?region={REGION}#/thing/dev-IZWB" in notice["message"]
    assert "Incident Manager is not enabled" in notice["message"]


def test_without_incident_manager_an_unregistered_device_is_reported_not_retried(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any
) -> None:
    boto3.client("iot", region_name=REGION).create_thing_group(thingGroupName=GROUP)

    response = run(sqs_event([sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    [notice] = responders.notices()
    assert notice["subject"] == "fleetguard: dev-IZWB in alarm but NOT contained (not registered)"
    assert f"could not be added to the quarantine thing group {GROUP}. Nothing was changed." in notice["message"]


def test_without_incident_manager_a_missing_quarantine_group_fails_the_record(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    register("dev-IZWB")

    response = run(sqs_event([sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-1")]),
                   lambda_context)

    assert failed_ids(response) == ["m-1"]
    assert f"thing group {GROUP} does not exist" in intake_logs.failure_reasons()["m-1"]
    assert responders.notices() == []


# --- direct SNS subscriptions ----------------------------------------------------------------------------


def test_direct_sns_record_is_handled(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any
) -> None:
    event = load_event("detect-rule-in-alarm.json")
    stubbed.expect_start_incident(
        expected_incident(event["Records"][0]["Sns"]["Message"], thing="dev-IZWB", thing_in_url="dev-IZWB",
                          profile="MySecProfile", behavior="MessagesPub", impact=3,
                          time=datetime(2019, 11, 15, 3, tzinfo=UTC)),
        incident_arn("sns"),
    )

    assert run(event, lambda_context) == {"processed": 1}


def test_direct_sns_failure_raises_so_lambda_retries_the_event(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any
) -> None:
    with pytest.raises(RecordFailedError, match=r"1 of 1 SNS record\(s\) failed: .*violationId: required field"):
        run(load_event("broken-missing-violation-id.json"), lambda_context)


# --- the event and the configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "event.Records: expected a non-empty array"),
        ({"Records": []}, "event.Records: expected a non-empty array"),
        ({"Records": [{"eventSource": "aws:kinesis"}]}, "expected records that all come from SQS"),
        ({"Records": [{"eventSource": "aws:sqs", "messageId": "a", "body": "{}"}, {"EventSource": "aws:sns"}]},
         "expected records that all come from SQS"),
    ],
)
def test_an_event_that_is_neither_sqs_nor_sns_is_rejected(
    event: dict[str, Any], message: str, im_enabled: None, lambda_context: Any
) -> None:
    with pytest.raises(ValueError, match=message):
        run(event, lambda_context)


def test_a_configuration_error_fails_the_whole_invocation(
    im_enabled: None, monkeypatch: pytest.MonkeyPatch, load_event: LoadEvent, lambda_context: Any
) -> None:
    monkeypatch.setenv(EnvVar.IMPACT_RULES, '{"default": 9}')

    with pytest.raises(ValueError, match=r"IMPACT_RULES.default: expected an impact integer 1-5, got 9"):
        run(load_event("sqs-sns-detect-in-alarm.json"), lambda_context)



@pytest.mark.usefixtures("im_enabled")
def test_a_mixed_sample_batch_names_exactly_the_failed_record(
    stubbed: Stubbed, responders: Responders, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    event = load_event("sqs-batch-mixed.json")
    seed_id, ml_id, cleared_id, audit_id, broken_id = [record["messageId"] for record in event["Records"]]
    for name, thing, url_thing, profile, behavior, impact, time in (
        ("detect-rule-in-alarm.json", "dev-IZWB", "dev-IZWB", "MySecProfile", "MessagesPub", 3,
         datetime(2019, 11, 15, 3, tzinfo=UTC)),
        ("sns-detect-ml-in-alarm.json", "plant-7:line_2-sensor", "plant-7%3Aline_2-sensor", "fleetguard-dev-ml",
         "AllBytesOutML", 2, datetime(2026, 11, 20, 9, 5, tzinfo=UTC)),
    ):
        stubbed.expect_start_incident(
            expected_incident(sns_message(load_event, name), thing=thing, thing_in_url=url_thing, profile=profile,
                              behavior=behavior, impact=impact, time=time),
            incident_arn(thing.replace(":", "-")),
        )
    stubbed.expect_start_incident(
        {"responsePlanArn": PLAN_ARN, "clientToken": ANY, "title": ANY, "impact": 3, "triggerDetails": ANY},
        incident_arn("audit"),
    )

    response = run(event, lambda_context)

    assert failed_ids(response) == [broken_id]
    assert "message: not valid JSON" in intake_logs.failure_reasons()[broken_id]
    outcomes = {entry["record_id"]: entry["outcome"] for entry in intake_logs.with_message("record handled")}
    assert outcomes == {
        seed_id: str(RecordOutcome(Outcome.INCIDENT, incident_arn('dev-IZWB'))),
        ml_id: str(RecordOutcome(Outcome.INCIDENT, incident_arn('plant-7-line_2-sensor'))),
        cleared_id: str(RecordOutcome(Outcome.LOGGED, "alarm-cleared")),
        audit_id: str(
            RecordOutcome(Outcome.AUDIT_ROUTED, f"1 check(s) to incident {incident_arn('audit')}, 1 notified")
        ),
    }
    assert len(responders.notices()) == 1


# --- devices Device Defender names by an MQTT client id no thing can have ------------------------------

UNREGISTERED_EVENT = "sns-detect-unregistered-client-in-alarm.json"
UNREGISTERED_CLIENT = 'Gateway 7/line.2 #Ström "west"'


def test_an_unregistered_client_opens_an_incident_without_a_thing_in_it(
    im_enabled: None, stubbed: Stubbed, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    message = sns_message(load_event, UNREGISTERED_EVENT)
    profile = "fleetguard-dev-unregistered"
    stubbed.expect_start_incident(
        {
            "responsePlanArn": PLAN_ARN,
            "clientToken": token("b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6"),
            "title": f"MQTT client {UNREGISTERED_CLIENT!r} (not a registered thing) violated behavior MessagesPub "
                     f"of security profile {profile}",
            "impact": 3,
            # No thing ARN (the runbook's contain step finds no device) and no thing console link.
            "relatedItems": [
                {
                    "identifier": {
                        "type": "INVOLVED_RESOURCE",
                        "value": {"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:securityprofile/{profile}"},
                    },
                    "title": f"Security profile {profile}",
                },
                {"identifier": {"type": "OTHER", "value": {"url": ANY}}, "title": ANY},
            ],
            "triggerDetails": {
                "source": "fleetguard.device-defender",
                "timestamp": datetime(2026, 11, 20, 9, tzinfo=UTC),
                # The same JSON, non-ASCII characters escaped.
                "rawData": json.dumps(json.loads(message), separators=(",", ":")),
            },
        },
        incident_arn("client"),
    )

    response = run(sqs_event([sqs_record_from_sns_event(load_event(UNREGISTERED_EVENT), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    [entry] = intake_logs.with_message("record handled")
    assert entry["outcome"] == str(RecordOutcome(Outcome.INCIDENT, incident_arn('client')))


@pytest.mark.usefixtures("im_disabled")
def test_without_incident_manager_an_unregistered_client_is_reported_without_a_registry_call(
    responders: Responders, load_event: LoadEvent, lambda_context: Any, call_log: Any, intake_logs: LogCapture
) -> None:
    boto3.client("iot", region_name=REGION).create_thing_group(thingGroupName=GROUP)
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())

    response = run(sqs_event([sqs_record_from_sns_event(load_event(UNREGISTERED_EVENT), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    assert call_log.calls == []
    [entry] = intake_logs.with_message("record handled")
    assert entry["outcome"] == str(RecordOutcome(Outcome.NOT_REGISTERED))
    [notice] = responders.notices()
    assert notice["subject"] == f"fleetguard: MQTT client {UNREGISTERED_CLIENT!r} in alarm, NOT contained (not a thing)"
    assert f"names by its MQTT client id, {UNREGISTERED_CLIENT!r}. No thing can have that name" in notice["message"]
    assert "AWS IoT console" not in notice["message"]
    assert "Its AWS IoT logs around the alarm: https://" in notice["message"]


# --- Incident Manager off: one notice per alert, however often it is delivered ---------------------------


def test_a_redelivered_batch_contains_again_but_notifies_once(
    im_disabled: None, responders: Responders, load_event: LoadEvent, lambda_context: Any, intake_logs: LogCapture
) -> None:
    boto3.client("iot", region_name=REGION).create_thing_group(thingGroupName=GROUP)
    register("dev-IZWB")
    audit = sqs_record_from_sns_event(load_event("sns-audit-completed-noncompliant.json"), message_id="m-audit")
    seed = sqs_record_from_sns_event(load_event("detect-rule-in-alarm.json"), message_id="m-seed")
    client = sqs_record_from_sns_event(load_event(UNREGISTERED_EVENT), message_id="m-client")

    first = run(sqs_event([seed, audit, client]), lambda_context)
    # The invocation ended after its notices went out (a timeout, a crash): the queue delivers it all again.
    redelivered = [sqs_record_from_sns_event(load_event(name), message_id=message_id, receive_count=2)
                   for name, message_id in (("detect-rule-in-alarm.json", "m-seed"),
                                            ("sns-audit-completed-noncompliant.json", "m-audit"),
                                            (UNREGISTERED_EVENT, "m-client"))]
    second = run(sqs_event(redelivered), lambda_context)

    assert first == second == {"batchItemFailures": []}
    subjects = sorted(notice["subject"] for notice in responders.notices())
    assert len(subjects) == 3, subjects
    outcomes = [(entry["record_id"], entry["receive_count"]) for entry in intake_logs.with_message("record handled")]
    assert ("m-seed", "2") in outcomes
    assert len(intake_logs.with_message("notice already sent; not sent again")) == 3


def test_a_violation_sns_delivered_twice_notifies_once(
    im_disabled: None, responders: Responders, lambda_context: Any
) -> None:
    boto3.client("iot", region_name=REGION).create_thing_group(thingGroupName=GROUP)
    register("dev-1")
    text = json.dumps(violation("dev-1", violation_id="twice1"))

    # Two SNS deliveries of one message: different SQS and SNS message ids, in separate batches.
    run(sqs_event([sqs_record(text, message_id="m-1")]), lambda_context)
    run(sqs_event([sqs_record(text, message_id="m-2")]), lambda_context)

    assert [notice["subject"] for notice in responders.notices()] == ["fleetguard: dev-1 contained (MessagesPub)"]


def test_a_notice_that_failed_to_publish_is_sent_on_redelivery(
    im_disabled: None, responders: Responders, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("iot", region_name=REGION).create_thing_group(thingGroupName=GROUP)
    register("dev-1")
    record = sqs_record(json.dumps(violation("dev-1", violation_id="retry1")), message_id="m-1")
    failing_sns = boto3.client("sns", region_name=REGION)
    monkeypatch.setattr(failing_sns, "publish", lambda **_: (_ for _ in ()).throw(RuntimeError("SNS down")))
    monkeypatch.setattr(intake, "CLIENTS", intake.AwsClients(sns=lambda: failing_sns))

    assert failed_ids(run(sqs_event([record]), lambda_context)) == ["m-1"]
    monkeypatch.setattr(intake, "CLIENTS", intake.AwsClients())
    assert run(sqs_event([{**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}}]),
               lambda_context) == {"batchItemFailures": []}

    assert len(responders.notices()) == 1

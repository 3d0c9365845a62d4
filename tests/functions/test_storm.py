"""Alert storms through the intake: threshold edges, bulk containment, one fleet incident, mixed
batches, failures and redelivery mid-storm, throttling that succeeds on retry.

moto lacks StartDetectMitigationActionsTask and Incident Manager, so those two clients are botocore
Stubbers with every call's parameters asserted; IoT registry, IoT data plane, SNS and SQS are moto.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
from botocore.stub import ANY  # type: ignore[import-untyped]
from moto.core.models import botocore_stubber as moto_stubber

from functions import aws_clients, intake
from functions.contract import EnvVar, Outcome, RecordOutcome
from functions.messages import ViolationEvent, parse_message
from functions.storm import StormKey, StormResponse, find_storms, task_chunks, task_id
from functions.storm import client_request_token as storm_client_request_token
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
    storm_violations,
    violation,
)

pytest_plugins = ("tests.functions.intake_support",)

STORM_TIME = datetime(2019, 11, 15, 3, 0, tzinfo=UTC)
"""The hour of the workshop violation's time: the storm period of every storm built here."""
FLEET_ARN = incident_arn("fleet")
MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"


def sha(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def expected_chunks(violation_ids: Sequence[str]) -> list[list[str]]:
    ordered = sorted(set(violation_ids))
    return [ordered[i : i + 25] for i in range(0, len(ordered), 25)]


def expected_task_id(chunk: Sequence[str]) -> str:
    return "fleetguard-storm-" + sha(*chunk)


def fleet_incident_params(
    profile: str = "MySecProfile", behavior: str = "MessagesPub", impact: int = 3
) -> dict[str, Any]:
    return {
        "responsePlanArn": PLAN_ARN,
        "clientToken": "storm-" + sha(profile, behavior, STORM_TIME.isoformat()),
        "title": f"Alert storm: many IoT devices violated behavior {behavior} of security profile {profile}",
        "impact": impact,
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
            "timestamp": STORM_TIME,
            "rawData": json.dumps({"kind": "alert-storm", "securityProfileName": profile, "behaviorName": behavior,
                                   "periodStart": "2019-11-15T03:00:00.000Z"}, separators=(",", ":")),
        },
    }


def expect_fleet_incident(
    stubbed: Stubbed, things: Sequence[str], task_ids: Sequence[str], *, listed: int = 20, **params: Any
) -> None:
    stubbed.expect_start_incident(fleet_incident_params(**params), FLEET_ARN)
    for thing in sorted(things)[:listed]:
        stubbed.incidents.add_response(
            "update_related_items",
            {},
            {
                "incidentRecordArn": FLEET_ARN,
                "clientToken": "device-" + sha(FLEET_ARN, thing),
                "relatedItemsUpdate": {"itemToAdd": {
                    "identifier": {"type": "INVOLVED_RESOURCE",
                                   "value": {"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"}},
                    "title": f"IoT thing {thing}",
                }},
            },
        )
    stubbed.incidents.add_response(
        "create_timeline_event",
        {"incidentRecordArn": FLEET_ARN, "eventId": "note-1"},
        {
            "incidentRecordArn": FLEET_ARN,
            "clientToken": "note-" + sha(FLEET_ARN, *task_ids),
            "eventTime": STORM_TIME,
            "eventType": "Custom Event",
            "eventData": ANY,
        },
    )


def expect_tasks(stubbed: Stubbed, violation_ids: Sequence[str]) -> list[str]:
    ids = []
    for chunk in expected_chunks(violation_ids):
        ids.append(expected_task_id(chunk))
        stubbed.expect_task(ids[-1], chunk, sha(*chunk))
    return ids


def expect_storm_answered(
    stubbed: Stubbed, messages: Sequence[dict[str, Any]], things: Sequence[dict[str, Any]] | None = None
) -> list[str]:
    """Expect the mitigation tasks for every message's violation and one fleet incident naming the devices of
    ``things`` (every message's by default); return the task ids."""
    task_ids = expect_tasks(stubbed, [message["violationId"] for message in messages])
    named = messages if things is None else things
    expect_fleet_incident(stubbed, [message["thingName"] for message in named], task_ids)
    return task_ids


def storm_note(messages: Sequence[dict[str, Any]], context: Any, timeline_notes: list[str]) -> str:
    """Run one batch of ``messages`` through the intake, which must handle every record, and return the
    fleet incident's one timeline note."""
    assert run(sqs_event(storm_records(messages)), context) == {"batchItemFailures": []}
    [note] = timeline_notes
    return note


def storm_records(
    messages: Sequence[dict[str, Any]], *, prefix: str = "s", receive_count: int = 1
) -> list[dict[str, Any]]:
    return [sqs_record(message, message_id=f"{prefix}-{message['violationId']}", receive_count=receive_count)
            for message in messages]


@pytest.fixture
def im_enabled(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=True, storm_threshold=5)


@pytest.fixture
def im_disabled(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    set_intake_env(monkeypatch, incident_manager=False, storm_threshold=5)
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, MOTO_IOT_DATA_ENDPOINT)


@pytest.fixture
def timeline_notes(stubbed: Stubbed) -> list[str]:
    """The eventData of every CreateTimelineEvent the intake sends."""
    notes: list[str] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        notes.append(params["eventData"])

    stubbed.incidents.client.meta.events.register("before-parameter-build.ssm-incidents.CreateTimelineEvent", capture)
    return notes


def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = intake.handler(event, context)
    return response


# --- task ids and chunks ------------------------------------------------------------------------------


def model_pattern(operation: str, member_path: Sequence[str]) -> tuple[re.Pattern[str], int]:
    shape = botocore.session.get_session().get_service_model("iot").operation_model(operation).input_shape
    for name in member_path:
        shape = shape.members[name]
    return re.compile(shape.metadata["pattern"]), shape.metadata["max"]


def test_task_ids_and_tokens_match_the_api_patterns_and_repeat_for_the_same_violations() -> None:
    id_pattern, id_max = model_pattern("StartDetectMitigationActionsTask", ["taskId"])
    token_pattern, token_max = model_pattern("StartDetectMitigationActionsTask", ["clientRequestToken"])
    # Violation ids are [a-zA-Z0-9-]; names with characters a task id may not hold cannot leak into it.
    chunk = ("37e18651d207bbc74236c13faf146127", "b3d1e7c4-0a2f-4e9b-8c6d-1f2e3a4b5c6d", "Z" * 128)

    identifier, token = task_id(chunk), storm_client_request_token(chunk)

    assert id_pattern.fullmatch(identifier)
    assert len(identifier) <= id_max
    assert token_pattern.search(token)
    assert len(token) <= token_max
    assert task_id(chunk) == identifier
    assert task_id(chunk[:2]) != identifier


def test_chunks_hold_at_most_25_sorted_distinct_ids_whatever_the_arrival_order() -> None:
    ids = [f"v{n:03d}" for n in range(60)]

    chunks = task_chunks(reversed([*ids, *ids[:5]]))

    assert [len(chunk) for chunk in chunks] == [25, 25, 10]
    assert [item for chunk in chunks for item in chunk] == ids
    assert task_chunks(ids) == chunks


def parsed(messages: Sequence[dict[str, Any]]) -> list[ViolationEvent]:
    events = [parse_message(json.dumps(message)) for message in messages]
    assert all(isinstance(event, ViolationEvent) for event in events)
    return events  # type: ignore[return-value]


@pytest.mark.parametrize(("distinct", "is_storm"), [(4, False), (5, True), (6, True)])
def test_storm_needs_threshold_distinct_in_alarm_violations_of_one_behavior(distinct: int, is_storm: bool) -> None:
    messages = storm_violations(distinct)
    noise = [
        messages[0],  # a duplicate delivery does not count twice
        violation("other-1", violation_id="o1", behavior="OtherBehavior"),
        violation("ended-1", violation_id="e1", event_type="alarm-cleared"),
    ]

    storms = find_storms(parsed([*messages, *noise]), threshold=5)

    assert [len(members) for members in storms.values()] == ([distinct] if is_storm else [])


# --- the threshold edge through the handler -------------------------------------------------------------


@pytest.mark.usefixtures("im_enabled")
def test_one_below_the_threshold_each_device_gets_its_own_incident(stubbed: Stubbed, lambda_context: Any) -> None:
    messages = storm_violations(4)
    for message in messages:
        stubbed.incidents.add_response(
            "start_incident",
            {"incidentRecordArn": incident_arn(message["violationId"])},
            {"responsePlanArn": PLAN_ARN,
             "clientToken": "violation-" + sha(message["violationId"]),
             "title": f"IoT device {message['thingName']} violated behavior MessagesPub of security profile "
                      "MySecProfile",
             "impact": 3, "relatedItems": ANY, "triggerDetails": ANY},
        )

    assert run(sqs_event(storm_records(messages)), lambda_context) == {"batchItemFailures": []}


@pytest.mark.parametrize("count", [5, 6], ids=["at-threshold", "above-threshold"])
@pytest.mark.usefixtures("im_enabled")
def test_at_or_above_the_threshold_one_fleet_incident_and_bulk_containment(
    count: int, stubbed: Stubbed, lambda_context: Any, timeline_notes: list[str]
) -> None:
    messages = storm_violations(count)
    expect_storm_answered(stubbed, messages)

    note = storm_note(messages, lambda_context, timeline_notes)
    assert note.startswith(f"Alert storm: {count} in-alarm violations of behavior MessagesPub of security profile "
                           f"MySecProfile on {count} device(s)")
    assert f"1 of 1 Device Defender mitigation task(s) started to add the devices to thing group {GROUP}" in note
    assert "Devices: fleet-00000, fleet-00001" in note


@pytest.mark.usefixtures("im_enabled")
def test_client_ids_in_a_storm_are_contained_in_bulk_and_named_but_not_listed_as_things(
    stubbed: Stubbed, lambda_context: Any, timeline_notes: list[str]
) -> None:
    things = storm_violations(3)
    clients = [violation(name, violation_id=f"client{index}")
               for index, name in enumerate(["gw 7/a", "Str\u00f6m #1"])]
    messages = things + clients
    # Only the three things become related items; the stubbed client answers nothing else.
    expect_storm_answered(stubbed, messages, things)

    note = storm_note(messages, lambda_context, timeline_notes)
    assert "on 5 device(s)" in note
    assert "gw 7/a" in note


@pytest.mark.usefixtures("im_enabled")
def test_a_large_storm_is_400_tasks_per_10000_and_lists_only_20_devices_per_batch(
    stubbed: Stubbed, lambda_context: Any, timeline_notes: list[str]
) -> None:
    messages = storm_violations(1000)
    task_ids = expect_storm_answered(stubbed, messages)

    assert run(sqs_event(storm_records(messages)), lambda_context) == {"batchItemFailures": []}
    assert len(task_ids) == 40
    [note] = timeline_notes
    assert note.endswith("fleet-00199 and 800 more")


# --- mixed batches -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("im_enabled")
def test_mixed_batch_storm_single_cleared_and_malformed(
    stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    storm = storm_violations(30)
    single = violation("lonely-1", violation_id="lonely1", behavior="ListeningTcpPorts")
    cleared = violation("fleet-00003", violation_id="cleared1", event_type="alarm-cleared")
    records = [
        *storm_records(storm[:15]),
        sqs_record(single, message_id="m-single"),
        sqs_record("{\"violationId\": 7}", message_id="m-malformed"),
        sqs_record(cleared, message_id="m-cleared"),
        *storm_records(storm[15:]),
    ]
    expect_storm_answered(stubbed, storm)
    stubbed.incidents.add_response(
        "start_incident",
        {"incidentRecordArn": incident_arn("single")},
        {"responsePlanArn": PLAN_ARN, "clientToken": "violation-" + sha("lonely1"),
         "title": "IoT device lonely-1 violated behavior ListeningTcpPorts of security profile MySecProfile",
         "impact": 3, "relatedItems": ANY, "triggerDetails": ANY},
    )

    response = run(sqs_event(records), lambda_context)

    assert failed_ids(response) == ["m-malformed"]
    assert "violationEventType: required field is missing" in intake_logs.failure_reasons()["m-malformed"]
    outcomes = {entry["record_id"]: entry["outcome"] for entry in intake_logs.with_message("record handled")}
    assert outcomes["m-single"] == str(RecordOutcome(Outcome.INCIDENT, incident_arn('single')))
    assert outcomes["m-cleared"] == str(RecordOutcome(Outcome.LOGGED, "alarm-cleared"))
    assert outcomes["s-fleetv00000"] == str(
        RecordOutcome(Outcome.STORM_MEMBER, "(MessagesPub of security profile MySecProfile)")
    )
    assert len(outcomes) == 32


# --- failures and redelivery mid-storm --------------------------------------------------------------------


@pytest.mark.usefixtures("im_enabled")
def test_a_failed_task_fails_exactly_its_records_and_the_redelivery_retries_only_them(
    stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    messages = storm_violations(30)
    ids = [message["violationId"] for message in messages]
    first, second = expected_chunks(ids)
    stubbed.expect_task(expected_task_id(first), first, sha(*first))
    # What is left after the client's retries (Stubber answers before botocore's retry handler).
    stubbed.mitigation.add_client_error(
        "start_detect_mitigation_actions_task", service_error_code="ThrottlingException",
        service_message="Rate exceeded", http_status_code=429,
        expected_params={"taskId": expected_task_id(second), "target": {"violationIds": second},
                         "actions": [ANY], "includeOnlyActiveViolations": False, "clientRequestToken": sha(*second)},
    )
    expect_fleet_incident(stubbed, [message["thingName"] for message in messages],
                          [expected_task_id(first), expected_task_id(second)])

    response = run(sqs_event(storm_records(messages)), lambda_context)

    assert failed_ids(response) == [f"s-{violation_id}" for violation_id in second]
    reason = intake_logs.failure_reasons()[f"s-{second[0]}"]
    assert f"mitigation task {expected_task_id(second)} failed: ThrottlingException: Rate exceeded" in reason

    # The five failed records come back (receive count 2): still a storm at threshold 5, the same chunk,
    # hence the same task id, and the same fleet incident.
    redelivered = [message for message in messages if message["violationId"] in second]
    stubbed.expect_task(expected_task_id(second), second, sha(*second))
    expect_fleet_incident(stubbed, [message["thingName"] for message in redelivered], [expected_task_id(second)])

    assert run(sqs_event(storm_records(redelivered, receive_count=2)), lambda_context) == {"batchItemFailures": []}


@pytest.mark.usefixtures("im_enabled")
def test_a_redelivered_storm_reuses_its_tasks_and_its_fleet_incident(stubbed: Stubbed, lambda_context: Any) -> None:
    messages = storm_violations(30)
    ids = [message["violationId"] for message in messages]
    things = [message["thingName"] for message in messages]
    task_ids = expect_tasks(stubbed, ids)
    expect_fleet_incident(stubbed, things, task_ids)
    run(sqs_event(storm_records(messages)), lambda_context)

    # Second delivery: Device Defender refuses the existing task ids, Incident Manager answers the same
    # clientToken (identical request) with the same incident.
    for chunk in expected_chunks(ids):
        stubbed.mitigation.add_client_error(
            "start_detect_mitigation_actions_task", service_error_code="TaskAlreadyExistsException",
            service_message="Task already exists", http_status_code=400,
            expected_params={"taskId": expected_task_id(chunk), "target": {"violationIds": chunk}, "actions": [ANY],
                             "includeOnlyActiveViolations": False, "clientRequestToken": sha(*chunk)},
        )
    expect_fleet_incident(stubbed, things, task_ids)

    assert run(sqs_event(storm_records(messages, receive_count=2)), lambda_context) == {"batchItemFailures": []}


@pytest.mark.usefixtures("im_enabled")
def test_a_redelivered_remainder_below_the_threshold_takes_the_per_device_path(
    stubbed: Stubbed, lambda_context: Any
) -> None:
    remainder = storm_violations(3)
    for message in remainder:
        stubbed.incidents.add_response(
            "start_incident", {"incidentRecordArn": incident_arn(message["violationId"])},
            {"responsePlanArn": PLAN_ARN, "clientToken": "violation-" + sha(message["violationId"]),
             "title": ANY, "impact": 3, "relatedItems": ANY, "triggerDetails": ANY},
        )

    response = run(sqs_event(storm_records(remainder, receive_count=2)), lambda_context)

    # Bounded by the threshold: at most STORM_THRESHOLD - 1 incidents for a remainder, each contained
    # by the runbook (adding a device already in the group changes nothing).
    assert response == {"batchItemFailures": []}


@pytest.mark.usefixtures("im_enabled")
def test_when_the_fleet_incident_fails_the_devices_are_contained_and_every_record_retried(
    stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    messages = storm_violations(6)
    expect_tasks(stubbed, [message["violationId"] for message in messages])
    stubbed.incidents.add_client_error("start_incident", service_error_code="InternalServerException",
                                       service_message="try again", http_status_code=500,
                                       expected_params=fleet_incident_params())

    response = run(sqs_event(storm_records(messages)), lambda_context)

    assert failed_ids(response) == [f"s-{message['violationId']}" for message in messages]
    assert "InternalServerException: try again" in intake_logs.failure_reasons()["s-fleetv00000"]


@pytest.mark.usefixtures("im_enabled")
def test_listing_devices_on_the_fleet_incident_is_best_effort(
    stubbed: Stubbed, lambda_context: Any, intake_logs: LogCapture
) -> None:
    messages = storm_violations(5)
    expect_tasks(stubbed, [message["violationId"] for message in messages])
    stubbed.expect_start_incident(fleet_incident_params(), FLEET_ARN)
    stubbed.incidents.add_client_error("update_related_items", service_error_code="ValidationException",
                                       service_message="too many related items", http_status_code=400)

    response = run(sqs_event(storm_records(messages)), lambda_context)

    assert response == {"batchItemFailures": []}
    [entry] = intake_logs.with_message("alert storm answered in bulk")
    assert entry["warnings"] == [f"fleet incident {FLEET_ARN} not fully annotated: "
                                 "ValidationException: too many related items"]


# --- Incident Manager off ----------------------------------------------------------------------------


@pytest.mark.usefixtures("im_disabled")
def test_without_incident_manager_a_storm_is_contained_in_bulk_with_one_notice(
    stubbed: Stubbed, responders: Responders, lambda_context: Any, call_log: Any
) -> None:
    messages = storm_violations(30)
    task_ids = expect_tasks(stubbed, [message["violationId"] for message in messages])
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())

    assert run(sqs_event(storm_records(messages)), lambda_context) == {"batchItemFailures": []}
    assert call_log.calls == []  # no per-device registry or shadow call
    [notice] = responders.notices()
    assert notice["subject"] == "fleetguard: alert storm, 30 devices, MessagesPub (MySecProfile)"
    assert "Containment in bulk: 2 of 2 Device Defender mitigation task(s) started" in notice["message"]
    assert f"Tasks: {task_ids[0]}, {task_ids[1]}" in notice["message"]
    assert "Incident Manager is not enabled" in notice["message"]


@pytest.mark.usefixtures("im_disabled")
def test_without_incident_manager_a_redelivered_storm_batch_notifies_once(
    stubbed: Stubbed, responders: Responders, lambda_context: Any
) -> None:
    messages = storm_violations(6)
    ids = [message["violationId"] for message in messages]
    expect_tasks(stubbed, ids)
    expect_tasks(stubbed, ids)  # the redelivery restarts the same tasks (TaskAlreadyExists in AWS)

    run(sqs_event(storm_records(messages)), lambda_context)
    assert run(sqs_event(storm_records(messages, receive_count=2)), lambda_context) == {"batchItemFailures": []}

    assert len(responders.notices()) == 1


# --- throttling that succeeds on retry ------------------------------------------------------------------


class ThrottleOnce:
    """Answers the first request of one operation with a throttling error, as AWS would, and lets later
    attempts through to moto. Registered on before-send, so botocore's retry handler sees the error.

    botocore calls every before-send handler and keeps the first response, so moto would still act on
    the throttled attempt; its stubber is switched off for that one attempt (and back on for the next,
    or at teardown by the fixture).
    """

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.response = AWSResponse("https://throttled.invalid", status, headers, _RawBody(body))
        self.throttled = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.throttled:
            moto_stubber.enabled = True
            return None
        self.throttled += 1
        moto_stubber.enabled = False
        return self.response


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def moto_restored() -> Iterator[None]:
    yield
    moto_stubber.enabled = True


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
@pytest.mark.usefixtures("im_disabled", "moto_restored")
def test_a_throttled_registry_call_succeeds_on_retry(
    retry_mode: str, monkeypatch: pytest.MonkeyPatch, responders: Responders, lambda_context: Any
) -> None:
    monkeypatch.setenv(EnvVar.AWS_RETRY_MODE, retry_mode)
    iot = boto3.client("iot", region_name=REGION)
    iot.create_thing_group(thingGroupName=GROUP)
    iot.create_thing(thingName="dev-IZWB")
    throttle = ThrottleOnce(429, {"x-amzn-ErrorType": "ThrottlingException"}, b'{"message": "Rate exceeded"}')
    aws_clients.iot().meta.events.register_first("before-send.iot.AddThingToThingGroup", throttle)

    response = run(sqs_event([sqs_record(violation("dev-IZWB", violation_id="t1"), message_id="m-1")]),
                   lambda_context)

    assert response == {"batchItemFailures": []}
    assert throttle.throttled == 1
    assert iot.list_things_in_thing_group(thingGroupName=GROUP)["things"] == ["dev-IZWB"]
    assert len(responders.notices()) == 1


@pytest.mark.usefixtures("im_disabled", "moto_restored")
def test_a_throttled_notice_in_a_storm_succeeds_on_retry(
    stubbed: Stubbed, responders: Responders, lambda_context: Any
) -> None:
    messages = storm_violations(5)
    expect_tasks(stubbed, [message["violationId"] for message in messages])
    body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>r1</RequestId></ErrorResponse>")
    throttle = ThrottleOnce(400, {}, body)
    aws_clients.client("sns").meta.events.register_first("before-send.sns.Publish", throttle)

    assert run(sqs_event(storm_records(messages)), lambda_context) == {"batchItemFailures": []}
    assert throttle.throttled == 1
    assert len(responders.notices()) == 1


# --- later batches of the same storm ---------------------------------------------------------------------


@pytest.mark.usefixtures("im_enabled")
def test_later_batches_of_a_storm_fold_into_the_same_fleet_incident(stubbed: Stubbed, lambda_context: Any) -> None:
    messages = storm_violations(12)
    first, second = messages[:6], messages[6:]
    for batch in (first, second):
        # The identical StartIncident request (same clientToken) for both batches; each lists its own devices.
        expect_storm_answered(stubbed, batch)

    for batch in (first, second):
        assert run(sqs_event(storm_records(batch)), lambda_context) == {"batchItemFailures": []}


def test_the_storm_period_is_the_hour_of_the_earliest_violation_in_the_batch() -> None:
    hour = 3_600_000
    start = 1573786800000  # 03:00:00Z
    late = parsed([violation("a", violation_id="a1", time_ms=start + hour - 1)])
    mixed = parsed([violation("b", violation_id="b1", time_ms=start + hour + 5),
                    violation("c", violation_id="c1", time_ms=start + hour - 1)])
    next_hour = parsed([violation("d", violation_id="d1", time_ms=start + hour)])
    key = StormKey("MySecProfile", "MessagesPub")

    periods = [StormResponse(key, members, []).period_start for members in (late, mixed, next_hour)]

    assert periods == [STORM_TIME, STORM_TIME, datetime(2019, 11, 15, 4, 0, tzinfo=UTC)]

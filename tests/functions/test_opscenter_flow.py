"""The OpsCenter incident path end to end: the intake opens one OpsItem and one runbook execution per
violation and schedules its escalation, a redelivery opens neither again, a cleared alarm opens nothing, a
storm opens one item; escalation notifies each stage while nobody acknowledges and stops when someone
does; contain writes its progress to the item and release resolves it.

moto serves IoT, SNS, SQS, DynamoDB and EventBridge Scheduler; it has no OpsCenter or Automation, so SSM
is a botocore Stubber that asserts every request's parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from functions import aws_clients, contain, escalation, intake, release
from functions.containment import ThingNotFoundError, parse_request
from functions.contract import EnvVar, Outcome, OutputKey, RecordOutcome, Status
from functions.contract_opscenter import (
    EscalationEnvironment,
    EscalationOutcome,
    EscalationStage,
    OpsCenterEnvironment,
    escalation_stages_json,
)
from functions.incidents import violation_incident_token
from functions.intake import AwsClients
from functions.ops_incidents import OpsCenterSettings, OpsIncidents
from functions.opscenter import automation_request
from tests.functions.intake_support import (
    ACCOUNT,
    REGION,
    TOPIC_ARN,
    Responders,
    failed_ids,
    set_intake_env,
    sqs_event,
    sqs_record,
    storm_violations,
    violation,
)

OPS_ITEM_ID = "oi-0a1b2c3d4e5f"
EXECUTION_ID = "5d3f9a7e-0c1b-4e2a-9f8d-7b6a5c4d3e2f"
GROUP = "fleetguard-escalation"
RUNBOOK = "fleetguard-device-runbook"
RUNBOOK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/fleetguard-runbook"
STAGES = (
    EscalationStage("oncall", 5, f"arn:aws:sns:{REGION}:{ACCOUNT}:escalation-oncall"),
    EscalationStage("lead", 15, f"arn:aws:sns:{REGION}:{ACCOUNT}:escalation-lead"),
    EscalationStage("director", 60, f"arn:aws:sns:{REGION}:{ACCOUNT}:escalation-director"),
)
OPS_CENTER = OpsCenterEnvironment(
    category="Security",
    severity_by_impact={1: "1", 2: "2", 3: "3", 4: "4", 5: "4"},
    runbook_name=RUNBOOK,
    automation_role_arn=RUNBOOK_ROLE,
    schedule_group=GROUP,
    escalation_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fleetguard-escalation",
    scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/fleetguard-scheduler",
    escalation_stages=escalation_stages_json(STAGES),
    ops_item_tags={"fleetguard:stack": "test"},
)
pytest_plugins = ("tests.functions.intake_support",)

DEVICE = "dev-IZWB"
VIOLATION_ID = "ab3f5e3a-0d8c-4a36-8a3b-1e4f7c2d9b10"


@pytest.fixture
def ssm(aws_env: None) -> Iterator[Stubber]:
    """The SSM client every function uses, stubbed; no request may be left unanswered or unexpected."""
    client = boto3.client("ssm", region_name=REGION)
    stubber = Stubber(client)
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def ops_intake(
    responders: Responders, ssm: Stubber, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The intake with Incident Manager off and OpsCenter on; returns the moto scheduler client."""
    set_intake_env(monkeypatch, incident_manager=False, storm_threshold=3)
    for name, value in OPS_CENTER.to_environment().items():
        monkeypatch.setenv(name, value)
    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.create_schedule_group(Name=GROUP)
    monkeypatch.setattr(intake, "CLIENTS", AwsClients(ssm=lambda: ssm.client))
    return scheduler


def schedules(scheduler: Any) -> dict[str, dict[str, Any]]:
    listed = scheduler.list_schedules(GroupName=GROUP)["Schedules"]
    return {entry["Name"]: scheduler.get_schedule(GroupName=GROUP, Name=entry["Name"]) for entry in listed}


def expect_new_item(ssm: Stubber, *, title: str, priority: int) -> None:
    ssm.add_response("create_ops_item", {"OpsItemId": OPS_ITEM_ID}, {
        "Title": title, "Description": ANY, "Source": "fleetguard", "Category": "Security",
        "Severity": str(priority), "Priority": priority, "Notifications": [{"Arn": TOPIC_ARN}],
        "OperationalData": ANY, "Tags": [{"Key": "fleetguard:stack", "Value": "test"}],
    })


def expect_existing_item(ssm: Stubber, ops_item: dict[str, Any]) -> None:
    ssm.add_client_error(
        "create_ops_item", service_error_code="OpsItemAlreadyExistsException", http_status_code=400,
        modeled_fields={"OpsItemId": OPS_ITEM_ID, "Message": "exists"},
    )
    ssm.add_response("get_ops_item", {"OpsItem": ops_item}, {"OpsItemId": OPS_ITEM_ID})


def expect_runbook(ssm: Stubber, dedup: str) -> None:
    ssm.add_response("start_automation_execution", {"AutomationExecutionId": EXECUTION_ID},
                     automation_request(OPS_ITEM_ID, dedup, runbook_name=RUNBOOK, role_arn=RUNBOOK_ROLE))
    ssm.add_response("update_ops_item", {}, {"OpsItemId": OPS_ITEM_ID, "OperationalData": {"/aws/automations": {
        "Value": json.dumps([{"automationId": EXECUTION_ID, "automationType": "AWS::SSM::Automation"}],
                            separators=(",", ":")),
        "Type": "SearchableString",
    }}})


def outcomes(intake_logs: Any) -> list[RecordOutcome]:
    return [RecordOutcome.parse(entry["outcome"]) for entry in intake_logs.with_message("record handled")]


def violation_dedup() -> str:
    return violation_incident_token(VIOLATION_ID)


def at_minutes(schedule: dict[str, Any], opened: datetime) -> float:
    match = re.fullmatch(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)", schedule["ScheduleExpression"])
    assert match is not None
    return (datetime.fromisoformat(match[1]).replace(tzinfo=UTC) - opened).total_seconds() / 60


# --- the intake -------------------------------------------------------------------------------------------


def test_a_violation_opens_one_item_one_execution_and_the_escalation(
    ops_intake: Any, ssm: Stubber, lambda_context: Any, intake_logs: Any
) -> None:
    expect_new_item(ssm, title=f"IoT device {DEVICE} violated behavior MessagesPub of security profile MySecProfile",
                    priority=3)
    expect_runbook(ssm, violation_dedup())
    opened = datetime.now(UTC)

    response = intake.handler(sqs_event([sqs_record(violation(DEVICE, violation_id=VIOLATION_ID),
                                                    message_id="m1")]), lambda_context)

    assert failed_ids(response) == []
    assert outcomes(intake_logs) == [RecordOutcome(Outcome.OPS_ITEM, OPS_ITEM_ID)]
    scheduled = schedules(ops_intake)
    assert sorted(scheduled) == sorted(f"{OPS_ITEM_ID}-{stage.name}" for stage in STAGES)
    for stage in STAGES:
        schedule = scheduled[f"{OPS_ITEM_ID}-{stage.name}"]
        assert stage.minutes - 0.1 <= at_minutes(schedule, opened) <= stage.minutes + 0.1
        assert schedule["ActionAfterCompletion"] == "DELETE"
        assert json.loads(schedule["Target"]["Input"]) == {"opsItemId": OPS_ITEM_ID, "stage": stage.name}


def test_a_redelivery_opens_neither_an_item_nor_an_execution(
    ops_intake: Any, ssm: Stubber, lambda_context: Any, intake_logs: Any
) -> None:
    expect_new_item(ssm, title=ANY, priority=3)
    expect_runbook(ssm, violation_dedup())
    record = sqs_record(violation(DEVICE, violation_id=VIOLATION_ID), message_id="m1")
    intake.handler(sqs_event([record]), lambda_context)
    first_schedules = schedules(ops_intake)
    ssm.assert_no_pending_responses()
    # The redelivery: OpsCenter folds it into the open item, which lists its execution already.
    expect_existing_item(ssm, {
        "OpsItemId": OPS_ITEM_ID, "Status": "Open", "CreatedTime": datetime.now(UTC),
        "OperationalData": {"/aws/automations": {"Value": json.dumps([{"automationId": EXECUTION_ID}]),
                                                 "Type": "SearchableString"}},
    })

    response = intake.handler(sqs_event([sqs_record(violation(DEVICE, violation_id=VIOLATION_ID),
                                                    message_id="m1-again", receive_count=2)]), lambda_context)

    assert failed_ids(response) == []
    assert outcomes(intake_logs)[-1] == RecordOutcome(Outcome.OPS_ITEM, OPS_ITEM_ID)
    assert schedules(ops_intake).keys() == first_schedules.keys()


def test_a_redelivery_after_a_failed_start_starts_the_runbook(
    ops_intake: Any, ssm: Stubber, lambda_context: Any, intake_logs: Any
) -> None:
    expect_existing_item(ssm, {"OpsItemId": OPS_ITEM_ID, "Status": "Open", "CreatedTime": datetime.now(UTC)})
    expect_runbook(ssm, violation_dedup())

    response = intake.handler(sqs_event([sqs_record(violation(DEVICE, violation_id=VIOLATION_ID),
                                                    message_id="m1")]), lambda_context)

    assert failed_ids(response) == []
    assert len(schedules(ops_intake)) == len(STAGES)


def test_a_cleared_alarm_opens_nothing(
    ops_intake: Any, lambda_context: Any, intake_logs: Any, responders: Responders
) -> None:
    cleared = violation(DEVICE, violation_id=VIOLATION_ID, event_type="alarm-cleared")

    response = intake.handler(sqs_event([sqs_record(cleared, message_id="m1")]), lambda_context)

    assert failed_ids(response) == []
    assert outcomes(intake_logs) == [RecordOutcome(Outcome.LOGGED, "alarm-cleared")]
    assert schedules(ops_intake) == {}
    assert responders.notices() == []


def test_a_storm_opens_one_item_and_no_runbook(
    ops_intake: Any, ssm: Stubber, lambda_context: Any, intake_logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mitigation = boto3.client("iot", region_name=REGION)
    monkeypatch.setattr(intake, "CLIENTS", AwsClients(ssm=lambda: ssm.client, mitigation=lambda: mitigation))
    members = storm_violations(4)
    with Stubber(mitigation) as tasks:
        tasks.add_response("start_detect_mitigation_actions_task", {"taskId": "t"}, {
            "taskId": ANY, "target": {"violationIds": [m["violationId"] for m in members]}, "actions": ANY,
            "includeOnlyActiveViolations": False, "clientRequestToken": ANY,
        })
        expect_new_item(ssm, title="Alert storm: many IoT devices violated behavior MessagesPub of security "
                        "profile MySecProfile", priority=3)

        response = intake.handler(
            sqs_event([sqs_record(m, message_id=f"m{i}") for i, m in enumerate(members)]), lambda_context
        )

    assert failed_ids(response) == []
    assert {outcome.kind for outcome in outcomes(intake_logs)} == {Outcome.STORM_MEMBER}
    assert len(schedules(ops_intake)) == len(STAGES)


# --- escalation -------------------------------------------------------------------------------------------


@pytest.fixture
def stage_inboxes(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Responders]:
    """Each stage's topic in moto with a queue subscribed; the escalation function's configuration."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    inboxes = {}
    for stage in STAGES:
        topic_arn = sns.create_topic(Name=stage.topic_arn.rsplit(":", 1)[1])["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"inbox-{stage.name}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        inboxes[stage.name] = Responders(sqs, queue_url)
    config = EscalationEnvironment(schedule_group=GROUP, escalation_stages=escalation_stages_json(STAGES))
    for name, value in config.to_environment().items():
        monkeypatch.setenv(name, value)
    return inboxes


def serve_ssm_from(ssm: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers' shared ``client("ssm")`` is the stubbed client; every other service stays moto's."""
    shared = aws_clients.client

    def client(service: str) -> Any:
        return ssm.client if service == "ssm" else shared(service)

    client.cache_clear = shared.cache_clear  # type: ignore[attr-defined]
    monkeypatch.setattr(aws_clients, "client", client)


def scheduled_item(ssm: Stubber, status: str) -> None:
    ssm.add_response("get_ops_item", {"OpsItem": {
        "OpsItemId": OPS_ITEM_ID, "Status": status, "Title": f"IoT device {DEVICE} violated behavior MessagesPub",
        "Priority": 3, "Severity": "3", "CreatedTime": datetime.now(UTC) - timedelta(minutes=5),
    }}, {"OpsItemId": OPS_ITEM_ID})


def create_stage_schedules(scheduler: Any) -> None:
    settings = OpsCenterSettings.from_environment(OPS_CENTER, TOPIC_ARN)
    OpsIncidents(settings, ssm=None, scheduler=scheduler).schedule_escalation(
        OPS_ITEM_ID, datetime.now(UTC), datetime.now(UTC)
    )


def test_escalation_notifies_each_stage_while_nobody_acknowledges_then_stops(
    stage_inboxes: dict[str, Responders], ssm: Stubber, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_ssm_from(ssm, monkeypatch)
    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.create_schedule_group(Name=GROUP)
    create_stage_schedules(scheduler)

    # Stage 1 and stage 2 run while the item is still Open: each notifies its own topic.
    scheduled_item(ssm, "Open")
    first = escalation.handler({"opsItemId": OPS_ITEM_ID, "stage": "oncall"}, lambda_context)
    scheduled_item(ssm, "Open")
    second = escalation.handler({"opsItemId": OPS_ITEM_ID, "stage": "lead"}, lambda_context)

    assert first["outcome"] == second["outcome"] == EscalationOutcome.NOTIFIED
    (oncall,) = stage_inboxes["oncall"].notices()
    (lead,) = stage_inboxes["lead"].notices()
    assert OPS_ITEM_ID in oncall["subject"]
    assert f"aws ssm update-ops-item --ops-item-id {OPS_ITEM_ID} --status InProgress" in lead["message"]
    assert stage_inboxes["director"].notices() == []

    # Someone acknowledges before the next stage runs: that stage notifies nobody and cancels the later ones.
    scheduled_item(ssm, "InProgress")
    stopped = escalation.handler({"opsItemId": OPS_ITEM_ID, "stage": "lead"}, lambda_context)

    assert stopped["outcome"] == EscalationOutcome.STOPPED
    assert stopped["deletedSchedules"] == [f"{OPS_ITEM_ID}-director"]
    assert f"{OPS_ITEM_ID}-director" not in {s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"]}
    assert all(inbox.notices() == [] for inbox in stage_inboxes.values())


def test_a_resolved_item_with_its_schedules_gone_stops_quietly(
    stage_inboxes: dict[str, Responders], ssm: Stubber, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_ssm_from(ssm, monkeypatch)
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=GROUP)
    scheduled_item(ssm, "Resolved")

    result = escalation.handler({"opsItemId": OPS_ITEM_ID, "stage": "oncall"}, lambda_context)

    assert result["outcome"] == EscalationOutcome.STOPPED
    assert result["deletedSchedules"] == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"opsItemId": "oi-XYZ", "stage": "oncall"}, "opsItemId: expected an OpsItem id"),
        ({"opsItemId": OPS_ITEM_ID, "stage": "cto"}, r"stage: expected a configured escalation stage"),
        ({"opsItemId": OPS_ITEM_ID}, "event: expected a JSON object with exactly opsItemId, stage"),
    ],
)
def test_a_bad_escalation_event_is_refused(
    event: dict[str, str], message: str, stage_inboxes: Any, lambda_context: Any
) -> None:
    with pytest.raises(ValueError, match=message):
        escalation.handler(event, lambda_context)


# --- contain and release with an OpsItem ----------------------------------------------------------------


@pytest.fixture
def device(moto_aws: None, monkeypatch: pytest.MonkeyPatch, ssm: Stubber, iot: Any) -> Any:
    monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, "fleetguard-quarantine")
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, f"data-ats.iot.{REGION}.amazonaws.com")
    iot.create_thing_group(thingGroupName="fleetguard-quarantine")
    iot.create_thing(thingName=DEVICE)
    serve_ssm_from(ssm, monkeypatch)
    return iot


def test_contain_reads_the_device_from_the_item_and_writes_its_progress(
    device: Any, ssm: Stubber, lambda_context: Any
) -> None:
    ssm.add_response("get_ops_item", {"OpsItem": {"OpsItemId": OPS_ITEM_ID, "OperationalData": {
        "/aws/resources": {"Value": json.dumps([{"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{DEVICE}"}]),
                           "Type": "SearchableString"}}}}, {"OpsItemId": OPS_ITEM_ID})
    ssm.add_response("update_ops_item", {}, {"OpsItemId": OPS_ITEM_ID, "OperationalData": {
        "fleetguard:containment": {"Value": ANY, "Type": "String"}}})

    result = contain.handler({"opsItemId": OPS_ITEM_ID}, lambda_context)

    assert result[OutputKey.STATUS] == Status.CONTAINED
    assert [thing["thingName"] for thing in result["things"]] == [DEVICE]
    groups = device.list_thing_groups_for_thing(thingName=DEVICE)["thingGroups"]
    assert [group["groupName"] for group in groups] == ["fleetguard-quarantine"]


def test_release_resolves_the_item_with_a_note(device: Any, ssm: Stubber, lambda_context: Any) -> None:
    device.add_thing_to_thing_group(thingGroupName="fleetguard-quarantine", thingName=DEVICE)
    ssm.add_response("update_ops_item", {}, {"OpsItemId": OPS_ITEM_ID, "Status": "Resolved", "OperationalData": {
        "fleetguard:resolution": {"Value": ANY, "Type": "String"}}})

    result = release.handler({"thingName": DEVICE, "opsItemId": OPS_ITEM_ID, "reason": "firmware fixed"},
                             lambda_context)

    assert result[OutputKey.STATUS] == Status.RELEASED
    assert device.list_thing_groups_for_thing(thingName=DEVICE)["thingGroups"] == []


def test_a_release_that_fails_leaves_the_item_open(device: Any, ssm: Stubber, lambda_context: Any) -> None:
    # The stubber holds no UpdateOpsItem answer: resolving the item would fail the test.
    with pytest.raises(ThingNotFoundError):
        release.handler({"thingName": "no-such-device", "opsItemId": OPS_ITEM_ID}, lambda_context)


# --- the sample events ----------------------------------------------------------------------------------


def test_the_sample_escalation_event_names_an_item_and_a_stage(load_event: Any) -> None:
    assert escalation.parse_event(load_event("scheduler-escalation.json"), STAGES) == (OPS_ITEM_ID, STAGES[0])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken-scheduler-escalation-bad-id.json", "opsItemId: expected an OpsItem id matching"),
        ("broken-scheduler-escalation-extra-field.json", "event: expected a JSON object with exactly opsItemId, stage"),
    ],
)
def test_the_broken_escalation_events_are_refused(name: str, message: str, load_event: Any) -> None:
    with pytest.raises(ValueError, match=message):
        escalation.parse_event(load_event(name), STAGES)


def test_the_sample_runbook_request_names_only_the_item(load_event: Any) -> None:
    request = parse_request(load_event("runbook-contain-ops-item.json"))

    assert (request.thing_name, request.incident_record_arn, request.ops_item_id) == (None, None, OPS_ITEM_ID)


def test_the_broken_runbook_request_is_refused(load_event: Any) -> None:
    with pytest.raises(ValueError, match="opsItemId: expected an OpsItem id matching"):
        parse_request(load_event("broken-runbook-contain-ops-item-id.json"))

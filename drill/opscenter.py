"""The drill's OpsCenter part: the response path of an account without Incident Manager, end to end.

After the main scenario (whose state it leaves alone), two more devices alarm with OpsCenter incidents on.
The intake opens one OpsItem per violation (a redelivery of the first folds into it), starts the runbook
for each and schedules the escalation stages in the emulator's EventBridge Scheduler. The drill runs the
runbook's contain step for every started execution, a responder acknowledges the second item, and then the
drill advances its scheduler clock (no waiting): each schedule that has come due invokes the escalation
function with its input and is deleted, as ``ActionAfterCompletion: DELETE`` does. Finally the first device
is released, which resolves its OpsItem.

OpsCenter and Automation are not in the emulator: ``drill/opscenter_stand_in.py`` answers for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import boto3  # type: ignore[import-untyped]

from drill.consumer import drain_intake
from drill.emulator import drain_queue
from drill.observed import Run
from drill.opscenter_stand_in import OpsCenterStandIn
from drill.scenario import ACCOUNT_ID, LISTENING_PORTS, REGION, RULES_PROFILE, Alert, violation
from functions import aws_clients, contain, escalation, release
from functions.contract import OutputKey
from functions.contract_opscenter import (
    EscalationEnvironment,
    EscalationStage,
    OpsCenterEnvironment,
    escalation_stages_json,
)
from functions.opscenter import ACKNOWLEDGED, RESOLVED, thing_name_of
from harness.environment import environment_set
from harness.lambda_context import lambda_context

DEVICES: Final = ("opscenter-sensor-01", "opscenter-sensor-02")
SCHEDULE_GROUP: Final = "fleetguard-drill-escalation"
RUNBOOK: Final = "fleetguard-drill-runbook"
STAGE_MINUTES: Final = (("oncall", 5), ("lead", 15))
_AT: Final = re.compile(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)")


@dataclass
class OpsCenterObserved:
    """What the OpsCenter part saw."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """OpsItem id -> the item as the stand-in holds it at the end."""
    executions: list[str] = field(default_factory=list)
    """OpsItem id of each runbook execution started, in order."""
    contained_by_runbook: list[str] = field(default_factory=list)
    escalations: list[tuple[int, str, str, str]] = field(default_factory=list)
    """(minutes after the items opened, stage, OpsItem id, outcome) per schedule that came due."""
    notices: dict[str, list[str]] = field(default_factory=dict)
    """Stage -> subjects published to its topic."""
    schedules_left: list[str] = field(default_factory=list)


def _alerts() -> list[Alert]:
    alerts = []
    for number, device in enumerate(DEVICES, start=1):
        message = violation(violation_id=f"opscenter-{number:04d}-7f3e", thing_name=device, profile=RULES_PROFILE,
                            behavior=LISTENING_PORTS, event_type="in-alarm", offset_ms=3_600_000 + number,
                            metric_value={"ports": [23, 443]})
        alerts.append(Alert(f"opscenter-alarm-{number}", "rule in-alarm (OpsCenter)",
                            json.dumps(message, separators=(",", ":")), device))
    return alerts


def run_ops_center_part(run: Run, url: str) -> OpsCenterObserved:
    """Run the OpsCenter part inside the handlers' environment (``drill.handlers.handlers_pointed_at``)."""
    session = boto3.session.Session(aws_access_key_id="drill", aws_secret_access_key="drill", region_name=REGION)
    scheduler = session.client("scheduler", endpoint_url=url)
    scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    stages, inboxes = _stage_topics(run, session, url)
    for device in DEVICES:
        run.clients.iot.create_thing(thingName=device)
    opened_at = datetime.now(UTC)
    stand_in = OpsCenterStandIn.with_exceptions_of(session.client("ssm", endpoint_url=url), lambda: datetime.now(UTC))
    observed = OpsCenterObserved()
    settings = _environment(stages)
    with _ssm_served_by(stand_in), environment_set(settings):
        run.timeline.add("OpsCenter part: Incident Manager off, OpsCenter incidents on; two devices alarm")
        alerts = _alerts()
        run.labels_by_message.update({alert.message: alert for alert in alerts})
        for wave, published in (("alarms", alerts), ("redelivery of the first alarm", alerts[:1])):
            run.timeline.add(f"OpsCenter wave ({wave}): publishing {len(published)} alert(s)")
            for alert in published:
                run.clients.sns.publish(TopicArn=run.plumbing.alert_topic_arn, Message=alert.message)
            drain_intake(run)
        _run_runbooks(run, stand_in, observed)
        acknowledged = next(item_id for item_id, item in stand_in.items.items() if thing_name_of(item) == DEVICES[1])
        stand_in.update_ops_item(OpsItemId=acknowledged, Status=ACKNOWLEDGED)
        run.timeline.add(f"responder acknowledges {acknowledged} ({DEVICES[1]}): status {ACKNOWLEDGED}")
        for minutes in (STAGE_MINUTES[0][1], STAGE_MINUTES[1][1]):
            _advance_scheduler(run, scheduler, opened_at, minutes, observed)
        _release_first_device(run, stand_in)
    observed.items = stand_in.items
    observed.notices = {
        stage: [str(json.loads(body).get("Subject")) for body in drain_queue(run.clients.sqs, inbox)]
        for stage, inbox in inboxes.items()
    }
    left = scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
    observed.schedules_left = [entry["Name"] for entry in left]
    return observed


def _stage_topics(run: Run, session: Any, url: str) -> tuple[tuple[EscalationStage, ...], dict[str, str]]:
    sns, sqs = session.client("sns", endpoint_url=url), run.clients.sqs
    stages, inboxes = [], {}
    for name, minutes in STAGE_MINUTES:
        topic_arn = sns.create_topic(Name=f"fleetguard-drill-escalation-{name}")["TopicArn"]
        inbox = sqs.create_queue(QueueName=f"fleetguard-drill-escalation-{name}-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)
        stages.append(EscalationStage(name, minutes, topic_arn))
        inboxes[name] = inbox
    return tuple(stages), inboxes


def _environment(stages: tuple[EscalationStage, ...]) -> dict[str, str]:
    stages_json = escalation_stages_json(stages)
    ops_center = OpsCenterEnvironment(
        category="Security",
        severity_by_impact={1: "1", 2: "2", 3: "3", 4: "4", 5: "4"},
        runbook_name=RUNBOOK,
        automation_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/fleetguard-drill-runbook",
        schedule_group=SCHEDULE_GROUP,
        escalation_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:fleetguard-drill-escalation",
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/fleetguard-drill-scheduler",
        escalation_stages=stages_json,
        ops_item_tags={"fleetguard:stack": "drill"},
    )
    escalation_env = EscalationEnvironment(schedule_group=SCHEDULE_GROUP, escalation_stages=stages_json)
    return {**ops_center.to_environment(), **escalation_env.to_environment()}


@contextmanager
def _ssm_served_by(stand_in: OpsCenterStandIn) -> Iterator[None]:
    """The handlers' ``client("ssm")`` is the stand-in; every other client stays the emulator's."""
    shared = aws_clients.client

    def client(service: str) -> Any:
        return stand_in if service == "ssm" else shared(service)

    client.cache_clear = shared.cache_clear  # type: ignore[attr-defined]
    aws_clients.client = client  # type: ignore[assignment]
    try:
        yield
    finally:
        aws_clients.client = shared


def _context(name: str, number: int) -> Any:
    return lambda_context(f"fleetguard-drill-{name}", region=REGION, account_id=ACCOUNT_ID,
                          request_id=f"00000000-0000-4000-b000-{number:012d}", log_stream="drill")


def _run_runbooks(run: Run, stand_in: OpsCenterStandIn, observed: OpsCenterObserved) -> None:
    """Each started execution's contain step: the contain function with the OpsItem id, as the runbook
    passes it (the other parameters empty)."""
    for number, execution in enumerate(stand_in.pending, start=1):
        observed.executions.append(execution.ops_item_id)
        result = contain.handler({"thingName": "", "incidentRecordArn": "", "opsItemId": execution.ops_item_id,
                                  "reason": f"runbook {execution.document_name}"}, _context("contain", number))
        things = [thing["thingName"] for thing in result["things"]]
        observed.contained_by_runbook += things
        run.timeline.add(f"runbook {execution.document_name} execution {execution.automation_id} for "
                         f"{execution.ops_item_id}: contain step {result[OutputKey.STATUS]} {', '.join(things)}")
    stand_in.pending.clear()


def _advance_scheduler(
    run: Run, scheduler: Any, opened_at: datetime, minutes: int, observed: OpsCenterObserved
) -> None:
    """Move the scheduler's clock to ``minutes`` after the items opened and fire what has come due."""
    now = opened_at + timedelta(minutes=minutes, seconds=1)
    run.timeline.add(f"scheduler clock advanced to {minutes} min after the OpsItems opened")
    listed = scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]
    for number, entry in enumerate(sorted(listed, key=lambda entry: entry["Name"]), start=1):
        schedule = scheduler.get_schedule(GroupName=SCHEDULE_GROUP, Name=entry["Name"])
        due = _AT.fullmatch(schedule["ScheduleExpression"])
        if due is None or datetime.fromisoformat(due[1]).replace(tzinfo=UTC) > now:
            continue
        event = json.loads(schedule["Target"]["Input"])
        result = escalation.handler(event, _context("escalation", minutes * 100 + number))
        scheduler.delete_schedule(GroupName=SCHEDULE_GROUP, Name=entry["Name"])
        observed.escalations.append((minutes, event["stage"], event["opsItemId"], result["outcome"]))
        deleted = result["deletedSchedules"]
        run.timeline.add(f"  escalation {entry['Name']}: {result['outcome']}"
                         + (f"; deleted {', '.join(deleted)}" if deleted else ""))


def _release_first_device(run: Run, stand_in: OpsCenterStandIn) -> None:
    ops_item_id = next(item_id for item_id, item in stand_in.items.items() if thing_name_of(item) == DEVICES[0])
    result = release.handler({"thingName": DEVICES[0], "opsItemId": ops_item_id, "reason": "port 23 closed"},
                             _context("release", 1))
    status = stand_in.items[ops_item_id]["Status"]
    run.timeline.add(f"release function: {DEVICES[0]} {result[OutputKey.STATUS]}; {ops_item_id} now {status}")


def check_ops_center(observed: OpsCenterObserved) -> list[str]:
    """Every way the OpsCenter part differs from what it must show."""
    failures: list[str] = []
    by_device = {thing_name_of(item): item_id for item_id, item in observed.items.items()}
    if sorted(by_device, key=str) != sorted(DEVICES) or len(observed.items) != len(DEVICES):
        failures.append(f"OpsItems: expected one per device {list(DEVICES)} (the redelivery folded), got "
                        f"{ {item_id: thing_name_of(item) for item_id, item in observed.items.items()} }")
        return failures
    first, second = (by_device[device] for device in DEVICES)
    if sorted(observed.executions) != sorted((first, second)):
        failures.append(f"runbook executions: expected one per OpsItem, got {observed.executions}")
    if sorted(observed.contained_by_runbook) != sorted(DEVICES):
        failures.append(f"contained by the runbook: expected {list(DEVICES)}, got {observed.contained_by_runbook}")
    wanted = [(5, "oncall", first, "stage notified"), (5, "oncall", second, "escalation stopped"),
              (15, "lead", first, "stage notified")]
    if sorted(observed.escalations) != sorted(wanted):
        failures.append(f"escalations: expected {wanted}, got {observed.escalations}")
    for stage, subjects in observed.notices.items():
        if len(subjects) != 1 or first not in subjects[0]:
            failures.append(f"stage {stage}: expected one notice about {first}, got {subjects}")
    if observed.schedules_left:
        failures.append(f"escalation schedules left: {observed.schedules_left}")
    statuses = {item_id: observed.items[item_id]["Status"] for item_id in (first, second)}
    if statuses != {first: RESOLVED, second: ACKNOWLEDGED}:
        failures.append(f"OpsItem statuses: expected {first} {RESOLVED}, {second} {ACKNOWLEDGED}; got {statuses}")
    return failures


def summary_lines(observed: OpsCenterObserved) -> list[str]:
    lines = [f"  OpsCenter incidents ({len(observed.items)}):"]
    lines += [f"    {item_id} [{thing_name_of(item)}] {item['Status']}: {item['Title']}"
              for item_id, item in observed.items.items()]
    lines.append(f"  runbook executions ({len(observed.executions)}): " + ", ".join(observed.executions))
    lines.append(f"  escalations ({len(observed.escalations)}):")
    lines += [f"    +{minutes} min {stage} {item_id}: {outcome}"
              for minutes, stage, item_id, outcome in observed.escalations]
    return lines

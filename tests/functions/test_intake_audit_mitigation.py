"""Audit mitigation in the intake: a mapped, non-compliant check of a completed audit starts exactly one
Device Defender mitigation task per audit task and check, however often the notification arrives;
unmapped, failed, fully suppressed and approval-only checks start none, and an approval-only check's task
starts when a responder runs the approval document (once, however often it runs). What was done is
recorded on the audit's incident, its OpsItem, or the responders notice.

SNS, SQS, DynamoDB and EventBridge Scheduler are moto; Device Defender's audit mitigation tasks are
``DeviceDefenderTasks`` (moto has none); Incident Manager and OpsCenter are botocore Stubbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from components.audit_mitigation import approval_document
from functions import audit_mitigation, intake
from functions.audit_mitigation import CONFIRM_DELAYS_SECONDS
from functions.contract import EnvVar
from functions.contract_mitigation import AuditMitigationEnvironment, CheckActions, render_mitigations
from functions.intake import AwsClients
from tests.functions.intake_support import (
    PLAN_ARN,
    REGION,
    Responders,
    failed_ids,
    incident_arn,
    set_intake_env,
    sqs_event,
    sqs_record_from_sns_event,
)
from tests.functions.mitigation_support import DeviceDefenderTasks, run_approval_document
from tests.functions.test_opscenter_flow import OPS_CENTER

pytest_plugins = ("tests.functions.intake_support",)

AUDIT_TASK = "5f3b2a1c0d9e8f7a6b5c4d3e2f1a0b9c"
LOGGING = "LOGGING_DISABLED_CHECK"
REVOKED_CA = "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"
ENABLE_LOGGING = "fleetguard-dev-quarantine-enable-logging"
DEACTIVATE_CA = "fleetguard-dev-audit-mitigation-deactivate-ca-cert"
DOCUMENT = "fleetguard-dev-audit-mitigation"
CHECKS = {
    LOGGING: CheckActions((ENABLE_LOGGING,), approval_required=False),
    # Mapped, but every finding is suppressed in the sample: nothing to mitigate.
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": CheckActions(("fleetguard-dev-audit-mitigation-blank-policy",), False),
    # Mapped, but the check FAILED in the sample.
    "CA_CERTIFICATE_EXPIRING_CHECK": CheckActions((DEACTIVATE_CA,), approval_required=False),
    REVOKED_CA: CheckActions((DEACTIVATE_CA,), approval_required=True),
}
"""DEVICE_CERTIFICATE_EXPIRING_CHECK, non-compliant in the sample, is left unmapped."""
LOGGING_TASK = f"{AUDIT_TASK}-{LOGGING}"
APPROVE = (f"aws ssm start-automation-execution --document-name {DOCUMENT} "
           f"--parameters AuditTaskId={AUDIT_TASK},CheckName={REVOKED_CA}")
REPORT = "\n".join([
    f"Mitigation of audit task {AUDIT_TASK}:",
    f"- {LOGGING}: mitigation task {LOGGING_TASK} started ({ENABLE_LOGGING}); "
    f"aws iot describe-audit-mitigation-actions-task --task-id {LOGGING_TASK}",
    f"- {REVOKED_CA}: {DEACTIVATE_CA} await approval; to approve, run {APPROVE}",
])
"""The report, written out independently of the code."""
AUDIT_TIME = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def tasks() -> DeviceDefenderTasks:
    return DeviceDefenderTasks()


def stubbed(service: str) -> Iterator[Stubber]:
    """A client of ``service`` that answers only what a test queued, and must be asked all of it."""
    stubber = Stubber(boto3.client(service, region_name=REGION))
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def incidents(aws_env: None) -> Iterator[Stubber]:
    yield from stubbed("ssm-incidents")


@pytest.fixture
def ssm(aws_env: None) -> Iterator[Stubber]:
    yield from stubbed("ssm")


def configure(monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, *, incident_manager: bool,
              incidents: Stubber | None = None, ssm: Stubber | None = None) -> None:
    set_intake_env(monkeypatch, incident_manager=incident_manager)
    for name, value in AuditMitigationEnvironment(render_mitigations(CHECKS), DOCUMENT).to_environment().items():
        monkeypatch.setenv(name, value)
    defaults = AwsClients()
    monkeypatch.setattr(intake, "CLIENTS", AwsClients(
        mitigation=lambda: tasks,
        incidents=(lambda: incidents.client) if incidents is not None else defaults.incidents,
        ssm=(lambda: ssm.client) if ssm is not None else defaults.ssm,
    ))


@dataclass(frozen=True)
class Delivery:
    """Builds intake queue records from the samples and hands batches of them to the handler."""

    load_event: Any
    lambda_context: Any

    def record(self, name: str = "sns-audit-mitigation.json", *, message_id: str = "m-audit",
               receive_count: int = 1, **changes: Any) -> dict[str, Any]:
        """The sample as the intake queue delivers it, with ``changes`` to its message."""
        event = self.load_event(name)
        if changes:
            sns = event["Records"][0]["Sns"]
            sns["Message"] = json.dumps({**json.loads(sns["Message"]), **changes})
        return sqs_record_from_sns_event(event, message_id=message_id, receive_count=receive_count)

    def run(self, *records: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = intake.handler(sqs_event(list(records)), self.lambda_context)
        return response


@pytest.fixture
def deliver(load_event: Any, lambda_context: Any) -> Delivery:
    return Delivery(load_event, lambda_context)


def expect_incident_and_record(incidents: Stubber) -> None:
    incidents.add_response("start_incident", {"incidentRecordArn": incident_arn("audit")}, {
        "responsePlanArn": PLAN_ARN, "clientToken": ANY, "title": ANY, "impact": 3, "triggerDetails": ANY,
    })
    incidents.add_response("create_timeline_event", {"incidentRecordArn": incident_arn("audit"), "eventId": "e1"}, {
        "incidentRecordArn": incident_arn("audit"),
        "clientToken": "note-" + hashlib.sha256(
            f"{incident_arn('audit')}\naudit-mitigation\n{AUDIT_TASK}".encode()
        ).hexdigest(),
        "eventTime": AUDIT_TIME,
        "eventType": "Custom Event",
        "eventData": REPORT,
    })


# --- the automatic path ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("moto_aws", "responders")
def test_a_mapped_check_starts_one_task_and_the_incident_records_it_with_the_pending_approval(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, incidents: Stubber, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=True, incidents=incidents)
    expect_incident_and_record(incidents)

    response = deliver.run(deliver.record())

    assert response == {"batchItemFailures": []}
    assert tasks.starts == [{
        "taskId": LOGGING_TASK,
        "target": {"auditTaskId": AUDIT_TASK},
        "auditCheckToActionsMapping": {LOGGING: [ENABLE_LOGGING]},
        "clientRequestToken": hashlib.sha256(f"{AUDIT_TASK}\n{LOGGING}".encode()).hexdigest(),
    }]


@pytest.mark.usefixtures("moto_aws", "responders")
def test_a_redelivered_notification_starts_no_second_task(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, incidents: Stubber, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=True, incidents=incidents)
    for receive_count in (1, 2):
        expect_incident_and_record(incidents)
        response = deliver.run(deliver.record(receive_count=receive_count))
        assert response == {"batchItemFailures": []}

    # The second start named the same task and was refused; one task exists.
    assert [start["taskId"] for start in tasks.starts] == [LOGGING_TASK, LOGGING_TASK]
    assert tasks.started_checks() == {LOGGING_TASK: [f"{LOGGING}:{ENABLE_LOGGING}"]}


@pytest.mark.usefixtures("moto_aws", "responders")
def test_the_same_notification_twice_in_one_batch_starts_one_task(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, incidents: Stubber, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=True, incidents=incidents)
    expect_incident_and_record(incidents)

    response = deliver.run(deliver.record(message_id="m-1"), deliver.record(message_id="m-2"))

    assert response == {"batchItemFailures": []}
    assert [start["taskId"] for start in tasks.starts] == [LOGGING_TASK]


@pytest.mark.parametrize("task_status", ["FAILED", "CANCELED"])
@pytest.mark.usefixtures("moto_aws", "responders")
def test_an_audit_that_did_not_complete_starts_no_task(
    task_status: str, monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, incidents: Stubber,
    deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=True, incidents=incidents)
    incidents.add_response("start_incident", {"incidentRecordArn": incident_arn("audit")}, {
        "responsePlanArn": PLAN_ARN, "clientToken": ANY, "title": ANY, "impact": 3, "triggerDetails": ANY,
    })

    response = deliver.run(deliver.record(taskStatus=task_status))

    assert response == {"batchItemFailures": []}
    assert tasks.starts == []


@pytest.mark.usefixtures("moto_aws", "responders")
def test_a_compliant_audit_starts_no_task(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, incidents: Stubber, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=True, incidents=incidents)
    assert deliver.run(deliver.record("sns-audit-all-compliant.json")) == {"batchItemFailures": []}
    assert tasks.starts == []


@pytest.mark.usefixtures("moto_aws")
def test_without_a_mapping_no_task_starts(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    monkeypatch.delenv(EnvVar.AUDIT_MITIGATIONS)

    assert deliver.run(deliver.record()) == {"batchItemFailures": []}
    assert tasks.starts == []
    [notice] = responders.notices()
    assert "Mitigation" not in notice["message"]


@pytest.mark.usefixtures("moto_aws")
def test_a_throttled_start_fails_the_record_and_its_redelivery_starts_the_one_task(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    tasks.throttle_starts = 1

    first = deliver.run(deliver.record())
    assert failed_ids(first) == ["m-audit"]
    assert tasks.tasks == {}
    assert responders.notices() == []  # nothing reported until the task is confirmed

    second = deliver.run(deliver.record(receive_count=2))
    assert second == {"batchItemFailures": []}
    assert list(tasks.tasks) == [LOGGING_TASK]


@pytest.mark.usefixtures("moto_aws")
def test_a_task_shown_after_a_pause_is_confirmed_in_the_same_delivery(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    pauses: list[float] = []
    monkeypatch.setattr(audit_mitigation, "pause", pauses.append)
    tasks.hidden_describes = len(CONFIRM_DELAYS_SECONDS)

    assert deliver.run(deliver.record()) == {"batchItemFailures": []}
    assert pauses == list(CONFIRM_DELAYS_SECONDS)
    assert list(tasks.tasks) == [LOGGING_TASK]
    assert len(responders.notices()) == 1


@pytest.mark.usefixtures("moto_aws")
def test_a_task_not_visible_yet_fails_the_record_and_the_redelivery_confirms_it(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    monkeypatch.setattr(audit_mitigation, "pause", lambda _seconds: None)
    tasks.hidden_describes = len(CONFIRM_DELAYS_SECONDS) + 1

    assert failed_ids(deliver.run(deliver.record())) == ["m-audit"]
    assert deliver.run(deliver.record(receive_count=2)) == {"batchItemFailures": []}
    assert list(tasks.tasks) == [LOGGING_TASK]
    [notice] = responders.notices()
    assert REPORT in notice["message"]


@pytest.mark.usefixtures("moto_aws", "responders")
def test_an_audit_task_id_no_task_could_be_named_after_fails_its_record(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    response = deliver.run(deliver.record("broken-audit-mitigation-task-id.json", message_id="m-bad"))

    assert failed_ids(response) == ["m-bad"]
    assert tasks.starts == []


# --- where the report goes ------------------------------------------------------------------------------


@pytest.mark.usefixtures("moto_aws")
def test_without_incidents_the_notice_carries_the_report_once(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)

    for receive_count in (1, 2):
        response = deliver.run(deliver.record(receive_count=receive_count))
        assert response == {"batchItemFailures": []}

    [notice] = responders.notices()
    assert notice["message"].endswith("\n\n" + REPORT)
    assert list(tasks.tasks) == [LOGGING_TASK]


@pytest.mark.usefixtures("moto_aws")
def test_with_opscenter_the_ops_item_records_the_report(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, responders: Responders, ssm: Stubber,
    deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False, ssm=ssm)
    for name, value in OPS_CENTER.to_environment().items():
        monkeypatch.setenv(name, value)
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=OPS_CENTER.schedule_group)
    ops_item_fields = ("Title", "Description", "Source", "Category", "Severity", "Priority", "Notifications",
                       "OperationalData", "Tags")
    ssm.add_response("create_ops_item", {"OpsItemId": "oi-0a1b2c3d4e5f"}, dict.fromkeys(ops_item_fields, ANY))
    ssm.add_response("update_ops_item", {}, {
        "OpsItemId": "oi-0a1b2c3d4e5f",
        "OperationalData": {"fleetguard:mitigation": {"Value": REPORT, "Type": "SearchableString"}},
    })

    assert deliver.run(deliver.record()) == {"batchItemFailures": []}
    assert list(tasks.tasks) == [LOGGING_TASK]
    # The notice about the checks routed to people points at the OpsItem and leaves the report to it.
    [notice] = responders.notices()
    assert "Mitigation" not in notice["message"]


# --- the approval path ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("moto_aws", "responders")
def test_an_approval_only_check_starts_when_the_document_runs_and_only_once(
    monkeypatch: pytest.MonkeyPatch, tasks: DeviceDefenderTasks, deliver: Delivery,
) -> None:
    configure(monkeypatch, tasks, incident_manager=False)
    approval_task = f"{AUDIT_TASK}-{REVOKED_CA}"
    document = approval_document({REVOKED_CA: CHECKS[REVOKED_CA]}, role_arn="arn:aws:iam::123456789012:role/r")
    parameters = {"AuditTaskId": AUDIT_TASK, "CheckName": REVOKED_CA}

    deliver.run(deliver.record())
    assert approval_task not in tasks.tasks

    # Approved twice (two responders, or one retrying): one task, and both runs confirm it.
    assert [run_approval_document(document, parameters, tasks) for _ in range(2)] == ["Success", "Success"]
    assert tasks.started_checks()[approval_task] == [f"{REVOKED_CA}:{DEACTIVATE_CA}"]

    # A later delivery of the audit neither starts it again nor anything else.
    deliver.run(deliver.record(receive_count=2))
    assert sorted(tasks.tasks) == sorted([LOGGING_TASK, approval_task])
    assert [start["taskId"] for start in tasks.starts].count(approval_task) == 2

"""The handlers' side of the drill: they run unchanged, in process, configured as the stack would configure
them and pointed at the emulator.

Their clients come from ``functions.aws_clients``, pointed at the emulator with ``AWS_ENDPOINT_URL``
(botocore's own setting). The IoT data endpoint is the one exception: the factory accepts only
``https://`` data endpoints and the emulator speaks plain HTTP, so for the drill's duration
``aws_clients.data_endpoint_url`` answers with the emulator's URL. Incident Manager, which the emulator
lacks, is switched off: the intake then takes its documented fallback path (contain the device itself and
notify the responders topic). Device Defender's StartDetectMitigationActionsTask and audit mitigation
tasks, which the emulator lacks too, are answered by a botocore Stubber with the parameters the storm and
the audit must produce, given to the intake through its ``CLIENTS.mitigation`` seam; the emulator cannot
run the task, so storm devices are reported as handed to Device Defender, not as contained.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Final

from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from drill.emulator import Clients, Plumbing
from drill.observed import AuditMitigationTask, MitigationTask
from drill.scenario import (
    ACCOUNT_ID,
    AUDIT_MITIGATIONS,
    AUDIT_TASK_ID,
    MITIGATION_ACTION,
    NOTICE_TABLE,
    QUARANTINE_GROUP,
    REGION,
    Scenario,
)
from functions import aws_clients, intake, storm
from functions.contract import EnvVar, IntakeEnvironment
from functions.contract_mitigation import (
    AuditMitigationEnvironment,
    CheckActions,
    mitigation_task_id,
    render_mitigations,
)
from harness.environment import environment_set
from settings.facts import IOT_LOG_GROUP

FUNCTION_ARN_PREFIX: Final = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"

# Variables the drill sets or clears; everything else in the environment is left alone and all of these
# are restored afterwards, so an in-process run (the test) leaves no trace.
_CLEARED_ENV: Final = (
    "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_IOT_DATA", "AWS_ENDPOINT_URL_SSM_INCIDENTS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    EnvVar.IOT_DATA_ENDPOINT, EnvVar.RESPONSE_PLAN_ARN,
)


ENGINE_CONTAINMENT_RATE: Final = 10
"""Devices per second the intake contains one by one in a storm of the fleetguard engine's violations."""


def handler_environment(
    url: str, scenario: Scenario, plumbing: Plumbing, engine_profile_names: tuple[str, ...] = ()
) -> dict[str, str]:
    """The handlers' environment as the stack would set it, with Incident Manager off (the emulator has
    none), plus credentials and the emulator's endpoint. ``engine_profile_names``: the fleetguard Detect
    engine's profiles, when it is on."""
    contract = IntakeEnvironment(
        quarantine_group_name=QUARANTINE_GROUP,
        incident_manager_enabled=False,
        response_plan_arn=None,
        responders_topic_arn=plumbing.responders_topic_arn,
        impact_rules=json.dumps({"default": 3, "byConfidence": {"HIGH": 2, "MEDIUM": 3, "LOW": 4}}),
        audit_routing=json.dumps({"incidentChecks": ["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]}),
        iot_log_group=IOT_LOG_GROUP,
        storm_threshold=scenario.storm_threshold,
        add_to_quarantine_action_name=MITIGATION_ACTION,
        notice_ledger_table=NOTICE_TABLE,
        storm_window_seconds=0,
        retry_mode="standard",
        engine_profile_names=engine_profile_names,
        containment_rate=ENGINE_CONTAINMENT_RATE if engine_profile_names else None,
    )
    return {
        "AWS_ACCESS_KEY_ID": "drill",
        "AWS_SECRET_ACCESS_KEY": "drill",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url,
        **contract.to_environment(),
        # No check needs approval in the drill: the intake mitigates the mapped checks itself.
        **AuditMitigationEnvironment(render_mitigations({
            check: CheckActions(actions, approval_required=False) for check, actions in AUDIT_MITIGATIONS.items()
        })).to_environment(),
        EnvVar.POWERTOOLS_LOG_LEVEL.value: "INFO",
    }


@contextmanager
def handlers_pointed_at(url: str, environment: Mapping[str, str]) -> Iterator[None]:
    """Set the handlers' environment and point ``functions.aws_clients`` at the emulator; undo both."""
    original_data_endpoint = aws_clients.data_endpoint_url
    with environment_set(environment, cleared=_CLEARED_ENV):
        aws_clients.data_endpoint_url = lambda: url
        # Cached clients of an earlier run (or of tests) point elsewhere.
        aws_clients.client.cache_clear()
        aws_clients.iot_data.cache_clear()
        try:
            yield
        finally:
            aws_clients.client.cache_clear()
            aws_clients.iot_data.cache_clear()
            aws_clients.data_endpoint_url = original_data_endpoint


@contextmanager
def mitigation_stand_in(
    url: str, scenario: Scenario, requests: list[MitigationTask], audit_requests: list[AuditMitigationTask]
) -> Iterator[None]:
    """Answer the intake's StartDetectMitigationActionsTask and audit mitigation calls (the emulator has no
    Device Defender) with a Stubber that expects exactly the scenario's tasks, in the order the waves bring
    them (the audit arrives in the first wave, the storm in the last); every request is recorded in
    ``requests`` and ``audit_requests``."""
    alerts = scenario.alerts
    client = Clients.for_emulator(url).iot
    stubber = Stubber(client)
    for check in sorted(scenario.expectations.audit_mitigations):
        task_id = mitigation_task_id(AUDIT_TASK_ID, check)
        mapping = {check: list(AUDIT_MITIGATIONS[check])}
        stubber.add_response("start_audit_mitigation_actions_task", {"taskId": task_id}, expected_params={
            "taskId": task_id, "target": {"auditTaskId": AUDIT_TASK_ID}, "auditCheckToActionsMapping": mapping,
            "clientRequestToken": ANY,
        })
        described = {"taskStatus": "IN_PROGRESS", "target": {"auditTaskId": AUDIT_TASK_ID},
                     "auditCheckToActionsMapping": mapping}
        stubber.add_response("describe_audit_mitigation_actions_task", described, expected_params={"taskId": task_id})
    for labels in scenario.expectations.mitigation_tasks:
        violation_ids = sorted(json.loads(alerts[label].message)["violationId"] for label in labels)
        stubber.add_response(
            "start_detect_mitigation_actions_task",
            {"taskId": storm.task_id(violation_ids)},
            expected_params={
                # The intake's idempotency scheme is its own; the API bounds are checked afterwards.
                "taskId": ANY,
                "clientRequestToken": ANY,
                "target": {"violationIds": violation_ids},
                "actions": [MITIGATION_ACTION],
                "includeOnlyActiveViolations": False,
            },
        )

    def record(params: Mapping[str, Any], **_: Any) -> None:
        requests.append(MitigationTask(
            str(params.get("taskId")),
            tuple(params.get("target", {}).get("violationIds", ())),
            tuple(params.get("actions", ())),
        ))

    client.meta.events.register("before-parameter-build.iot.StartDetectMitigationActionsTask", record)

    def record_audit(params: Mapping[str, Any], **_: Any) -> None:
        audit_requests.append(AuditMitigationTask(
            str(params.get("taskId")),
            str(params.get("target", {}).get("auditTaskId")),
            {check: tuple(actions) for check, actions in params.get("auditCheckToActionsMapping", {}).items()},
        ))

    client.meta.events.register("before-parameter-build.iot.StartAuditMitigationActionsTask", record_audit)
    original = intake.CLIENTS
    intake.CLIENTS = replace(original, mitigation=lambda: client)
    try:
        with stubber:
            yield
    finally:
        intake.CLIENTS = original

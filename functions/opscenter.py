"""OpsCenter incidents: the Systems Manager requests that open, run, escalate and close them (pure).

With Incident Manager off (it is closed to new AWS customers), an in-alarm violation, an alert storm's
period and an audit task with incident checks each get an OpsItem instead of an incident record. The
OpsItem carries what the Incident Manager path puts on its incident: the device as a related resource
(``/aws/resources``), the violation and the Logs Insights links (operational data), and a deduplication
string (``/aws/dedup``) derived like the incident's client token, so a redelivered alert folds into the
open item. OpsCenter pages nobody, so the intake schedules each escalation stage with EventBridge
Scheduler (``escalation_schedule_requests``) and ``functions/escalation.py`` notifies the stage while
the item is still Open.

Everything here builds request parameters or reads answers; ``functions/ops_incidents.py`` makes the calls.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from functions.contract import OutputKey, RequestField
from functions.contract_opscenter import ESCALATION_STAGE_KEY, EscalationStage
from functions.incidents import (
    AccountScope,
    bounded_json,
    device_label,
    device_logs_url,
    epoch_ms_to_datetime,
    fit,
    iso_time,
    single_line,
)
from functions.messages import ViolationEvent, is_thing_name

OPS_ITEM_SOURCE: Final = "fleetguard"
MAX_TITLE: Final = 1024
MAX_DESCRIPTION: Final = 2048
MAX_DATA_VALUE: Final = 16_000
"""Bound on one operational data value (SSM allows 20 KB), with room for the JSON framing."""
RESOURCES_KEY: Final = "/aws/resources"
DEDUP_KEY: Final = "/aws/dedup"
AUTOMATIONS_KEY: Final = "/aws/automations"
VIOLATION_KEY: Final = "fleetguard:violation"
LOGS_KEY: Final = "fleetguard:logs"
AUDIT_KEY: Final = "fleetguard:audit"
CONTAINMENT_KEY: Final = "fleetguard:containment"
RESOLUTION_KEY: Final = "fleetguard:resolution"
SEARCHABLE: Final = "SearchableString"
PRIVATE: Final = "String"
AUTOMATION_TYPE: Final = "AWS::SSM::Automation"
OPEN: Final = "Open"
RESOLVED: Final = "Resolved"
ACKNOWLEDGED: Final = "InProgress"
CONTAINMENT_FAILED: Final = "FAILED"
"""The progress written to an OpsItem when a device could not be contained (the contain step then fails)."""
MIN_LEAD: Final = timedelta(minutes=1)
"""A stage's schedule is never set closer than this to now (a redelivery long after the item opened)."""
_AUTOMATION_TOKEN_NAMESPACE: Final = uuid.UUID("5b0c2d3e-7f3a-4b8e-9a61-0f1e6d2c4a17")
"""Fixed namespace for the runbook executions' client tokens (uuid5 of the item's dedup string)."""
THING_ARN_PATTERN: Final = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:thing/(?P<name>[a-zA-Z0-9:_-]{1,128})")


@dataclass(frozen=True)
class OpsItemStyle:
    """What every OpsItem of this stack carries besides its content."""

    category: str
    severity_by_impact: Mapping[int, str]
    responders_topic_arn: str
    tags: Mapping[str, str]


def _data(value: object, *, searchable: bool = False) -> dict[str, str]:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return {"Value": text, "Type": SEARCHABLE if searchable else PRIVATE}


def _ops_item(
    style: OpsItemStyle, *, title: str, description: str, impact: int, dedup: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "Title": fit(single_line(title), MAX_TITLE),
        "Description": fit(description, MAX_DESCRIPTION),
        "Source": OPS_ITEM_SOURCE,
        "Category": style.category,
        "Severity": style.severity_by_impact[impact],
        "Priority": impact,
        "Notifications": [{"Arn": style.responders_topic_arn}],
        "OperationalData": {DEDUP_KEY: _data({"dedupString": dedup}, searchable=True), **data},
        "Tags": [{"Key": key, "Value": value} for key, value in sorted(style.tags.items())],
    }


def violation_ops_item_request(
    violation: ViolationEvent, *, dedup: str, impact: int, style: OpsItemStyle, scope: AccountScope, log_group: str
) -> dict[str, Any]:
    """CreateOpsItem for one device's in-alarm violation. Only a name a thing can have becomes a related
    resource: a client id names no resource, and the runbook then finds no device to contain."""
    device = violation.thing_name
    behavior = violation.behavior
    event_time = epoch_ms_to_datetime(violation.event_time_ms)
    measured = json.dumps(dict(violation.metric_value)) if violation.metric_value else "none"
    logs_url = device_logs_url(scope, log_group, device, event_time)
    data: dict[str, Any] = {VIOLATION_KEY: _data(bounded_json(violation.raw, MAX_DATA_VALUE))}
    if is_thing_name(device):
        data[RESOURCES_KEY] = _data([{"arn": scope.thing_arn(device)}], searchable=True)
    if logs_url is not None:
        title = f"AWS IoT logs of the device around the alarm ({log_group})"
        data[LOGS_KEY] = _data([{"title": title, "url": logs_url}])
    lines = [
        f"**{device_label(device)}** raised a Device Defender alarm.",
        "",
        f"- Behavior: `{behavior.name}` ({behavior.kind}, metric `{behavior.metric or 'n/a'}`) of security "
        f"profile `{violation.security_profile_name}`",
        f"- Measured value: `{measured}`",
        f"- Alarm time: {iso_time(event_time)}",
        f"- Violation: `{violation.violation_id}`",
        "",
        "The runbook contains the device and records its progress here (operational data "
        f"`{CONTAINMENT_KEY}`). Set the status to In progress to acknowledge and stop the escalation.",
    ]
    if is_thing_name(device):
        lines.append(f"[The thing in the AWS IoT console]({scope.thing_console_url(device)})")
    return _ops_item(
        style,
        title=f"{device_label(device)} violated behavior {behavior.name} of security profile "
        f"{violation.security_profile_name}",
        description="\n".join(lines),
        impact=impact,
        dedup=dedup,
        data=data,
    )


def storm_ops_item_request(
    profile_name: str, behavior_name: str, period_start: datetime, summary: str,
    *, dedup: str, impact: int, style: OpsItemStyle, logs_url: str,
) -> dict[str, Any]:
    """CreateOpsItem for an alert storm: one per security profile, behavior and storm period (``dedup``)."""
    description = (
        f"Many IoT devices violated behavior `{behavior_name}` of security profile `{profile_name}` in the storm "
        f"period starting {iso_time(period_start)}; Device Defender mitigation tasks contain them in bulk.\n\n"
        f"First batch:\n\n{summary}"
    )
    return _ops_item(
        style,
        title=f"Alert storm: many IoT devices violated behavior {behavior_name} of security profile {profile_name}",
        description=description,
        impact=impact,
        dedup=dedup,
        data={LOGS_KEY: _data([{"title": "AWS IoT log events per device around the storm", "url": logs_url}])},
    )


def audit_ops_item_request(
    task_id: str, check_names: Sequence[str], raw: Mapping[str, Any], *, dedup: str, impact: int, style: OpsItemStyle
) -> dict[str, Any]:
    """CreateOpsItem for an audit task whose non-compliant checks include incident checks."""
    checks = "\n".join(f"- `{name}`" for name in check_names)
    return _ops_item(
        style,
        title=f"Device Defender audit {task_id}: {len(check_names)} critical check(s) non-compliant",
        description=f"Audit task `{task_id}` found non-compliant critical checks:\n\n{checks}\n\n"
        "List the findings with `aws iot list-audit-findings --task-id " + task_id + "`.",
        impact=impact,
        dedup=dedup,
        data={AUDIT_KEY: _data(bounded_json(raw, MAX_DATA_VALUE))},
    )


# --- the runbook -----------------------------------------------------------------------------------------


def automation_request(ops_item_id: str, dedup: str, *, runbook_name: str, role_arn: str) -> dict[str, Any]:
    """StartAutomationExecution of the runbook for the OpsItem; the client token (a UUID, as the API
    requires) derives from the item's dedup string, so a redelivery starts no second execution."""
    return {
        "DocumentName": runbook_name,
        "ClientToken": str(uuid.uuid5(_AUTOMATION_TOKEN_NAMESPACE, dedup)),
        "Parameters": {"OpsItemId": [ops_item_id], "AutomationAssumeRole": [role_arn]},
    }


def record_automation_request(ops_item_id: str, execution_id: str) -> dict[str, Any]:
    """UpdateOpsItem listing the runbook execution under the item's automations."""
    return {
        "OpsItemId": ops_item_id,
        "OperationalData": {
            AUTOMATIONS_KEY: _data([{"automationId": execution_id, "automationType": AUTOMATION_TYPE}], searchable=True)
        },
    }


def recorded_automation(ops_item: Mapping[str, Any]) -> str | None:
    """The runbook execution a GetOpsItem answer lists, if any."""
    value = ops_item.get("OperationalData", {}).get(AUTOMATIONS_KEY, {}).get("Value")
    try:
        entries = json.loads(value) if isinstance(value, str) else []
    except json.JSONDecodeError:
        return None
    ids = [entry.get("automationId") for entry in entries if isinstance(entry, dict)]
    return next((identifier for identifier in ids if isinstance(identifier, str)), None)


def thing_name_of(ops_item: Mapping[str, Any]) -> str | None:
    """The device an OpsItem (a GetOpsItem answer) is about: its ``/aws/resources`` thing, else the thing
    named in the violation it carries; None for an item about no registered thing (a storm, an audit)."""
    data = ops_item.get("OperationalData", {})
    for key, read in ((RESOURCES_KEY, _thing_from_resources), (VIOLATION_KEY, _thing_from_violation)):
        value = data.get(key, {}).get("Value")
        try:
            name = read(json.loads(value)) if isinstance(value, str) else None
        except json.JSONDecodeError:
            name = None
        if name is not None:
            return name
    return None


def _thing_from_resources(resources: object) -> str | None:
    for resource in resources if isinstance(resources, list) else []:
        match = THING_ARN_PATTERN.fullmatch(resource.get("arn", "")) if isinstance(resource, dict) else None
        if match:
            return match["name"]
    return None


def _thing_from_violation(violation: object) -> str | None:
    name = violation.get("thingName") if isinstance(violation, dict) else None
    return name if isinstance(name, str) and is_thing_name(name) else None


def progress_request(ops_item_id: str, status: str, thing_names: Sequence[str], at: datetime) -> dict[str, Any]:
    """UpdateOpsItem recording the runbook's containment progress."""
    return {
        "OpsItemId": ops_item_id,
        "OperationalData": {CONTAINMENT_KEY: _data({OutputKey.STATUS.value: status, "thingNames": list(thing_names),
                                                    "time": iso_time(at)})},
    }


def resolve_request(ops_item_id: str, thing_name: str, reason: str | None, at: datetime) -> dict[str, Any]:
    """UpdateOpsItem resolving the item once its device is released, with a note of the release."""
    note = {"thingName": thing_name, "reason": reason or "released from quarantine", "time": iso_time(at)}
    return {"OpsItemId": ops_item_id, "Status": RESOLVED, "OperationalData": {RESOLUTION_KEY: _data(note)}}


# --- escalation -----------------------------------------------------------------------------------------


def schedule_name(ops_item_id: str, stage: EscalationStage) -> str:
    """``<OpsItem id>-<stage>``: at most 48 characters of [0-9a-zA-Z-], within the scheduler's 64."""
    return f"{ops_item_id}-{stage.name}"


def escalation_schedule_requests(
    ops_item_id: str,
    stages: Sequence[EscalationStage],
    *,
    opened_at: datetime,
    now: datetime,
    group: str,
    function_arn: str,
    role_arn: str,
) -> list[dict[str, Any]]:
    """CreateSchedule per stage: a one-time schedule at ``opened_at`` + the stage's minutes (never sooner
    than MIN_LEAD from ``now``), deleted by the scheduler once it has run."""
    requests = []
    for stage in stages:
        due = max(opened_at + timedelta(minutes=stage.minutes), now + MIN_LEAD).replace(microsecond=0)
        requests.append({
            "Name": schedule_name(ops_item_id, stage),
            "GroupName": group,
            "ScheduleExpression": f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Description": fit(f"fleetguard: escalate OpsItem {ops_item_id} to {stage.name} if still open", 512),
            "Target": {
                "Arn": function_arn,
                "RoleArn": role_arn,
                "Input": json.dumps({RequestField.OPS_ITEM_ID.value: ops_item_id, ESCALATION_STAGE_KEY: stage.name}),
            },
        })
    return requests


def acknowledge_command(ops_item_id: str, region: str) -> str:
    """The one CLI line that acknowledges an OpsItem (and so stops its escalation)."""
    return f"aws ssm update-ops-item --ops-item-id {ops_item_id} --status {ACKNOWLEDGED} --region {region}"


def ops_item_console_url(scope: AccountScope, ops_item_id: str) -> str:
    return f"{scope.console}/systems-manager/opsitems/{ops_item_id}?region={scope.region}"


def escalation_message(ops_item: Mapping[str, Any], stage: EscalationStage, scope: AccountScope) -> tuple[str, str]:
    """(subject, message) telling a stage that an OpsItem is still unacknowledged."""
    ops_item_id = ops_item["OpsItemId"]
    created = ops_item.get("CreatedTime")
    opened = iso_time(created) if isinstance(created, datetime) else "unknown"
    message = "\n".join([
        f"Escalation stage {stage.name}: OpsItem {ops_item_id} has not been acknowledged {stage.minutes} minute(s) "
        "after it opened.",
        "",
        f"Title: {ops_item.get('Title', '')}",
        f"Priority: {ops_item.get('Priority', '?')}, severity: {ops_item.get('Severity', '?')}, opened: {opened}",
        f"Open it: {ops_item_console_url(scope, ops_item_id)}",
        "",
        "Acknowledge it (this stops the escalation) in the console, or with:",
        f"  {acknowledge_command(ops_item_id, scope.region)}",
    ])
    return f"fleetguard escalation ({stage.name}): OpsItem {ops_item_id} unacknowledged", message

"""Readable notifications for people, published to the responders topic (email, chat, SMS).

Used for audit findings routed to notification, and for every alarm when Incident Manager is off in the
environment (it is closed to new AWS customers): then these messages are how responders learn what the
intake did. Each says what happened, what was done and where to look.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from functions.aws_clients import Client
from functions.containment import ContainResult
from functions.incidents import (
    AccountScope,
    device_logs_query,
    epoch_ms_to_datetime,
    fit,
    iso_time,
    logs_insights_url,
    single_line,
)
from functions.messages import AuditCheckResult, AuditNotification, ViolationEvent, is_thing_name
from functions.storm import StormResponse

MAX_SUBJECT: Final = 99
"""SNS subjects must be under 100 characters, without line breaks or control characters."""


@dataclass(frozen=True)
class Notice:
    subject: str
    message: str


def publish(sns: Client, topic_arn: str, notice: Notice) -> str:
    """Publish the notice; returns the SNS message id."""
    message_id: str = sns.publish(
        TopicArn=topic_arn, Subject=fit(single_line(notice.subject), MAX_SUBJECT), Message=notice.message
    )["MessageId"]
    return message_id


def _violation_lines(violation: ViolationEvent) -> list[str]:
    metric = f" (metric {violation.behavior.metric})" if violation.behavior.metric else ""
    measured = json.dumps(dict(violation.metric_value), separators=(", ", ": ")) if violation.metric_value else "none"
    return [
        f"Behavior: {violation.behavior.name}{metric}, {violation.behavior.kind} behavior of security profile "
        f"{violation.security_profile_name}",
        f"Alarm time: {iso_time(epoch_ms_to_datetime(violation.event_time_ms))}",
        f"Measured value: {measured}",
        f"Violation id: {violation.violation_id}",
    ]


def device_contained_notice(
    violation: ViolationEvent,
    result: ContainResult | None,
    *,
    group_name: str,
    scope: AccountScope,
    log_group: str,
) -> Notice:
    """The device was contained (``result``) or could not be because it is not registered (None)."""
    device = violation.thing_name
    registrable = is_thing_name(device)
    if result is None:
        if registrable:
            subject = f"fleetguard: {device} in alarm but NOT contained (not registered)"
            outcome = [
                f"IoT device {device} raised a Device Defender alarm, but no thing of that name is registered in "
                f"AWS IoT, so it could not be added to the quarantine thing group {group_name}. Nothing was changed.",
                "Check whether the device connects with a client id that is not a registered thing name.",
            ]
        else:
            subject = f"fleetguard: MQTT client {device!r} in alarm, NOT contained (not a thing)"
            outcome = [
                f"Device Defender raised an alarm for a device it names by its MQTT client id, {device!r}. No "
                f"thing can have that name, so the device could not be added to the quarantine thing group "
                f"{group_name}. Nothing was changed.",
                "Find the certificate it connects with (the client id and source IP are in the AWS IoT logs) and "
                "deactivate it, or revoke what its certificate policy allows.",
            ]
    else:
        subject = f"fleetguard: {device} contained ({violation.behavior.name})"
        outcome = [
            f"IoT device {device} is in the quarantine thing group {result.group_name}; its shadow's "
            f"desired state now holds quarantine=true (shadow version {result.shadow_version}).",
            f'To release it after investigation, invoke the release function with {{"thingName": "{device}"}}.',
        ]
    links = []
    if registrable:
        links.append(f"Thing in the AWS IoT console: {scope.thing_console_url(device)}")
    query = device_logs_query(device)
    if query is not None:
        logs_url = logs_insights_url(scope, log_group, query, epoch_ms_to_datetime(violation.event_time_ms))
        links.append(f"Its AWS IoT logs around the alarm: {logs_url}")
    message = [
        *outcome,
        "",
        *_violation_lines(violation),
        "",
        *links,
        *([""] if links else []),
        "Incident Manager is not enabled in this environment, so no incident was opened.",
    ]
    return Notice(subject, "\n".join(message))


def storm_notice(response: StormResponse, *, group_name: str) -> Notice:
    """One notification for one batch of an alert storm (Incident Manager off)."""
    subject = (
        f"fleetguard: alert storm, {len(response.thing_names)} devices, {response.key.behavior_name} "
        f"({response.key.security_profile_name})"
    )
    message = [
        response.summary(group_name),
        "",
        "Incident Manager is not enabled in this environment, so no incident was opened. The Device Defender "
        "console lists every active violation of the security profile.",
    ]
    return Notice(subject, "\n".join(message))


def audit_notice(
    notification: AuditNotification,
    checks: Sequence[AuditCheckResult],
    *,
    incident_record_arn: str | None,
    mitigation: Sequence[str] = (),
) -> Notice:
    """Non-compliant audit checks routed to people (and, if one was opened, the incident for the others);
    ``mitigation``: what was done about them, when no incident records it."""
    scheduled = f" (scheduled audit {notification.scheduled_audit_name})" if notification.scheduled_audit_name else ""
    lines = [
        f"Device Defender audit task {notification.task_id}{scheduled}, started "
        f"{iso_time(epoch_ms_to_datetime(notification.task_start_time_ms))}, ended {notification.task_status}: "
        f"{len(checks)} non-compliant check(s) for your attention.",
        "",
    ]
    for check in checks:
        suppressed = (
            f", {check.suppressed_non_compliant_resources_count} suppressed"
            if check.suppressed_non_compliant_resources_count
            else ""
        )
        lines.append(
            f"- {check.check_name}: {check.non_compliant_resources_count} of {check.total_resources_count} "
            f"resource(s) non-compliant{suppressed}"
        )
        lines.append(
            f"  findings: aws iot list-audit-findings --task-id {notification.task_id} --check-name {check.check_name}"
        )
    if incident_record_arn is not None:
        lines += ["", f"Critical checks of this audit opened incident {incident_record_arn}."]
    if mitigation:
        lines += ["", *mitigation]
    subject = f"fleetguard: audit {notification.task_id}: {len(checks)} non-compliant check(s)"
    return Notice(subject, "\n".join(lines))

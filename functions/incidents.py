"""The Incident Manager requests the intake sends, built as keyword arguments for the boto3 client.

Field names and limits follow the ``ssm-incidents`` botocore model (StartIncident, UpdateRelatedItems,
CreateTimelineEvent). Idempotency: each request carries a clientToken derived from what identifies the
incident (a violation id, an alert storm, an audit task), never from an event time, which many devices
share. Incident Manager returns the same incident for a repeated token, so a redelivered message starts
no second incident; the request for a given token is always built identically.

The contain function (run by the response plan's runbook with only the incident record ARN) finds the
devices to contain in the incident's INVOLVED_RESOURCE related items whose value is a thing ARN.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from functions.messages import AuditCheckResult, AuditNotification, ViolationEvent, is_thing_name

INCIDENT_SOURCE: Final = "fleetguard.device-defender"
"""TriggerDetails.source: at most 50 characters; sources beginning with "aws." are reserved for AWS."""
MAX_TITLE: Final = 200
MAX_RAW_DATA: Final = 10_000
MAX_TIMELINE_EVENT_DATA: Final = 12_000
MAX_URL: Final = 1000
"""ItemValue.url: at most 1,000 characters."""
LOGS_INSIGHTS_MARGIN: Final = timedelta(hours=1)
"""The Logs Insights links cover this long before and after the alarm."""
INVOLVED_RESOURCE: Final = "INVOLVED_RESOURCE"
OTHER: Final = "OTHER"
TIMELINE_EVENT_TYPE: Final = "Custom Event"

FUNCTION_ARN_PATTERN: Final = re.compile(
    r"arn:(?P<partition>aws(-cn|-us-gov)?):lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):function:.+"
)
_CONSOLE_DOMAINS: Final[Mapping[str, str]] = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


@dataclass(frozen=True)
class AccountScope:
    """Partition, region and account of the running function: what ARNs and console links need."""

    partition: str
    region: str
    account_id: str

    @classmethod
    def from_function_arn(cls, function_arn: str) -> AccountScope:
        match = FUNCTION_ARN_PATTERN.fullmatch(function_arn or "")
        if match is None:
            raise ValueError(
                f"context.invoked_function_arn: expected a Lambda function ARN, got {function_arn!r}"
            )
        return cls(match["partition"], match["region"], match["account"])

    def thing_arn(self, thing_name: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account_id}:thing/{thing_name}"

    def security_profile_arn(self, profile_name: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account_id}:securityprofile/{profile_name}"

    @property
    def console(self) -> str:
        return f"https://{self.region}.{_CONSOLE_DOMAINS[self.partition]}"

    def thing_console_url(self, thing_name: str) -> str:
        return f"{self.console}/iot/home?region={self.region}#/thing/{quote(thing_name, safe='')}"


def device_label(device_name: str) -> str:
    """How texts for people name a device: a thing, or an MQTT client id no thing can have."""
    if is_thing_name(device_name):
        return f"IoT device {device_name}"
    return f"MQTT client {device_name!r} (not a registered thing)"


def digest(*parts: str) -> str:
    """A SHA-256 hex digest of the parts (64 characters, [0-9a-f]): stable, collision-free in practice."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def violation_incident_token(violation_id: str) -> str:
    return f"violation-{digest(violation_id)}"


def storm_incident_token(profile_name: str, behavior_name: str, period_start: datetime) -> str:
    return f"storm-{digest(profile_name, behavior_name, period_start.isoformat())}"


def audit_incident_token(task_id: str) -> str:
    return f"audit-{digest(task_id)}"


# --- requests ------------------------------------------------------------------------------------------


def violation_incident_request(
    violation: ViolationEvent, *, response_plan_arn: str, impact: int, scope: AccountScope, log_group: str
) -> dict[str, Any]:
    """StartIncident for one device's in-alarm violation.

    A device named by a client id no thing can have gets no thing ARN and no console link: there is no
    such thing, and the runbook's contain step, finding no thing among the related items, changes nothing.
    """
    device = violation.thing_name
    profile = violation.security_profile_name
    behavior = violation.behavior.name
    event_time = epoch_ms_to_datetime(violation.event_time_ms)
    related_items: list[dict[str, Any]] = []
    if is_thing_name(device):
        related_items.append(device_related_item(scope, device))
    related_items.append({
        "identifier": {"type": INVOLVED_RESOURCE, "value": {"arn": scope.security_profile_arn(profile)}},
        "title": fit(f"Security profile {profile}", MAX_TITLE),
    })
    if is_thing_name(device):
        related_items.append({
            "identifier": {"type": OTHER, "value": {"url": scope.thing_console_url(device)}},
            "title": fit(f"Thing {device} in the AWS IoT console", MAX_TITLE),
        })
    logs_url = device_logs_url(scope, log_group, device, event_time)
    if logs_url is not None:
        related_items.append({
            "identifier": {"type": OTHER, "value": {"url": logs_url}},
            "title": fit(
                f"AWS IoT logs of {single_line(device)} around the alarm (Logs Insights, {log_group})", MAX_TITLE
            ),
        })
    return {
        "responsePlanArn": response_plan_arn,
        "clientToken": violation_incident_token(violation.violation_id),
        "title": fit(
            f"{single_line(device_label(device))} violated behavior {behavior} of security profile {profile}",
            MAX_TITLE,
        ),
        "impact": impact,
        "relatedItems": related_items,
        "triggerDetails": {
            "source": INCIDENT_SOURCE,
            "timestamp": event_time,
            "rawData": bounded_json(violation.raw, MAX_RAW_DATA),
        },
    }


def storm_incident_request(
    profile_name: str,
    behavior_name: str,
    period_start: datetime,
    *,
    response_plan_arn: str,
    impact: int,
    scope: AccountScope,
    log_group: str,
) -> dict[str, Any]:
    """StartIncident for an alert storm: one incident per security profile, behavior and storm period.

    Every batch of the same storm sends this identical request (it depends only on the token's inputs),
    so the token folds them into one incident whatever Incident Manager does with a repeated token
    carrying different details. The affected devices are added afterwards (UpdateRelatedItems).
    """
    return {
        "responsePlanArn": response_plan_arn,
        "clientToken": storm_incident_token(profile_name, behavior_name, period_start),
        "title": fit(
            f"Alert storm: many IoT devices violated behavior {behavior_name} of security profile {profile_name}",
            MAX_TITLE,
        ),
        "impact": impact,
        "relatedItems": [
            {
                "identifier": {"type": INVOLVED_RESOURCE, "value": {"arn": scope.security_profile_arn(profile_name)}},
                "title": fit(f"Security profile {profile_name}", MAX_TITLE),
            },
            {
                "identifier": {
                    "type": OTHER,
                    "value": {"url": logs_insights_url(scope, log_group, FLEET_LOGS_QUERY, period_start)},
                },
                "title": fit(f"AWS IoT log events per device around the storm (Logs Insights, {log_group})", MAX_TITLE),
            },
        ],
        "triggerDetails": {
            "source": INCIDENT_SOURCE,
            "timestamp": period_start,
            "rawData": json.dumps(
                {
                    "kind": "alert-storm",
                    "securityProfileName": profile_name,
                    "behaviorName": behavior_name,
                    "periodStart": iso_time(period_start),
                },
                separators=(",", ":"),
            ),
        },
    }


def add_device_request(scope: AccountScope, incident_record_arn: str, thing_name: str) -> dict[str, Any]:
    """UpdateRelatedItems adding one device to an incident (idempotent per incident and device)."""
    return {
        "incidentRecordArn": incident_record_arn,
        "clientToken": f"device-{digest(incident_record_arn, thing_name)}",
        "relatedItemsUpdate": {"itemToAdd": device_related_item(scope, thing_name)},
    }


def timeline_note_request(
    incident_record_arn: str, text: str, event_time: datetime, identity: Sequence[str]
) -> dict[str, Any]:
    """CreateTimelineEvent with a readable note; ``identity`` names what the note is about (idempotency)."""
    return {
        "incidentRecordArn": incident_record_arn,
        "clientToken": f"note-{digest(incident_record_arn, *identity)}",
        "eventTime": event_time,
        "eventType": TIMELINE_EVENT_TYPE,
        "eventData": fit(text, MAX_TIMELINE_EVENT_DATA),
    }


def audit_incident_request(
    notification: AuditNotification,
    checks: Sequence[AuditCheckResult],
    *,
    response_plan_arn: str,
    impact: int,
) -> dict[str, Any]:
    """StartIncident for an audit whose non-compliant checks include ones routed to incidents."""
    names = ", ".join(check.check_name for check in checks)
    return {
        "responsePlanArn": response_plan_arn,
        "clientToken": audit_incident_token(notification.task_id),
        "title": fit(
            f"Device Defender audit {notification.task_id}: {len(checks)} critical check(s) non-compliant: {names}",
            MAX_TITLE,
        ),
        "impact": impact,
        "triggerDetails": {
            "source": INCIDENT_SOURCE,
            "timestamp": epoch_ms_to_datetime(notification.task_start_time_ms),
            "rawData": bounded_json(notification.raw, MAX_RAW_DATA),
        },
    }


def device_related_item(scope: AccountScope, thing_name: str) -> dict[str, Any]:
    """The thing as an INVOLVED_RESOURCE: the contain function reads the devices of an incident from these.
    Only for names a thing can have (``is_thing_name``)."""
    return {
        "identifier": {"type": INVOLVED_RESOURCE, "value": {"arn": scope.thing_arn(thing_name)}},
        "title": fit(f"IoT thing {thing_name}", MAX_TITLE),
    }


# --- CloudWatch Logs Insights links ------------------------------------------------------------------

FLEET_LOGS_QUERY: Final = (
    "stats count(*) as events by clientId, eventType, status\n| sort events desc\n| limit 200"
)


def device_logs_query(device_name: str) -> str | None:
    """The device's AWS IoT v2 log entries, by client id or thing name; None when the name cannot be
    written as a query string literal (see ``_query_literal``)."""
    # AWS IoT v2 log entries name the MQTT client id (by convention the thing name) and, for some
    # events, the thing name itself.
    literal = _query_literal(device_name)
    if literal is None:
        return None
    return (
        "fields @timestamp, eventType, status, reason, topicName, sourceIp, clientId\n"
        f"| filter clientId = {literal} or thingName = {literal}\n"
        "| sort @timestamp desc\n"
        "| limit 500"
    )


def compact_device_logs_query(device_name: str) -> str | None:
    """The device's log entries by client id only: a shorter link for long names."""
    literal = _query_literal(device_name)
    if literal is None:
        return None
    return f"filter clientId = {literal}\n| sort @timestamp desc\n| limit 500"


def _query_literal(text: str) -> str | None:
    """``text`` as a Logs Insights string literal, in whichever quote it does not contain; None for text
    holding both quotes or a control character. Thing names never do, but a client id may, and guessing
    the query language's escapes could link responders to a query that silently matches nothing."""
    if any(unicodedata.category(character) == "Cc" for character in text):
        return None
    for quote_mark in ('"', "'"):
        if quote_mark not in text:
            return f"{quote_mark}{text}{quote_mark}"
    return None


def device_logs_url(scope: AccountScope, log_group: str, device_name: str, around: datetime) -> str | None:
    """A Logs Insights link to the device's logs that fits a related item's URL (at most MAX_URL
    characters): the full query, else the client-id-only one; None when neither fits (a very long log
    group name, a long client id of non-ASCII characters) or the name cannot be queried, so the incident
    still opens, without that link."""
    for query in (device_logs_query(device_name), compact_device_logs_query(device_name)):
        if query is None:
            return None
        url = logs_insights_url(scope, log_group, query, around)
        if len(url) <= MAX_URL:
            return url
    return None


def logs_insights_url(scope: AccountScope, log_group: str, query: str, around: datetime) -> str:
    """A CloudWatch console link that opens Logs Insights with ``query`` on ``log_group`` over a fixed
    window around ``around``.

    The console reads the query from the URL fragment in its own encoding: values percent-encoded with
    ``*`` in place of ``%`` inside ``~(key~'value...)`` structures, and the whole detail percent-encoded
    again with ``$`` in place of ``%``.
    """
    start = iso_time(around - LOGS_INSIGHTS_MARGIN)
    end = iso_time(around + LOGS_INSIGHTS_MARGIN)
    detail = (
        f"~(end~'{_console_value(end)}~start~'{_console_value(start)}~timeType~'ABSOLUTE~tz~'UTC"
        f"~editorString~'{_console_value(query)}~source~(~'{_console_value(log_group)}))"
    )
    fragment = quote(f"?queryDetail={detail}", safe="~()'*").replace("%", "$")
    return f"{scope.console}/cloudwatch/home?region={scope.region}#logsV2:logs-insights{fragment}"


def _console_value(text: str) -> str:
    # "~" is unreserved for quote() but is the console's separator, so it is escaped too.
    return quote(text, safe="").replace("~", "%7E").replace("%", "*")


# --- formatting ----------------------------------------------------------------------------------------


def epoch_ms_to_datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_LINE_BREAKING: Final = frozenset({"Cc", "Zl", "Zp"})
"""Unicode categories of control characters and of the line and paragraph separators."""


def single_line(text: str) -> str:
    """``text`` with control characters (line breaks among them) shown as "?": a client id may hold them,
    and titles and subjects are single lines."""
    return "".join("?" if unicodedata.category(character) in _LINE_BREAKING else character for character in text)


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with "..." when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_json(message: Mapping[str, Any], limit: int) -> str:
    """Compact JSON of ``message`` within ``limit`` characters, always valid JSON.

    A message too long (a metric value or criteria with thousands of CIDRs) loses its largest members
    first, each replaced by a note of its size, so identifiers and the event type survive.
    """
    kept = dict(message)
    text = json.dumps(kept, separators=(",", ":"), default=str)
    while len(text) > limit and kept:
        largest = max(kept, key=lambda key: len(json.dumps(kept[key], default=str)))
        if isinstance(kept[largest], str) and kept[largest].startswith("omitted:"):
            break
        kept[largest] = f"omitted: {len(json.dumps(kept[largest], default=str))} characters"
        text = json.dumps(kept, separators=(",", ":"), default=str)
    return text if len(text) <= limit else json.dumps({"omitted": f"{len(text)} characters"})

"""``fleetguard:incidentResponse.opsCenter``: incidents as Systems Manager OpsCenter OpsItems, escalated by
EventBridge Scheduler, for accounts that cannot onboard Incident Manager (closed to new customers).

OpsCenter pages nobody and escalates nothing by itself, so the stack adds both: each escalation stage is a
time after the OpsItem opens and a topic to notify then, unless a responder has acknowledged the item by
moving it out of Open. Limits come from the botocore models of ssm (CreateOpsItem) and scheduler
(CreateSchedule: a schedule name is ``<OpsItem id>-<stage name>``) and the CloudFormation schemas of
AWS::Chatbot::SlackChannelConfiguration and MicrosoftTeamsChannelConfiguration.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from settings.contacts import EMAIL_PATTERN, PHONE_PATTERN
from settings.reader import Node

CATEGORIES: Final = ("Availability", "Cost", "Performance", "Recovery", "Security")
"""The OpsItem categories OpsCenter lists (the ssm model only bounds the length: 1-64 characters)."""
SEVERITIES: Final = ("1", "2", "3", "4")
"""OpsItem severities OpsCenter lists: 1 critical ... 4 low."""
IMPACTS: Final = ("1", "2", "3", "4", "5")
"""Incident impacts the impact rules give (1 critical ... 5 no impact); an OpsItem's Priority is the impact."""
DEFAULT_SEVERITY_BY_IMPACT: Final[dict[str, str]] = {"1": "1", "2": "2", "3": "3", "4": "4", "5": "4"}
MAX_STAGES: Final = 5
STAGE_MINUTES_RANGE: Final = (1, 1440)
"""A stage notifies between a minute and a day after the OpsItem opens."""
STAGE_NAME_PATTERN: Final = r"[a-zA-Z0-9-]{1,32}"
"""A schedule is named ``<OpsItem id>-<stage>``: the OpsItem id (``oi-`` and 12 hex digits, 15 characters),
a dash and the stage stay within the scheduler's 64 characters of ``[0-9a-zA-Z-_.]``."""
TOPIC_ARN_PATTERN: Final = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}"
SLACK_WORKSPACE_PATTERN: Final = r"[0-9A-Z]{1,255}"
SLACK_CHANNEL_PATTERN: Final = r"[A-Za-z0-9]{1,256}"
TEAMS_UUID_PATTERN: Final = r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
"""Microsoft Teams team and tenant ids."""
TEAMS_CHANNEL_PATTERN: Final = r"([a-zA-Z0-9-_=+/.,])*%3[aA]([a-zA-Z0-9-_=+/.,])*%40([a-zA-Z0-9-_=+/.,])*"
"""A Teams channel id as the channel's link carries it (URL-encoded ``19:...@thread.tacv2``)."""


@dataclass(frozen=True)
class StageTarget:
    """Where a stage notifies: an existing topic, or a topic this stack creates with these subscriptions."""

    topic_arn: str | None
    emails: tuple[str, ...] = ()
    phone_numbers: tuple[str, ...] = ()
    """SMS subscriptions (E.164)."""


@dataclass(frozen=True)
class OpsEscalationStage:
    """Minutes after the OpsItem opens, this stage is notified unless someone has acknowledged it."""

    name: str
    minutes: int
    target: StageTarget


@dataclass(frozen=True)
class SlackChannel:
    workspace_id: str
    channel_id: str


@dataclass(frozen=True)
class TeamsChannel:
    team_id: str
    channel_id: str
    tenant_id: str


@dataclass(frozen=True)
class ChatSettings:
    """Amazon Q Developer in chat applications relaying the responders topic to one channel."""

    enabled: bool
    slack: SlackChannel | None
    teams: TeamsChannel | None


@dataclass(frozen=True)
class OpsCenterSettings:
    """OpsItems per incident, their severity, and the escalation that stands in for paging."""

    enabled: bool
    category: str
    severity_by_impact: dict[str, str]
    """Impact "1".."5" -> OpsItem severity "1".."4"."""
    escalation: tuple[OpsEscalationStage, ...]
    """In notification order (strictly increasing minutes)."""
    chat: ChatSettings


def parse_ops_center(node: Node, *, incident_manager_enabled: bool) -> OpsCenterSettings:
    """On by default exactly when Incident Manager is off; with Incident Manager on it must stay off, as
    the response plan already opens one record per incident."""
    section = node.mapping(allowed_keys=("enabled", "category", "severityByImpact", "escalation", "chat"))
    enabled_node = section.child("enabled")
    enabled = enabled_node.boolean(not incident_manager_enabled)
    if enabled and incident_manager_enabled:
        enabled_node.fail("OpsCenter incidents replace Incident Manager; expected false (or unset) while "
                          "incidentManager.enabled is true")
    return OpsCenterSettings(
        enabled=enabled and not incident_manager_enabled,
        category=section.child("category").string("Security", allowed=CATEGORIES) or "Security",
        severity_by_impact=_parse_severities(section.child("severityByImpact")),
        escalation=_parse_escalation(section.child("escalation")),
        chat=_parse_chat(section.child("chat")),
    )


def _parse_severities(node: Node) -> dict[str, str]:
    severities = dict(DEFAULT_SEVERITY_BY_IMPACT)
    section = node.mapping(allowed_keys=IMPACTS)
    for impact in IMPACTS:
        severity = section.child(impact).string(DEFAULT_SEVERITY_BY_IMPACT[impact], allowed=SEVERITIES)
        if severity is not None:
            severities[impact] = severity
    return severities


def _parse_escalation(node: Node) -> tuple[OpsEscalationStage, ...]:
    elements = node.elements()
    if len(elements) > MAX_STAGES:
        node.fail(f"expected at most {MAX_STAGES} stages")
    stages = tuple(stage for stage in (_parse_stage(element) for element in elements) if stage is not None)
    node.fail_duplicates([stage.name for stage in stages], "stage name")
    for earlier, later in pairwise(elements):
        before, after = earlier.child("minutes").value, later.child("minutes").value
        if isinstance(before, int) and isinstance(after, int) and after <= before:
            later.child("minutes").fail(f"stages are ordered by time; expected more than the previous stage's {before}")
    return stages


def _parse_stage(node: Node) -> OpsEscalationStage | None:
    item = node.mapping(allowed_keys=("name", "minutes", "notify"))
    name = item.child("name").required_string(pattern=STAGE_NAME_PATTERN)
    low, high = STAGE_MINUTES_RANGE
    minutes = item.child("minutes").required_integer(minimum=low, maximum=high)
    target = _parse_target(item.child("notify"))
    if not (name and low <= minutes <= high and target):
        return None
    return OpsEscalationStage(name, minutes, target)


def _parse_target(node: Node) -> StageTarget | None:
    notify = node.mapping(allowed_keys=("topicArn", "email", "sms"))
    topic_node, email_node, sms_node = notify.child("topicArn"), notify.child("email"), notify.child("sms")
    topic = topic_node.string(pattern=TOPIC_ARN_PATTERN)
    emails = tuple(email_node.string_list(pattern=EMAIL_PATTERN))
    phones = tuple(sms_node.string_list(pattern=PHONE_PATTERN))
    email_node.fail_duplicates(emails, "email address")
    sms_node.fail_duplicates(phones, "phone number")
    if not topic_node.missing and (emails or phones):
        topic_node.fail("a stage notifies either an existing topic or the email/sms subscriptions of a topic the "
                        "stack creates; expected topicArn alone")
        return None
    if topic is not None:
        return StageTarget(topic)
    if emails or phones:
        return StageTarget(None, emails, phones)
    if topic_node.missing and email_node.missing and sms_node.missing:
        notify.fail("expected topicArn (an existing SNS topic) or email and/or sms addresses")
    return None


def _parse_chat(node: Node) -> ChatSettings:
    section = node.mapping(allowed_keys=("enabled", "slack", "teams"))
    enabled = section.child("enabled").boolean(False)
    slack_node, teams_node = section.child("slack"), section.child("teams")
    slack = None if slack_node.missing else _parse_slack(slack_node)
    teams = None if teams_node.missing else _parse_teams(teams_node)
    if enabled and slack_node.missing == teams_node.missing:
        section.child("enabled").fail("a chat channel is one Slack channel or one Microsoft Teams channel; "
                                      "expected exactly one of slack, teams")
    return ChatSettings(enabled=enabled, slack=slack, teams=teams)


def _parse_slack(node: Node) -> SlackChannel | None:
    item = node.mapping(allowed_keys=("workspaceId", "channelId"))
    workspace = item.child("workspaceId").required_string(pattern=SLACK_WORKSPACE_PATTERN)
    channel = item.child("channelId").required_string(pattern=SLACK_CHANNEL_PATTERN)
    return SlackChannel(workspace, channel) if workspace and channel else None


def _parse_teams(node: Node) -> TeamsChannel | None:
    item = node.mapping(allowed_keys=("teamId", "channelId", "tenantId"))
    team = item.child("teamId").required_string(pattern=TEAMS_UUID_PATTERN)
    channel = item.child("channelId").required_string(pattern=TEAMS_CHANNEL_PATTERN)
    tenant = item.child("tenantId").required_string(pattern=TEAMS_UUID_PATTERN)
    return TeamsChannel(team, channel, tenant) if team and channel and tenant else None


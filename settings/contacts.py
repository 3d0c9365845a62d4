"""``fleetguard:incidentResponse.incidentManager.contacts`` and ``.escalation``: the people Incident Manager
pages (SSM Contacts personal contacts, their channels and engagement plans) and the escalation plan that
chains them. Limits come from the botocore model of ssm-contacts (2021-05-03) and the CloudFormation
schemas of its resources, where they are stricter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from settings.reader import Node

CHANNEL_TYPES: Final = ("EMAIL", "SMS", "VOICE")
STAGE_MINUTES_RANGE: Final = (0, 30)
"""ssm-contacts StageDurationInMins."""
RETRY_MINUTES_RANGE: Final = (0, 60)
"""ssm-contacts RetryIntervalInMinutes."""
CONTACT_ALIAS_PATTERN: Final = r"[a-z0-9_-]{1,255}"
# botocore allows letters, spaces, digits, _ . -; CloudFormation's schema no dot: the intersection.
DISPLAY_NAME_PATTERN: Final = r"[A-Za-z0-9_ -]{1,255}"
CHANNEL_NAME_PATTERN: Final = r"[A-Za-z0-9_ .-]{1,255}"
EMAIL_PATTERN: Final = r"[^@\s]+@[^@\s]+\.[^@\s]+"
PHONE_PATTERN: Final = r"\+[1-9][0-9]{6,14}"
"""E.164: '+', country code and number, as SMS and VOICE channels require."""


@dataclass(frozen=True)
class ContactChannel:
    """One way to reach a person."""

    name: str
    type: str
    """EMAIL, SMS or VOICE."""
    address: str


@dataclass(frozen=True)
class EngagementStage:
    """One stage of a person's engagement plan: which of their channels, then how long to wait."""

    duration_minutes: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class PersonalContact:
    """A responder Incident Manager can page."""

    alias: str
    display_name: str
    channels: tuple[ContactChannel, ...]
    engagement_plan: tuple[EngagementStage, ...]
    retry_interval_minutes: int
    """Minutes before a failed engagement of a channel is retried."""


@dataclass(frozen=True)
class EscalationStage:
    """Contacts engaged together; if none acknowledges within ``minutes``, the next stage starts."""

    contacts: tuple[str, ...]
    minutes: int


@dataclass(frozen=True)
class EscalationPlan:
    """An escalation plan (an SSM contact of type ESCALATION) chaining personal contacts."""

    alias: str
    display_name: str
    stages: tuple[EscalationStage, ...]


def parse_contacts(node: Node) -> tuple[PersonalContact, ...]:
    """The personal contacts, each alias once."""
    contacts = tuple(node.each(_parse_contact))
    node.fail_duplicates([contact.alias for contact in contacts], "contact alias")
    return contacts


def parse_escalation(node: Node, contacts: tuple[PersonalContact, ...]) -> EscalationPlan | None:
    """The escalation plan over ``contacts``; ``None`` when the stack configures none."""
    return None if node.missing else _parse_escalation_plan(node, contacts)


def _parse_contact(node: Node) -> PersonalContact | None:
    item = node.mapping(allowed_keys=("alias", "displayName", "channels", "engagementPlan",
                                      "retryIntervalMinutes"))
    alias = item.child("alias").required_string(pattern=CONTACT_ALIAS_PATTERN)
    display_name = item.child("displayName").required_string(pattern=DISPLAY_NAME_PATTERN)
    channels_node = item.child("channels")
    channels = tuple(channels_node.each(_parse_channel))
    if channels_node.missing or channels_node.value == []:
        channels_node.fail("expected at least one contact channel (EMAIL, SMS or VOICE)")
    names = [channel.name for channel in channels]
    channels_node.fail_duplicates(names, "channel name")
    plan_node = item.child("engagementPlan")
    plan: tuple[EngagementStage, ...]
    if plan_node.missing:
        # Default: every channel at once; a stage that has targets may last 0 minutes.
        plan = (EngagementStage(0, tuple(names)),) if names else ()
    else:
        plan = tuple(plan_node.each(lambda stage: _parse_engagement_stage(stage, names)))
        if plan_node.value == []:
            plan_node.fail("expected at least one stage")
    low, high = RETRY_MINUTES_RANGE
    retry = item.child("retryIntervalMinutes").bounded_integer(1, low, high)
    if not (alias and display_name and channels and plan):
        return None
    return PersonalContact(alias, display_name, channels, plan, retry)


def _parse_channel(node: Node) -> ContactChannel | None:
    item = node.mapping(allowed_keys=("name", "type", "address"))
    name = item.child("name").required_string(pattern=CHANNEL_NAME_PATTERN)
    kind = item.child("type").required_string(allowed=CHANNEL_TYPES)
    address_node = item.child("address")
    address = address_node.required_string()
    if kind == "EMAIL" and address and not re.fullmatch(EMAIL_PATTERN, address):
        address_node.fail("expected an email address")
        address = ""
    elif kind in ("SMS", "VOICE") and address and not re.fullmatch(PHONE_PATTERN, address):
        address_node.fail(f"{kind} needs an E.164 phone number: '+', country code and number")
        address = ""
    if not (name and kind and address):
        return None
    return ContactChannel(name, kind, address)


def _parse_engagement_stage(node: Node, channel_names: list[str]) -> EngagementStage | None:
    item = node.mapping(allowed_keys=("durationMinutes", "channels"))
    low, high = STAGE_MINUTES_RANGE
    duration = item.child("durationMinutes").required_integer(minimum=low, maximum=high)
    channels = _references(item.child("channels"), channel_names, "channel name",
                           f"one of this contact's channels ({', '.join(channel_names)})")
    return None if channels is None else EngagementStage(duration, channels)


def _parse_escalation_plan(node: Node, contacts: tuple[PersonalContact, ...]) -> EscalationPlan | None:
    item = node.mapping(allowed_keys=("alias", "displayName", "stages"))
    alias = item.child("alias").required_string(pattern=CONTACT_ALIAS_PATTERN)
    aliases = [contact.alias for contact in contacts]
    if alias in aliases:
        item.child("alias").fail("contact aliases are unique per account; the escalation plan needs its own")
    display_name = item.child("displayName").required_string(pattern=DISPLAY_NAME_PATTERN)
    stages_node = item.child("stages")
    elements = stages_node.elements()
    parsed = [_parse_escalation_stage(stage, aliases) for stage in elements]
    stages = tuple(stage for stage in parsed if stage is not None)
    if stages_node.missing or stages_node.value == []:
        stages_node.fail("expected at least one stage")
    if not (alias and display_name and stages) or len(stages) != len(elements):
        return None
    return EscalationPlan(alias, display_name, stages)


def _parse_escalation_stage(node: Node, aliases: list[str]) -> EscalationStage | None:
    item = node.mapping(allowed_keys=("contacts", "minutes"))
    low, high = STAGE_MINUTES_RANGE
    minutes = item.child("minutes").required_integer(minimum=low, maximum=high)
    stage_contacts = _references(item.child("contacts"), aliases, "contact alias",
                                 f"a configured contact alias ({', '.join(aliases) or 'none'})")
    return None if stage_contacts is None else EscalationStage(stage_contacts, minutes)


def _references(node: Node, known: list[str], what: str, known_as: str) -> tuple[str, ...] | None:
    """A stage's non-empty list of names, each one of ``known`` (``known_as`` describes them in the
    problem); ``None`` when the list is empty or names anything else."""
    names = node.string_list()
    unknown = [name for name in names if name not in known]
    for name in unknown:
        node.fail(f"{name!r} is not {known_as}")
    if not names:
        node.fail(f"expected at least one {what}")
    return None if not names or unknown else tuple(names)

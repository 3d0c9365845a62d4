"""Contain a device (quarantine thing group + shadow flag) and release it, with confirmation.

Containment has two effects. Membership of the quarantine thing group is what restricts the device: the
group's IoT policy denies what a quarantined device must not do, and an explicit Deny overrides every
Allow of its certificate's policies. The shadow's desired state tells the device, over its delta topic,
that it is quarantined and why. Both functions take their boto3 clients as parameters so the handlers
and the intake function share them and tests can inject moto or Stubber clients.

Call budget (fleet scale: registry APIs are rate-limited per account, ~100 TPS for AddThingToThingGroup):
three calls per device, first time or repeated.

* contain: AddThingToThingGroup, UpdateThingShadow, then ListThingGroupsForThing
* release: RemoveThingFromThingGroup, UpdateThingShadow, then ListThingGroupsForThing

Confirmation: success is reported only once both effects are read back. The thing's groups are listed
after the write and must (contain) or must not (release) include the quarantine group. The shadow update's
response is the Device Shadow service's own record of the desired values it accepted and the version that
now holds them; every quarantine key is checked in it. Both group writes are idempotent (adding a member
or removing a non-member changes nothing), so repeating a containment or release is safe.

Unknown things: a group write for an unregistered thing fails with ResourceNotFoundException before
anything changes, and so does one for a missing group; DescribeThing, on that error path only, tells which.
The shadow is written only after the group write succeeded (the shadow service, unlike the registry,
accepts updates for unregistered thing names, so writing it first would give an unknown thing a shadow).
A name no thing can have (a device Device Defender names by an MQTT client id with spaces, slashes or
other characters outside the thing-name pattern) is answered as not registered before any call: the
registry and shadow APIs would reject the request instead of answering.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from functions.aws_clients import Client
from functions.contract import RequestField
from functions.contract_opscenter import OPS_ITEM_ID_PATTERN
from functions.messages import DEVICE_NAME_PATTERN, THING_NAME_PATTERN, is_thing_name

QUARANTINE_KEY: Final = "quarantine"
QUARANTINE_REASON_KEY: Final = "quarantineReason"
QUARANTINED_AT_KEY: Final = "quarantinedAt"
QUARANTINE_INCIDENT_KEY: Final = "quarantineIncident"
QUARANTINE_SHADOW_KEYS: Final = (QUARANTINE_KEY, QUARANTINE_REASON_KEY, QUARANTINED_AT_KEY, QUARANTINE_INCIDENT_KEY)
"""The desired-state keys containment owns; release deletes exactly these and no others."""

THING_ARN_PATTERN: Final = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:thing/(?P<name>[a-zA-Z0-9:_-]{1,128})"
)
INVOLVED_RESOURCE: Final = "INVOLVED_RESOURCE"
_REGISTRY_PAGE_SIZE: Final = 250
"""ListThingGroupsForThing's maximum page size, so one call covers any realistic membership list."""


class ContainmentError(Exception):
    """A containment or release step failed or could not be confirmed; the message says which."""


class ThingNotFoundError(ContainmentError):
    """The thing is not in the registry. Nothing was changed."""


@dataclass(frozen=True)
class ContainResult:
    thing_name: str
    group_name: str
    shadow_version: int
    quarantined_at: str
    """ISO 8601 UTC time written to the shadow: the latest confirmed containment."""


@dataclass(frozen=True)
class ReleaseResult:
    thing_name: str
    group_name: str
    shadow_version: int


def contain_thing(
    iot: Client,
    iot_data: Client,
    thing_name: str,
    *,
    group_name: str,
    reason: str | None = None,
    incident_record_arn: str | None = None,
    now: datetime | None = None,
) -> ContainResult:
    """Put ``thing_name`` in the quarantine group and flag its shadow; confirm both or raise.

    Other group memberships and other desired-state keys are left as they are. Idempotent.
    Raises ThingNotFoundError for a thing that is not registered (nothing changed; no call at all for a
    name no thing can have) and ContainmentError when a step fails or its result cannot be confirmed.
    """
    _check_name("group_name", group_name)
    _check_registrable(thing_name)
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("now: expected a timezone-aware datetime")
    quarantined_at = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Dynamic groups count towards a thing's group limit; quarantine must win over them, as it does for
    # Device Defender's own add-to-group mitigation action.
    _change_membership(iot.add_thing_to_thing_group, iot, thing_name, group_name, "add",
                       overrideDynamicGroups=True)

    desired: dict[str, Any] = {QUARANTINE_KEY: True, QUARANTINED_AT_KEY: quarantined_at}
    # Absent values are left out rather than sent as null: null would delete what an earlier
    # containment recorded (for example the incident of the first alarm).
    if reason is not None:
        desired[QUARANTINE_REASON_KEY] = reason
    if incident_record_arn is not None:
        desired[QUARANTINE_INCIDENT_KEY] = incident_record_arn
    accepted, version = _update_desired(iot_data, thing_name, desired)
    if accepted.get(QUARANTINE_KEY) is not True:
        raise ContainmentError(
            f"shadow of {thing_name}: the update response does not show desired.{QUARANTINE_KEY}=true"
        )
    if group_name not in _thing_groups(iot, thing_name):
        raise ContainmentError(f"{thing_name} is not listed in thing group {group_name} after being added to it")
    return ContainResult(thing_name, group_name, version, quarantined_at)


def release_thing(iot: Client, iot_data: Client, thing_name: str, *, group_name: str) -> ReleaseResult:
    """Take ``thing_name`` out of the quarantine group and delete the quarantine keys from its shadow's
    desired state; confirm both or raise.

    Only the quarantine group and the quarantine keys are touched. Releasing a thing that is not
    quarantined succeeds and still clears the keys. Raises ThingNotFoundError
    for a thing that is not registered (nothing changed; no call at all for a name no thing can have) and
    ContainmentError when a step fails or its result cannot be confirmed.
    """
    _check_name("group_name", group_name)
    _check_registrable(thing_name)

    _change_membership(iot.remove_thing_from_thing_group, iot, thing_name, group_name, "remove")

    # Shadow merge semantics: a desired key set to null is deleted; keys not sent are kept.
    accepted, version = _update_desired(iot_data, thing_name, dict.fromkeys(QUARANTINE_SHADOW_KEYS))
    not_deleted = [key for key in QUARANTINE_SHADOW_KEYS if key not in accepted or accepted[key] is not None]
    if not_deleted:
        raise ContainmentError(
            f"shadow of {thing_name}: the update response does not show desired keys "
            f"{', '.join(not_deleted)} deleted (null)"
        )
    if group_name in _thing_groups(iot, thing_name):
        raise ContainmentError(f"{thing_name} is still listed in thing group {group_name} after being removed")
    return ReleaseResult(thing_name, group_name, version)


def things_from_incident(ssm_incidents: Client, incident_record_arn: str) -> list[str]:
    """Names of the IoT things an Incident Manager incident lists as INVOLVED_RESOURCE related items,
    in the order listed, without duplicates; empty when it names none (an audit incident, or an alert
    storm whose devices Device Defender mitigation tasks contain in bulk). Raises ContainmentError when
    the incident cannot be read."""
    names: list[str] = []
    try:
        for page in ssm_incidents.get_paginator("list_related_items").paginate(
            incidentRecordArn=incident_record_arn
        ):
            for item in page["relatedItems"]:
                identifier = item["identifier"]
                if identifier["type"] != INVOLVED_RESOURCE:
                    continue
                match = THING_ARN_PATTERN.fullmatch(identifier["value"].get("arn", ""))
                if match and match["name"] not in names:
                    names.append(match["name"])
    except ssm_incidents.exceptions.ClientError as error:
        raise ContainmentError(
            f"listing related items of incident {incident_record_arn} failed: {_describe(error)}"
        ) from error
    return names


# --- handler input (shared by the contain and release handlers) ---------------------------------------

REQUEST_FIELDS: Final = tuple(RequestField)
MAX_REASON_LENGTH: Final = 256
"""Bound on the reason written to the shadow (a classic shadow document is at most 8 KB)."""
INCIDENT_RECORD_ARN_PATTERN: Final = re.compile(
    r"arn:aws[a-z-]*:ssm-incidents::[0-9]{12}:incident-record/[a-zA-Z0-9_-]{1,200}/[a-zA-Z0-9-]{1,128}"
)


@dataclass(frozen=True)
class Request:
    """A validated contain or release event."""

    thing_name: str | None
    reason: str | None
    incident_record_arn: str | None
    ops_item_id: str | None = None


def parse_request(event: object) -> Request:
    """Validate ``{"thingName"?, "reason"?, "incidentRecordArn"?, "opsItemId"?}``; ValueError names the bad
    field.

    An empty string counts as absent: SSM Automation passes "" for an optional parameter left unset.
    Whether thingName is required is the handler's decision. thingName takes any device name a Device
    Defender violation can carry (an operator may paste an MQTT client id from one); containment then
    answers whether a thing can have it.
    """
    if not isinstance(event, Mapping):
        raise ValueError(f"event: expected a JSON object, got {type(event).__name__}")
    unknown = sorted(str(key) for key in event if key not in REQUEST_FIELDS)
    if unknown:
        raise ValueError(f"event: unknown field(s) {', '.join(unknown)}; expected only {', '.join(REQUEST_FIELDS)}")
    values: dict[str, str | None] = {}
    for field in REQUEST_FIELDS:
        value = event.get(field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field}: expected a string, got {type(value).__name__}")
        values[field] = value or None
    thing_name, reason, incident_record_arn, ops_item_id = (values[field] for field in REQUEST_FIELDS)
    if thing_name is not None and not DEVICE_NAME_PATTERN.fullmatch(thing_name):
        raise ValueError(f"thingName: expected a device name of 1-128 characters, got {len(thing_name)}")
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise ValueError(f"reason: expected at most {MAX_REASON_LENGTH} characters, got {len(reason)}")
    if incident_record_arn is not None and not INCIDENT_RECORD_ARN_PATTERN.fullmatch(incident_record_arn):
        raise ValueError(
            "incidentRecordArn: expected an Incident Manager incident record ARN "
            f"(arn:<partition>:ssm-incidents::<account>:incident-record/<plan>/<id>), got {incident_record_arn!r}"
        )
    if ops_item_id is not None and not OPS_ITEM_ID_PATTERN.fullmatch(ops_item_id):
        raise ValueError(
            f"opsItemId: expected an OpsItem id matching {OPS_ITEM_ID_PATTERN.pattern}, got {ops_item_id!r}"
        )
    return Request(thing_name, reason, incident_record_arn, ops_item_id)


# --- helpers -------------------------------------------------------------------------------------------


def _check_registrable(thing_name: str) -> None:
    """ValueError for what no violation can name; ThingNotFoundError, before any call, for a device name
    no thing can have."""
    if not isinstance(thing_name, str) or not DEVICE_NAME_PATTERN.fullmatch(thing_name):
        raise ValueError(f"thing_name: expected a device name of 1-128 characters, got {thing_name!r}")
    if not is_thing_name(thing_name):
        raise ThingNotFoundError(
            f"{thing_name!r} is not a registered thing: no thing can have that name (thing names match "
            f"{THING_NAME_PATTERN.pattern}); nothing changed"
        )


def _check_name(field: str, name: str) -> None:
    if not isinstance(name, str) or not THING_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{field}: expected a name matching {THING_NAME_PATTERN.pattern}, got {name!r}")


def _thing_groups(iot: Client, thing_name: str) -> set[str]:
    """The thing's group names; ThingNotFoundError when the thing is not registered."""
    groups: set[str] = set()
    try:
        for page in iot.get_paginator("list_thing_groups_for_thing").paginate(
            thingName=thing_name, PaginationConfig={"PageSize": _REGISTRY_PAGE_SIZE}
        ):
            groups.update(group["groupName"] for group in page["thingGroups"])
    except iot.exceptions.ResourceNotFoundException as error:
        raise ThingNotFoundError(f"thing {thing_name} is not registered in AWS IoT: nothing changed") from error
    except iot.exceptions.ClientError as error:
        raise ContainmentError(f"reading the thing groups of {thing_name} failed: {_describe(error)}") from error
    return groups


def _change_membership(
    operation: Callable[..., object], iot: Client, thing_name: str, group_name: str, verb: str, **extra: Any
) -> None:
    try:
        operation(thingGroupName=group_name, thingName=thing_name, **extra)
    except iot.exceptions.ResourceNotFoundException as error:
        # Nothing changed; the thing or the group is missing, and only the thing can be looked up alone.
        if not _thing_exists(iot, thing_name):
            raise ThingNotFoundError(f"thing {thing_name} is not registered in AWS IoT: nothing changed") from error
        raise ContainmentError(
            f"could not {verb} {thing_name}: thing group {group_name} does not exist ({_describe(error)})"
        ) from error
    except iot.exceptions.ClientError as error:
        raise ContainmentError(
            f"could not {verb} {thing_name} (thing group {group_name}): {_describe(error)}"
        ) from error


def _thing_exists(iot: Client, thing_name: str) -> bool:
    try:
        iot.describe_thing(thingName=thing_name)
    except iot.exceptions.ResourceNotFoundException:
        return False
    except iot.exceptions.ClientError as error:
        raise ContainmentError(f"looking up thing {thing_name} failed: {_describe(error)}") from error
    return True


def _update_desired(iot_data: Client, thing_name: str, desired: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Merge ``desired`` into the classic shadow; return the accepted desired state and the new version.

    The response is as strong a confirmation as a GetThingShadow afterwards: the Device Shadow service
    answers only once the update is applied, with the desired values it accepted and the version that
    now holds them. A separate read could only add a newer concurrent update, which it could not rule
    out either, and would cost a call per device.
    """
    payload = json.dumps({"state": {"desired": desired}}).encode()
    try:
        response = iot_data.update_thing_shadow(thingName=thing_name, payload=payload)
    except iot_data.exceptions.ClientError as error:
        raise ContainmentError(f"updating the shadow of {thing_name} failed: {_describe(error)}") from error
    try:
        document = json.loads(response["payload"].read())
        accepted = document["state"]["desired"]
        version = document["version"]
    except (ValueError, KeyError, TypeError) as error:
        raise ContainmentError(
            f"shadow of {thing_name}: the update response has no accepted desired state and version"
        ) from error
    if not isinstance(accepted, dict) or not isinstance(version, int) or isinstance(version, bool):
        raise ContainmentError(
            f"shadow of {thing_name}: the update response has no accepted desired state and version"
        )
    return accepted, version


def _describe(error: Any) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'Unknown')}: {details.get('Message', str(error))}"

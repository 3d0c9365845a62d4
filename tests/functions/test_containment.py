"""contain_thing and release_thing against moto's IoT registry and Device Shadow service.

moto merges desired state like AWS (keys not sent are kept, a key sent as null is deleted) and answers
UpdateThingShadow with the accepted document (the keys sent, nulls included) and the new version, as AWS
does. It differs in one way that matters here: it rejects UpdateThingShadow for an unregistered thing,
while AWS accepts it and creates the shadow. So "no shadow for an unknown thing" is asserted through the
API calls made (no UpdateThingShadow at all), not only through the shadow's absence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from functions.containment import (
    QUARANTINE_SHADOW_KEYS,
    ContainmentError,
    ThingNotFoundError,
    contain_thing,
    release_thing,
)

NOW = datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
INCIDENT = "arn:aws:ssm-incidents::123456789012:incident-record/fleetguard-device/6ac2d3f0-9a1b-4c5d-8e7f-0a1b2c3d4e5f"
CONTAIN_CALLS = ["AddThingToThingGroup", "UpdateThingShadow", "ListThingGroupsForThing"]
"""Write the group, write the shadow, read the membership back."""
RELEASE_CALLS = ["RemoveThingFromThingGroup", "UpdateThingShadow", "ListThingGroupsForThing"]


def groups_of(iot: Any, thing_name: str) -> set[str]:
    return {group["groupName"] for group in iot.list_thing_groups_for_thing(thingName=thing_name)["thingGroups"]}


def shadow(iot_data: Any, thing_name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(iot_data.get_thing_shadow(thingName=thing_name)["payload"].read())
    return document


def desired(iot_data: Any, thing_name: str) -> dict[str, Any]:
    state: dict[str, Any] = shadow(iot_data, thing_name)["state"].get("desired", {})
    return state


def set_desired(iot_data: Any, thing_name: str, state: dict[str, Any]) -> None:
    iot_data.update_thing_shadow(thingName=thing_name, payload=json.dumps({"state": state}).encode())


@pytest.fixture
def thing(iot: Any) -> str:
    iot.create_thing(thingName="dev-IZWB")
    return "dev-IZWB"


@pytest.fixture
def watched(call_log: Any, iot: Any, iot_data: Any) -> Any:
    call_log.watch(iot, iot_data)
    return call_log


def test_contain_joins_group_flags_shadow_in_three_calls(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str, watched: Any
) -> None:
    result = contain_thing(
        iot, iot_data, thing, group_name=quarantine_group, reason="in-alarm MessagesPub",
        incident_record_arn=INCIDENT, now=NOW,
    )

    assert watched.calls == CONTAIN_CALLS
    assert result.thing_name == thing
    assert result.group_name == quarantine_group
    assert result.quarantined_at == "2026-11-20T08:15:02Z"
    assert groups_of(iot, thing) == {quarantine_group}
    document = shadow(iot_data, thing)
    assert document["version"] == result.shadow_version
    assert document["state"]["desired"] == {
        "quarantine": True,
        "quarantineReason": "in-alarm MessagesPub",
        "quarantinedAt": "2026-11-20T08:15:02Z",
        "quarantineIncident": INCIDENT,
    }


def test_contain_twice_is_idempotent(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str, watched: Any
) -> None:
    first = contain_thing(iot, iot_data, thing, group_name=quarantine_group, now=NOW)
    watched.clear()
    later = NOW + timedelta(minutes=5)
    second = contain_thing(iot, iot_data, thing, group_name=quarantine_group, now=later)

    # Adding a member again changes nothing; the membership is read back all the same.
    assert watched.calls == CONTAIN_CALLS
    assert second.shadow_version == first.shadow_version + 1
    assert groups_of(iot, thing) == {quarantine_group}
    assert desired(iot_data, thing) == {"quarantine": True, "quarantinedAt": "2026-11-20T08:20:02Z"}


def test_contain_without_reason_keeps_the_earlier_reason_and_incident(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str
) -> None:
    contain_thing(iot, iot_data, thing, group_name=quarantine_group, reason="first alarm",
                  incident_record_arn=INCIDENT, now=NOW)
    contain_thing(iot, iot_data, thing, group_name=quarantine_group, now=NOW)

    state = desired(iot_data, thing)
    assert state["quarantineReason"] == "first alarm"
    assert state["quarantineIncident"] == INCIDENT


def test_contain_unknown_thing_changes_nothing(
    iot: Any, iot_data: Any, quarantine_group: str, watched: Any
) -> None:
    with pytest.raises(ThingNotFoundError, match="thing ghost-1 is not registered in AWS IoT: nothing changed"):
        contain_thing(iot, iot_data, "ghost-1", group_name=quarantine_group, now=NOW)

    # The group write found nothing; DescribeThing tells the thing is missing. No shadow was written.
    assert watched.calls == ["AddThingToThingGroup", "DescribeThing"]
    assert iot.list_things_in_thing_group(thingGroupName=quarantine_group)["things"] == []
    with pytest.raises(iot_data.exceptions.ResourceNotFoundException):
        iot_data.get_thing_shadow(thingName="ghost-1")


def test_contain_with_missing_quarantine_group_names_the_group(
    iot: Any, iot_data: Any, thing: str, watched: Any
) -> None:
    with pytest.raises(ContainmentError, match="thing group no-such-group does not exist") as raised:
        contain_thing(iot, iot_data, thing, group_name="no-such-group", now=NOW)

    assert not isinstance(raised.value, ThingNotFoundError)
    assert watched.calls == ["AddThingToThingGroup", "DescribeThing"]
    with pytest.raises(iot_data.exceptions.ResourceNotFoundException):
        iot_data.get_thing_shadow(thingName=thing)


def test_existing_desired_and_reported_state_survive_contain_and_release(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str
) -> None:
    original_desired = {"firmware": "4.2.0", "telemetry": {"intervalSeconds": 60}}
    set_desired(iot_data, thing, {"desired": original_desired, "reported": {"firmware": "4.1.9"}})

    contain_thing(iot, iot_data, thing, group_name=quarantine_group, reason="r", now=NOW)
    assert desired(iot_data, thing) == {
        **original_desired, "quarantine": True, "quarantineReason": "r", "quarantinedAt": "2026-11-20T08:15:02Z",
    }

    release_thing(iot, iot_data, thing, group_name=quarantine_group)
    after = shadow(iot_data, thing)["state"]
    assert after["desired"] == original_desired
    assert after["reported"] == {"firmware": "4.1.9"}


def test_other_group_memberships_survive_contain_and_release(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str
) -> None:
    for group in ("site-berlin", "firmware-beta"):
        iot.create_thing_group(thingGroupName=group)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

    contain_thing(iot, iot_data, thing, group_name=quarantine_group, now=NOW)
    assert groups_of(iot, thing) == {"site-berlin", "firmware-beta", quarantine_group}

    release_thing(iot, iot_data, thing, group_name=quarantine_group)
    assert groups_of(iot, thing) == {"site-berlin", "firmware-beta"}


def test_release_leaves_group_and_deletes_quarantine_keys(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str, watched: Any
) -> None:
    contained = contain_thing(iot, iot_data, thing, group_name=quarantine_group, reason="r",
                              incident_record_arn=INCIDENT, now=NOW)
    watched.clear()

    result = release_thing(iot, iot_data, thing, group_name=quarantine_group)

    assert watched.calls == RELEASE_CALLS
    assert result.shadow_version == contained.shadow_version + 1
    assert groups_of(iot, thing) == set()
    assert not set(QUARANTINE_SHADOW_KEYS) & set(desired(iot_data, thing))


def test_release_of_a_device_not_in_quarantine_still_cleans_the_shadow(
    iot: Any, iot_data: Any, thing: str, quarantine_group: str, watched: Any
) -> None:
    # Left over when someone took the device out of the group by hand.
    set_desired(iot_data, thing, {"desired": {"quarantine": True, "quarantineReason": "stale", "mode": "normal"}})
    watched.clear()

    result = release_thing(iot, iot_data, thing, group_name=quarantine_group)

    # Removing a non-member changes nothing; the call budget is the same.
    assert watched.calls == RELEASE_CALLS
    assert result.shadow_version == 2
    assert desired(iot_data, thing) == {"mode": "normal"}
    assert groups_of(iot, thing) == set()


def test_release_unknown_thing_changes_nothing(
    iot: Any, iot_data: Any, quarantine_group: str, watched: Any
) -> None:
    with pytest.raises(ThingNotFoundError, match="ghost-2"):
        release_thing(iot, iot_data, "ghost-2", group_name=quarantine_group)
    assert watched.calls == ["RemoveThingFromThingGroup", "DescribeThing"]


@pytest.mark.parametrize("thing_name", ["plant-7:line_2-sensor", "a", "arn:like:name", "_-_", "x" * 128])
def test_thing_names_with_colon_underscore_dash(
    iot: Any, iot_data: Any, quarantine_group: str, thing_name: str
) -> None:
    iot.create_thing(thingName=thing_name)

    contained = contain_thing(iot, iot_data, thing_name, group_name=quarantine_group, now=NOW)
    assert groups_of(iot, thing_name) == {quarantine_group}
    assert desired(iot_data, thing_name)["quarantine"] is True

    released = release_thing(iot, iot_data, thing_name, group_name=quarantine_group)
    assert released.shadow_version == contained.shadow_version + 1
    assert groups_of(iot, thing_name) == set()


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("", "q"), "thing_name: expected a device name of 1-128 characters"),
        (("x" * 129, "q"), "thing_name: expected a device name of 1-128 characters"),
        (("dev", "quarantine/group"), "group_name: expected a name matching"),
        (("dev IZWB", "quarantine/group"), "group_name: expected a name matching"),
    ],
)
def test_invalid_names_are_rejected_before_any_call(
    iot: Any, iot_data: Any, watched: Any, names: tuple[str, str], expected: str
) -> None:
    thing_name, group_name = names
    with pytest.raises(ValueError, match=expected):
        contain_thing(iot, iot_data, thing_name, group_name=group_name, now=NOW)
    with pytest.raises(ValueError, match=expected):
        release_thing(iot, iot_data, thing_name, group_name=group_name)
    assert watched.calls == []


@pytest.mark.parametrize(
    "client_id", ["dev IZWB", "gw/7", "line.2", "#", "Str\u00f6m", "a\nb", "\"quoted\"", "x" * 127 + "/"]
)
def test_a_client_id_no_thing_can_have_is_not_registered_without_any_call(
    iot: Any, iot_data: Any, quarantine_group: str, watched: Any, client_id: str
) -> None:
    with pytest.raises(ThingNotFoundError, match="is not a registered thing: no thing can have that name"):
        contain_thing(iot, iot_data, client_id, group_name=quarantine_group, now=NOW)
    with pytest.raises(ThingNotFoundError, match="is not a registered thing: no thing can have that name"):
        release_thing(iot, iot_data, client_id, group_name=quarantine_group)
    assert watched.calls == []


def test_naive_time_is_rejected(iot: Any, iot_data: Any, thing: str, quarantine_group: str) -> None:
    with pytest.raises(ValueError, match="now: expected a timezone-aware datetime"):
        contain_thing(iot, iot_data, thing, group_name=quarantine_group, now=datetime(2026, 1, 1))


def test_quarantined_at_is_written_in_utc(iot: Any, iot_data: Any, thing: str, quarantine_group: str) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    result = contain_thing(iot, iot_data, thing, group_name=quarantine_group,
                           now=datetime(2026, 11, 20, 9, 15, 2, tzinfo=berlin_winter))
    assert result.quarantined_at == "2026-11-20T08:15:02Z"

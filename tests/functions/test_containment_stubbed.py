"""Paths moto cannot produce, with botocore Stubber (every call's parameters asserted): Incident Manager
related items, paginated group listings, throttling, and shadow responses that do not confirm."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.response import StreamingBody  # type: ignore[import-untyped]
from botocore.stub import Stubber  # type: ignore[import-untyped]

from functions.containment import (
    QUARANTINE_SHADOW_KEYS,
    ContainmentError,
    contain_thing,
    release_thing,
    things_from_incident,
)

REGION = "us-east-1"
NOW = datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
INCIDENT = "arn:aws:ssm-incidents::123456789012:incident-record/fleetguard-device/6ac2d3f0-9a1b-4c5d-8e7f-0a1b2c3d4e5f"
GROUP = "fleetguard-quarantine"


def thing_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iot:{REGION}:123456789012:thing/{name}"


def related(item_type: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": {"type": item_type, "value": value}, "title": "item"}


def shadow_response(document: object) -> dict[str, Any]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return {"payload": StreamingBody(io.BytesIO(body), len(body))}


def desired_payload(desired: dict[str, Any]) -> bytes:
    return json.dumps({"state": {"desired": desired}}).encode()


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[Stubber, Stubber, Stubber]]:
    """Stubbers for iot, iot-data and ssm-incidents; each must have used every queued response."""
    clients = [boto3.client(service, region_name=REGION) for service in ("iot", "iot-data", "ssm-incidents")]
    stubbers = [Stubber(client) for client in clients]
    for stubber in stubbers:
        stubber.activate()
    yield stubbers[0], stubbers[1], stubbers[2]
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def expect_groups(iot: Stubber, thing: str, *pages: list[str]) -> None:
    for index, groups in enumerate(pages):
        params: dict[str, Any] = {"thingName": thing, "maxResults": 250}
        if index:
            params["nextToken"] = f"page-{index}"
        response: dict[str, Any] = {
            "thingGroups": [{"groupName": group, "groupArn": f"arn:aws:iot:{REGION}:123456789012:thinggroup/{group}"}
                            for group in groups],
        }
        if index < len(pages) - 1:
            response["nextToken"] = f"page-{index + 1}"
        iot.add_response("list_thing_groups_for_thing", response, params)


# --- things_from_incident ---------------------------------------------------------------------------


def test_things_from_incident_reads_every_page_and_keeps_only_thing_involved_resources(
    stubbed: tuple[Stubber, Stubber, Stubber],
) -> None:
    _, _, incidents = stubbed
    incidents.add_response(
        "list_related_items",
        {
            "relatedItems": [
                related("INVOLVED_RESOURCE", {"arn": thing_arn("dev-IZWB")}),
                related("OTHER", {"arn": thing_arn("only-mentioned")}),
                related("INVOLVED_RESOURCE", {"arn": "arn:aws:lambda:us-east-1:123456789012:function:intake"}),
                related("INVOLVED_RESOURCE", {"arn": "arn:aws:iot:us-east-1:123456789012:thinggroup/fleet"}),
                related("ANALYSIS", {"url": "https://console.aws.amazon.com/cloudwatch/home#logsV2:logs-insights"}),
            ],
            "nextToken": "more",
        },
        {"incidentRecordArn": INCIDENT},
    )
    incidents.add_response(
        "list_related_items",
        {
            "relatedItems": [
                related("INVOLVED_RESOURCE", {"arn": thing_arn("plant-7:line_2-sensor", partition="aws-cn")}),
                related("INVOLVED_RESOURCE", {"arn": thing_arn("dev-IZWB")}),
            ],
        },
        {"incidentRecordArn": INCIDENT, "nextToken": "more"},
    )

    assert things_from_incident(incidents.client, INCIDENT) == ["dev-IZWB", "plant-7:line_2-sensor"]


def test_things_from_incident_without_involved_things_is_empty(stubbed: tuple[Stubber, Stubber, Stubber]) -> None:
    _, _, incidents = stubbed
    incidents.add_response(
        "list_related_items",
        {"relatedItems": [related("OTHER", {"arn": thing_arn("dev-IZWB")})]},
        {"incidentRecordArn": INCIDENT},
    )
    assert things_from_incident(incidents.client, INCIDENT) == []
    incidents.assert_no_pending_responses()


def test_things_from_unknown_incident_is_an_error(stubbed: tuple[Stubber, Stubber, Stubber]) -> None:
    _, _, incidents = stubbed
    incidents.add_client_error(
        "list_related_items", "ResourceNotFoundException", "Incident not found",
        expected_params={"incidentRecordArn": INCIDENT},
    )
    with pytest.raises(ContainmentError, match="ResourceNotFoundException: Incident not found"):
        things_from_incident(incidents.client, INCIDENT)


# --- exact requests, paginated membership, and a membership that does not hold ------------------------------


def expect_add(iot: Stubber, thing: str) -> None:
    iot.add_response("add_thing_to_thing_group", {},
                     {"thingGroupName": GROUP, "thingName": thing, "overrideDynamicGroups": True})


def expect_remove(iot: Stubber, thing: str) -> None:
    iot.add_response("remove_thing_from_thing_group", {}, {"thingGroupName": GROUP, "thingName": thing})


def expect_shadow_update(iot_data: Stubber, thing: str, sent: dict[str, Any], *, version: int,
                         answered: dict[str, Any] | None = None) -> None:
    """UpdateThingShadow of ``sent``, answered with ``answered`` (by default what was sent) at ``version``."""
    accepted = sent if answered is None else answered
    iot_data.add_response("update_thing_shadow", shadow_response({"state": {"desired": accepted}, "version": version}),
                          {"thingName": thing, "payload": desired_payload(sent)})


def test_membership_read_back_on_a_later_page_confirms_containment(
    stubbed: tuple[Stubber, Stubber, Stubber],
) -> None:
    iot, iot_data, _ = stubbed
    expect_add(iot, "dev-1")
    sent = {"quarantine": True, "quarantinedAt": "2026-11-20T08:15:02Z", "quarantineIncident": INCIDENT}
    expect_shadow_update(iot_data, "dev-1", sent, version=9)
    expect_groups(iot, "dev-1", ["site-berlin"], [GROUP])

    result = contain_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP,
                           incident_record_arn=INCIDENT, now=NOW)
    assert result.shadow_version == 9


def test_contain_fails_when_the_membership_read_back_lacks_the_group(
    stubbed: tuple[Stubber, Stubber, Stubber],
) -> None:
    iot, iot_data, _ = stubbed
    expect_add(iot, "dev-1")
    expect_shadow_update(iot_data, "dev-1", {"quarantine": True, "quarantinedAt": "2026-11-20T08:15:02Z"}, version=2)
    expect_groups(iot, "dev-1", ["site-berlin"])

    with pytest.raises(ContainmentError, match=f"dev-1 is not listed in thing group {GROUP} after being added"):
        contain_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP, now=NOW)


def test_release_fails_when_the_membership_read_back_still_has_the_group(
    stubbed: tuple[Stubber, Stubber, Stubber],
) -> None:
    iot, iot_data, _ = stubbed
    expect_remove(iot, "dev-1")
    expect_shadow_update(iot_data, "dev-1", dict.fromkeys(QUARANTINE_SHADOW_KEYS), version=5)
    expect_groups(iot, "dev-1", [GROUP])

    with pytest.raises(ContainmentError, match=f"dev-1 is still listed in thing group {GROUP} after being removed"):
        release_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP)


# --- results that do not confirm -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"state": {"desired": {"quarantine": False}}, "version": 3}, "does not show desired.quarantine=true"),
        ({"state": {"desired": {"quarantine": "true"}}, "version": 3}, "does not show desired.quarantine=true"),
        ({"state": {"desired": {"quarantine": True}}}, "has no accepted desired state and version"),
        ({"state": {"desired": {"quarantine": True}}, "version": "3"}, "has no accepted desired state and version"),
        ({"state": {}, "version": 3}, "has no accepted desired state and version"),
        (b"<html>gateway</html>", "has no accepted desired state and version"),
    ],
)
def test_contain_fails_when_the_shadow_response_does_not_confirm(
    stubbed: tuple[Stubber, Stubber, Stubber], document: object, expected: str
) -> None:
    iot, iot_data, _ = stubbed
    expect_add(iot, "dev-1")
    iot_data.add_response(
        "update_thing_shadow", shadow_response(document),
        {
            "thingName": "dev-1",
            "payload": desired_payload({"quarantine": True, "quarantinedAt": "2026-11-20T08:15:02Z"}),
        },
    )
    with pytest.raises(ContainmentError, match=expected):
        contain_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP, now=NOW)


def test_release_fails_when_the_response_does_not_show_the_keys_deleted(
    stubbed: tuple[Stubber, Stubber, Stubber],
) -> None:
    iot, iot_data, _ = stubbed
    expect_remove(iot, "dev-1")
    expect_shadow_update(iot_data, "dev-1", dict.fromkeys(QUARANTINE_SHADOW_KEYS), version=4,
                         answered={"quarantine": None, "quarantinedAt": "x"})
    with pytest.raises(
        ContainmentError,
        match="does not show desired keys quarantineReason, quarantinedAt, quarantineIncident deleted",
    ):
        release_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP)


def test_throttled_group_write_is_a_containment_error(stubbed: tuple[Stubber, Stubber, Stubber]) -> None:
    iot, iot_data, _ = stubbed
    iot.add_client_error(
        "add_thing_to_thing_group", "ThrottlingException", "Rate exceeded",
        expected_params={"thingGroupName": GROUP, "thingName": "dev-1", "overrideDynamicGroups": True},
    )
    with pytest.raises(ContainmentError, match=f"could not add dev-1 \\(thing group {GROUP}\\): ThrottlingException"):
        contain_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP, now=NOW)


def test_throttled_shadow_update_is_a_containment_error(stubbed: tuple[Stubber, Stubber, Stubber]) -> None:
    iot, iot_data, _ = stubbed
    expect_remove(iot, "dev-1")
    iot_data.add_client_error("update_thing_shadow", "ThrottlingException", "Rate exceeded")
    with pytest.raises(ContainmentError, match="updating the shadow of dev-1 failed: ThrottlingException"):
        release_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP)


def test_failed_membership_read_is_a_containment_error(stubbed: tuple[Stubber, Stubber, Stubber]) -> None:
    iot, iot_data, _ = stubbed
    expect_add(iot, "dev-1")
    expect_shadow_update(iot_data, "dev-1", {"quarantine": True, "quarantinedAt": "2026-11-20T08:15:02Z"}, version=2)
    iot.add_client_error(
        "list_thing_groups_for_thing", "InternalFailureException", "try later",
        expected_params={"thingName": "dev-1", "maxResults": 250},
    )
    with pytest.raises(ContainmentError, match="reading the thing groups of dev-1 failed: InternalFailureException"):
        contain_thing(iot.client, iot_data.client, "dev-1", group_name=GROUP, now=NOW)

"""The contain and release Lambda handlers: event validation, configuration, the incident-only path and
the output contract an SSM Automation runbook step relies on."""

from __future__ import annotations

import json
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from functions import aws_clients, contain, release
from functions.containment import ContainmentError, ThingNotFoundError
from functions.contract import OUTPUT_TYPES, EnvVar, OutputKey, Status

GROUP = "fleetguard-quarantine"
INCIDENT = "arn:aws:ssm-incidents::123456789012:incident-record/fleetguard-device/6ac2d3f0-9a1b-4c5d-8e7f-0a1b2c3d4e5f"
SSM_OUTPUT_TYPES = {"String": str, "Integer": int, "Boolean": bool, "StringMap": dict, "MapList": list}


@pytest.fixture(autouse=True)
def no_real_aws(aws_env: None, fresh_clients: None) -> None:
    """Fake credentials and empty client caches for every test, including those that fail before AWS."""


@pytest.fixture
def handler_env(moto_aws: None, monkeypatch: pytest.MonkeyPatch, iot: Any) -> Any:
    """Handler configuration under moto; returns the moto IoT client with the quarantine group created."""
    monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, GROUP)
    monkeypatch.setenv(EnvVar.POWERTOOLS_SERVICE_NAME, "fleetguard-test")
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, "data-ats.iot.us-east-1.amazonaws.com")
    iot.create_thing_group(thingGroupName=GROUP)
    return iot


def incident_stub(monkeypatch: pytest.MonkeyPatch, *thing_names: str) -> Stubber:
    """Serve ListRelatedItems for INCIDENT from a Stubber through the handler's client factory."""
    client = boto3.client("ssm-incidents", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "list_related_items",
        {"relatedItems": [
            {"identifier": {"type": "INVOLVED_RESOURCE",
                            "value": {"arn": f"arn:aws:iot:us-east-1:123456789012:thing/{name}"}}}
            for name in thing_names
        ]},
        {"incidentRecordArn": INCIDENT},
    )
    stubber.activate()
    monkeypatch.setattr(aws_clients, "ssm_incidents", lambda: client)
    return stubber


def groups_of(iot: Any, thing_name: str) -> set[str]:
    return {group["groupName"] for group in iot.list_thing_groups_for_thing(thingName=thing_name)["thingGroups"]}


def desired(thing_name: str) -> dict[str, Any]:
    document = json.loads(aws_clients.iot_data().get_thing_shadow(thingName=thing_name)["payload"].read())
    state: dict[str, Any] = document["state"].get("desired", {})
    return state


def assert_matches_output_contract(result: dict[str, Any], output_keys: Any) -> None:
    assert set(result) == set(output_keys)
    for key, ssm_type in output_keys.items():
        assert isinstance(result[key], SSM_OUTPUT_TYPES[ssm_type]), key
    assert json.loads(json.dumps(result)) == result


# --- contain ----------------------------------------------------------------------------------------------


def test_contain_one_thing(handler_env: Any, lambda_context: Any) -> None:
    handler_env.create_thing(thingName="dev-IZWB")

    result = contain.handler({"thingName": "dev-IZWB", "reason": "in-alarm MessagesPub"}, lambda_context)

    assert result == {
        OutputKey.STATUS: Status.CONTAINED,
        OutputKey.QUARANTINE_GROUP: GROUP,
        OutputKey.THING_COUNT: 1,
        OutputKey.THINGS: [{"thingName": "dev-IZWB", "shadowVersion": 1}],
        OutputKey.INCIDENT_RECORD_ARN: "",
    }
    assert_matches_output_contract(result, OUTPUT_TYPES)
    assert groups_of(handler_env, "dev-IZWB") == {GROUP}
    assert desired("dev-IZWB")["quarantineReason"] == "in-alarm MessagesPub"


def test_contain_with_only_an_incident_contains_its_things(
    handler_env: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("dev-IZWB", "plant-7:line_2-sensor"):
        handler_env.create_thing(thingName=name)
    handler_env.add_thing_to_thing_group(thingGroupName=GROUP, thingName="dev-IZWB")
    stubber = incident_stub(monkeypatch, "dev-IZWB", "plant-7:line_2-sensor")

    result = contain.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    stubber.assert_no_pending_responses()
    assert result[OutputKey.THING_COUNT] == 2
    assert result[OutputKey.INCIDENT_RECORD_ARN] == INCIDENT
    # dev-IZWB was in the group already: containing it again is harmless and confirmed the same way.
    assert [item["thingName"] for item in result[OutputKey.THINGS]] == ["dev-IZWB", "plant-7:line_2-sensor"]
    assert_matches_output_contract(result, OUTPUT_TYPES)
    for name in ("dev-IZWB", "plant-7:line_2-sensor"):
        assert groups_of(handler_env, name) == {GROUP}
        assert desired(name)["quarantineIncident"] == INCIDENT


def test_contain_for_an_incident_that_names_no_device_reports_no_devices(
    handler_env: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An audit incident or an alert storm (contained in bulk): the runbook moves on to analysis.
    stubber = incident_stub(monkeypatch)

    result = contain.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    stubber.assert_no_pending_responses()
    assert result == {
        OutputKey.STATUS: Status.NO_DEVICES,
        OutputKey.QUARANTINE_GROUP: GROUP,
        OutputKey.THING_COUNT: 0,
        OutputKey.THINGS: [],
        OutputKey.INCIDENT_RECORD_ARN: INCIDENT,
    }
    assert_matches_output_contract(result, OUTPUT_TYPES)
    assert handler_env.list_things_in_thing_group(thingGroupName=GROUP)["things"] == []


def test_contain_tries_every_thing_and_fails_if_any_failed(
    handler_env: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler_env.create_thing(thingName="dev-OK")
    incident_stub(monkeypatch, "ghost-9", "dev-OK")

    with pytest.raises(ContainmentError, match="1 of 2 device\\(s\\) not contained: thing ghost-9 is not registered"):
        contain.handler({"incidentRecordArn": INCIDENT}, lambda_context)
    assert groups_of(handler_env, "dev-OK") == {GROUP}


def test_contain_unknown_single_thing(handler_env: Any, lambda_context: Any) -> None:
    with pytest.raises(ContainmentError, match="1 of 1 device\\(s\\) not contained: thing ghost-1"):
        contain.handler({"thingName": "ghost-1"}, lambda_context)


@pytest.mark.parametrize("handler", [contain.handler, release.handler])
def test_a_client_id_no_thing_can_have_is_answered_without_a_registry_call(
    handler: Any, handler_env: Any, lambda_context: Any, call_log: Any
) -> None:
    call_log.watch(aws_clients.iot(), aws_clients.iot_data())

    with pytest.raises(ContainmentError, match=r"'Gateway 7/line\.2' is not a registered thing"):
        handler({"thingName": "Gateway 7/line.2"}, lambda_context)
    assert call_log.calls == []


# --- release ----------------------------------------------------------------------------------------------


def test_release_one_thing(handler_env: Any, lambda_context: Any) -> None:
    handler_env.create_thing(thingName="dev-IZWB")
    contain.handler({"thingName": "dev-IZWB", "incidentRecordArn": INCIDENT}, lambda_context)

    result = release.handler({"thingName": "dev-IZWB", "incidentRecordArn": INCIDENT}, lambda_context)

    assert result == {
        OutputKey.STATUS: Status.RELEASED,
        OutputKey.QUARANTINE_GROUP: GROUP,
        OutputKey.THING_COUNT: 1,
        OutputKey.THINGS: [{"thingName": "dev-IZWB", "shadowVersion": 2}],
        OutputKey.INCIDENT_RECORD_ARN: INCIDENT,
    }
    assert_matches_output_contract(result, OUTPUT_TYPES)
    assert groups_of(handler_env, "dev-IZWB") == set()
    assert desired("dev-IZWB") == {}


def test_release_unknown_thing(handler_env: Any, lambda_context: Any) -> None:
    with pytest.raises(ThingNotFoundError, match="ghost-1"):
        release.handler({"thingName": "ghost-1"}, lambda_context)


def test_release_requires_a_thing_name(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, GROUP)
    with pytest.raises(ValueError, match="thingName: required field is missing"):
        release.handler({"incidentRecordArn": INCIDENT}, lambda_context)


# --- validation and configuration (no AWS call is reached) -----------------------------------------------


@pytest.mark.parametrize("handler", [contain.handler, release.handler])
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (["dev-IZWB"], "event: expected a JSON object, got list"),
        ({"thingName": "dev-IZWB", "thing": "x"}, "event: unknown field\\(s\\) thing; expected only thingName"),
        ({"thingName": 42}, "thingName: expected a string, got int"),
        ({"thingName": "x" * 129}, "thingName: expected a device name of 1-128 characters, got 129"),
        ({"thingName": "dev-IZWB", "reason": "r" * 257}, "reason: expected at most 256 characters, got 257"),
        ({"thingName": "dev-IZWB", "incidentRecordArn": "arn:aws:iot:us-east-1:123456789012:thing/x"},
         "incidentRecordArn: expected an Incident Manager incident record ARN"),
        ({"thingName": "dev-IZWB", "incidentRecordArn": ["x"]}, "incidentRecordArn: expected a string, got list"),
    ],
)
def test_invalid_events_name_the_field(
    handler: Any, event: Any, expected: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, GROUP)
    with pytest.raises(ValueError, match=expected):
        handler(event, lambda_context)


@pytest.mark.parametrize("event", [{}, {"thingName": "", "incidentRecordArn": "", "opsItemId": ""}])
def test_contain_needs_a_thing_or_an_incident(
    event: dict[str, str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, GROUP)
    with pytest.raises(ValueError, match="thingName: required unless incidentRecordArn or opsItemId is given"):
        contain.handler(event, lambda_context)


@pytest.mark.parametrize("handler", [contain.handler, release.handler])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "QUARANTINE_GROUP_NAME: environment variable is not set"),
        ("", "QUARANTINE_GROUP_NAME: environment variable is not set"),
        ("quarantine group", "QUARANTINE_GROUP_NAME: expected a thing group name matching"),
    ],
)
def test_quarantine_group_must_be_configured(
    handler: Any, value: str | None, expected: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(EnvVar.QUARANTINE_GROUP_NAME, raising=False)
    else:
        monkeypatch.setenv(EnvVar.QUARANTINE_GROUP_NAME, value)
    with pytest.raises(ValueError, match=expected):
        handler({"thingName": "dev-IZWB"}, lambda_context)


def test_empty_optional_fields_count_as_absent(handler_env: Any, lambda_context: Any) -> None:
    handler_env.create_thing(thingName="dev-IZWB")
    result = contain.handler({"thingName": "dev-IZWB", "reason": "", "incidentRecordArn": ""}, lambda_context)
    assert result[OutputKey.INCIDENT_RECORD_ARN] == ""
    assert "quarantineReason" not in desired("dev-IZWB")
    assert "quarantineIncident" not in desired("dev-IZWB")

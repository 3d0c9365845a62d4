"""Incident Manager's people: replication set, contacts, channels, engagement plans and the escalation plan."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import stack_outputs as out
from harness import mockstack
from harness.mockstack import ACCOUNT_ID, RegisteredResource, StackRun, load_stack_config, run_stack

CONTACTS = "fleetguard-prod-contacts"
PLAN_TYPE = "aws:ssmcontacts/plan:Plan"
CHANNEL_TYPE = "aws:ssmcontacts/contactChannel:ContactChannel"


def prod_response_config() -> dict[str, Any]:
    section: dict[str, Any] = json.loads(load_stack_config("prod")["fleetguard:incidentResponse"])
    return section


def prod_with(**manager_overrides: Any) -> StackRun:
    section = prod_response_config()
    manager = copy.deepcopy(section["incidentManager"])
    for key, value in manager_overrides.items():
        if value is None:
            manager.pop(key, None)
        else:
            manager[key] = value
    section["incidentManager"] = manager
    return run_stack("prod", {"incidentResponse": section})


@pytest.fixture(scope="module")
def prod_with_channel_arns() -> Iterator[StackRun]:
    """The shared mock computes no contact channel ARNs; give each one so stage targets can be traced."""
    original = mockstack._computed_outputs

    def with_channel_arns(type_token: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        outputs = original(type_token, name, inputs)
        if type_token == CHANNEL_TYPE:
            outputs["arn"] = f"arn:aws:ssm-contacts:us-east-1:{ACCOUNT_ID}:contactchannel/{name}"
        return outputs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mockstack, "_computed_outputs", with_channel_arns)
        yield run_stack("prod")


def names(stack: StackRun, urns: list[str]) -> set[str]:
    return {stack.by_urn(urn).name for urn in urns}


def stages(plan: RegisteredResource) -> list[tuple[int, list[dict[str, Any]]]]:
    return [(stage["durationInMinutes"], stage["targets"]) for stage in plan.inputs["stages"]]


def test_replication_set_is_created_first_and_contacts_wait_for_it(prod_stack: StackRun) -> None:
    replication = prod_stack.one("aws:ssmincidents/replicationSet:ReplicationSet")
    # No key: Incident Manager encrypts with an AWS-owned key.
    assert replication.inputs["regions"] == [{"name": "us-east-1"}, {"name": "us-west-2"}]
    assert replication.inputs["tags"]["Environment"] == "prod"
    personal = [c for c in prod_stack.of_type("aws:ssmcontacts/contact:Contact") if c.inputs["type"] == "PERSONAL"]
    assert len(personal) == 2
    for person in personal:
        assert replication.urn in person.dependencies
    escalation = prod_stack.by_name(f"{CONTACTS}-iot-security-escalation")
    assert names(prod_stack, escalation.dependencies) == {
        f"{CONTACTS}-iot-oncall-primary-engagement-plan", f"{CONTACTS}-iot-security-lead-engagement-plan",
    }


def test_personal_contacts_have_their_channels(prod_stack: StackRun) -> None:
    primary = prod_stack.by_name(f"{CONTACTS}-iot-oncall-primary")
    assert primary.inputs["alias"] == "iot-oncall-primary"
    assert primary.inputs["displayName"] == "IoT Security On-Call"
    assert primary.inputs["type"] == "PERSONAL"
    channels = {c.inputs["name"]: c.inputs for c in prod_stack.of_type(CHANNEL_TYPE)
                if c.inputs["contactId"] == primary.outputs["arn"]}
    assert {name: (c["type"], c["deliveryAddress"]["simpleAddress"]) for name, c in channels.items()} == {
        "oncall-email": ("EMAIL", "iot-oncall@example.com"),
        "oncall-sms": ("SMS", "+15555550100"),
        "oncall-voice": ("VOICE", "+15555550100"),
    }
    lead = prod_stack.by_name(f"{CONTACTS}-iot-security-lead")
    lead_channels = [c for c in prod_stack.of_type(CHANNEL_TYPE) if c.inputs["contactId"] == lead.outputs["arn"]]
    assert {c.inputs["type"] for c in lead_channels} == {"EMAIL", "VOICE"}


def test_engagement_plans_page_channels_stage_by_stage(prod_with_channel_arns: StackRun) -> None:
    stack = prod_with_channel_arns

    def channel(contact: str, name: str) -> dict[str, Any]:
        arn = stack.by_name(f"{CONTACTS}-{contact}-{name}").outputs["arn"]
        return {"channelTargetInfo": {"contactChannelId": arn, "retryIntervalInMinutes": 1}}

    primary = stack.by_name(f"{CONTACTS}-iot-oncall-primary-engagement-plan")
    assert primary.inputs["contactId"] == stack.by_name(f"{CONTACTS}-iot-oncall-primary").outputs["arn"]
    assert stages(primary) == [
        (5, [channel("iot-oncall-primary", "oncall-email"), channel("iot-oncall-primary", "oncall-sms")]),
        (0, [channel("iot-oncall-primary", "oncall-voice")]),
    ]
    lead = stack.by_name(f"{CONTACTS}-iot-security-lead-engagement-plan")
    # No engagementPlan configured: every channel at once.
    assert stages(lead) == [
        (0, [channel("iot-security-lead", "lead-email"), channel("iot-security-lead", "lead-voice")]),
    ]


def test_escalation_plan_pages_the_next_stage_when_nobody_acknowledges(prod_stack: StackRun) -> None:
    escalation = prod_stack.by_name(f"{CONTACTS}-iot-security-escalation")
    assert escalation.inputs["type"] == "ESCALATION"
    assert escalation.inputs["alias"] == "iot-security-escalation"
    plan = prod_stack.by_name(f"{CONTACTS}-iot-security-escalation-stages")
    assert plan.inputs["contactId"] == escalation.outputs["arn"]

    def engage(alias: str) -> dict[str, Any]:
        arn = prod_stack.by_name(f"{CONTACTS}-{alias}").outputs["arn"]
        return {"contactTargetInfo": {"contactId": arn, "isEssential": True}}

    assert stages(plan) == [(10, [engage("iot-oncall-primary")]), (15, [engage("iot-security-lead")])]


def test_every_stage_stays_within_ssm_contacts_limits(prod_stack: StackRun) -> None:
    plans = prod_stack.of_type(PLAN_TYPE)
    assert len(plans) == 3
    for plan in plans:
        for duration, targets in stages(plan):
            assert 0 <= duration <= 30
            assert targets  # a 0-minute stage is only valid with targets


def test_contacts_are_children_of_the_component(prod_stack: StackRun) -> None:
    component = prod_stack.by_name(CONTACTS)
    assert component.type == "fleetguard:contacts:Contacts"
    for type_token in ("aws:ssmcontacts/contact:Contact", CHANNEL_TYPE, PLAN_TYPE,
                       "aws:ssmincidents/replicationSet:ReplicationSet"):
        for resource in prod_stack.of_type(type_token):
            assert resource.parent == component.urn
            assert resource.name.startswith(f"{CONTACTS}-")


def test_exports_contact_and_escalation_plan_arns(prod_stack: StackRun, dev_stack: StackRun) -> None:
    assert prod_stack.outputs[out.CONTACT_ARNS] == {
        "iot-oncall-primary": f"arn:aws:ssm-contacts:us-east-1:{ACCOUNT_ID}:contact/iot-oncall-primary",
        "iot-security-lead": f"arn:aws:ssm-contacts:us-east-1:{ACCOUNT_ID}:contact/iot-security-lead",
    }
    assert prod_stack.outputs[out.ESCALATION_PLAN_ARN] == \
        f"arn:aws:ssm-contacts:us-east-1:{ACCOUNT_ID}:contact/iot-security-escalation"
    assert out.CONTACT_ARNS not in dev_stack.outputs
    assert out.ESCALATION_PLAN_ARN not in dev_stack.outputs


def test_without_an_escalation_plan_the_response_plan_engages_each_contact() -> None:
    stack = prod_with(escalation=None)
    assert not [c for c in stack.of_type("aws:ssmcontacts/contact:Contact") if c.inputs["type"] == "ESCALATION"]
    plan = stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
    contacts = [stack.by_name(f"{CONTACTS}-{alias}").outputs["arn"]
                for alias in ("iot-oncall-primary", "iot-security-lead")]
    assert plan.inputs["engagements"] == contacts
    # Engaged only once their engagement plans exist.
    assert {f"{CONTACTS}-iot-oncall-primary-engagement-plan", f"{CONTACTS}-iot-security-lead-engagement-plan"} <= \
        names(stack, plan.property_dependencies["engagements"])
    assert out.ESCALATION_PLAN_ARN not in stack.outputs


def test_an_existing_replication_set_is_left_alone() -> None:
    stack = prod_with(replicationSet={"manage": False, "regions": ["us-east-1"]})
    assert stack.of_type("aws:ssmincidents/replicationSet:ReplicationSet") == []
    assert len(stack.of_type("aws:ssmcontacts/contact:Contact")) == 3


def test_customer_managed_keys_encrypt_the_replication_set() -> None:
    east = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa"
    west = f"arn:aws:kms:us-west-2:{ACCOUNT_ID}:key/2222bbbb-22bb-22bb-22bb-222222bbbbbb"
    stack = prod_with(replicationSet={"regions": ["us-east-1", "us-west-2"], "key": "customer",
                                      "customerKeyArns": {"us-east-1": east, "us-west-2": west}})
    replication = stack.one("aws:ssmincidents/replicationSet:ReplicationSet")
    assert replication.inputs["regions"] == [{"name": "us-east-1", "kmsKeyArn": east},
                                             {"name": "us-west-2", "kmsKeyArn": west}]


def test_dev_without_incident_manager_has_no_contacts(dev_stack: StackRun) -> None:
    assert dev_stack.of_type("aws:ssmcontacts/contact:Contact") == []
    assert dev_stack.of_type(CHANNEL_TYPE) == []
    assert dev_stack.of_type(PLAN_TYPE) == []
    assert dev_stack.of_type("fleetguard:contacts:Contacts") == []


def test_contacts_carry_the_stack_tags_ssm_contacts_accepts() -> None:
    stack = run_stack("prod", {"tags": {"CostCenter": "iot-prod", "team:name": "iot security"}})
    replication = stack.one("aws:ssmincidents/replicationSet:ReplicationSet")
    assert replication.inputs["tags"]["team:name"] == "iot security"
    for contact in stack.of_type("aws:ssmcontacts/contact:Contact"):
        # ':' is not allowed in an SSM Contacts tag key: that tag stays off contacts only.
        assert contact.inputs["tags"] == {"Project": "fleetguard", "Environment": "prod", "Owner": "iot-security",
                                          "CostCenter": "iot-prod"}

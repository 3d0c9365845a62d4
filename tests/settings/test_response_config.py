"""``fleetguard:incidentResponse``: every mistake names its key, the bad value and what AWS allows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from settings.facts import CRITICAL_AUDIT_CHECKS
from settings.response import IncidentResponseSettings
from tests.settings.config_support import BASE, only_config_problem

KEY = "fleetguard:incidentResponse"


def response(section: dict[str, Any]) -> IncidentResponseSettings:
    return load_settings({**BASE, "incidentResponse": section}).incident_response


def only_problem(section: dict[str, Any]) -> str:
    return only_config_problem({"incidentResponse": section})


def contact(alias: str = "oncall", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "alias": alias,
        "displayName": "On Call",
        "channels": [
            {"name": "mail", "type": "EMAIL", "address": f"{alias}@example.com"},
            {"name": "phone", "type": "SMS", "address": "+15555550100"},
        ],
    }
    entry.update(fields)
    return entry


def manager(**fields: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "replicationSet": {"regions": ["us-east-1"]},
        "contacts": [contact()],
    }
    section.update(fields)
    return {"incidentManager": section}


def stack(name: str) -> IncidentResponseSettings:
    return load_settings(read_stack_config(load_stack_config(name))).incident_response


def test_dev_runs_without_incident_manager_and_prod_with_two_contacts_and_two_stages() -> None:
    dev, prod = stack("dev"), stack("prod")
    assert dev.incident_manager.enabled is False
    assert prod.incident_manager.enabled is True
    assert [c.alias for c in prod.incident_manager.contacts] == ["iot-oncall-primary", "iot-security-lead"]
    escalation = prod.incident_manager.escalation
    assert escalation is not None
    assert [(stage.contacts, stage.minutes) for stage in escalation.stages] == [
        (("iot-oncall-primary",), 10), (("iot-security-lead",), 15),
    ]
    assert prod.incident_manager.replication_set.regions == ("us-east-1", "us-west-2")
    # Environments differ where it matters: prod gathers bigger storms, keeps logs longer, rates higher.
    assert prod.intake.batch_size > dev.intake.batch_size
    assert prod.log_retention_days > dev.log_retention_days
    assert prod.impact_rules.default < dev.impact_rules.default


def test_defaults_follow_aws_advice_and_the_intake_contract() -> None:
    settings = response({})
    assert settings.incident_manager.enabled is False
    assert settings.intake.visibility_timeout_seconds == 6 * settings.intake.timeout_seconds
    assert settings.audit_incident_checks == CRITICAL_AUDIT_CHECKS
    assert json.loads(settings.impact_rules.to_json()) == {
        "default": 3, "byProfile": {}, "byConfidence": {"HIGH": 2, "MEDIUM": 3, "LOW": 4},
    }
    assert json.loads(settings.audit_routing_json()) == {"incidentChecks": list(CRITICAL_AUDIT_CHECKS)}
    assert settings.runbook_name == "fleetguard-test-iot-incident"
    assert settings.incident_manager.incident.dedupe_string is None


def test_impact_rules_by_profile_and_confidence_reach_the_json() -> None:
    settings = response({"impactRules": {"default": 4, "byProfile": {"rules": 1}, "byConfidence": {"HIGH": 2}}})
    assert json.loads(settings.impact_rules.to_json()) == {
        "default": 4, "byProfile": {"rules": 1}, "byConfidence": {"HIGH": 2},
    }


def test_a_contact_without_an_engagement_plan_is_paged_on_every_channel_at_once() -> None:
    settings = response(manager())
    (person,) = settings.incident_manager.contacts
    assert [(stage.duration_minutes, stage.channels) for stage in person.engagement_plan] == [(0, ("mail", "phone"))]
    assert person.retry_interval_minutes == 1


def test_customer_keys_per_replication_region() -> None:
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = response(manager(replicationSet={"regions": ["us-east-1"], "key": "customer",
                                                "customerKeyArns": {"us-east-1": arn}}))
    assert settings.incident_manager.replication_set.customer_key_arns == {"us-east-1": arn}


OTHER_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(("section", "key", "message"), [
    ({"bogus": 1}, "incidentResponse.bogus", "unknown key"),
    (manager(contacts=[]), "incidentManager.contacts", "at least one contact"),
    (manager(replicationSet={}), "replicationSet.regions", "required when Incident Manager is enabled"),
    (manager(replicationSet={"regions": ["us-east-1", "us-east-2", "us-west-1", "us-west-2"]}),
     "replicationSet.regions", "1 to 3 regions"),
    (manager(replicationSet={"regions": ["us-east-1", "us-east-1"]}), "replicationSet.regions", "more than once"),
    (manager(replicationSet={"regions": ["US East"]}), "replicationSet.regions[0]", "matching"),
    (manager(replicationSet={"regions": ["us-east-1"], "key": "customer"}),
     "customerKeyArns.us-east-1", "required when key is customer"),
    (manager(replicationSet={"regions": ["us-east-1"], "customerKeyArns": {"us-east-1": OTHER_ARN}}),
     "replicationSet.customerKeyArns", "only allowed when key is customer"),
    (manager(replicationSet={"regions": ["us-east-1"], "key": "customer", "customerKeyArns": {"us-east-1": OTHER_ARN}}),
     "customerKeyArns.us-east-1", "a key in that region"),
    (manager(replicationSet={"regions": ["us-east-1"], "key": "customer", "customerKeyArns": {
        "us-east-1": OTHER_ARN.replace("us-west-2", "us-east-1"), "us-west-2": OTHER_ARN}}),
     "customerKeyArns.us-west-2", "not one of replicationSet.regions"),
    (manager(replicationSet={"regions": ["us-east-1"], "key": "byok"}), "replicationSet.key", "aws-owned, customer"),
    (manager(contacts=[contact("On-Call")]), "contacts[0].alias", "matching"),
    (manager(contacts=[contact(displayName="J. Smith!")]), "contacts[0].displayName", "matching"),
    (manager(contacts=[contact(channels=[])]), "contacts[0].channels", "at least one contact channel"),
    (manager(contacts=[contact(channels=[{"name": "f", "type": "FAX", "address": "+15555550100"}])]),
     "contacts[0].channels[0].type", "EMAIL, SMS, VOICE"),
    (manager(contacts=[contact(channels=[{"name": "m", "type": "EMAIL", "address": "not-an-address"}])]),
     "contacts[0].channels[0].address", "email address"),
    (manager(contacts=[contact(channels=[{"name": "v", "type": "VOICE", "address": "555-0100"}])]),
     "contacts[0].channels[0].address", "E.164"),
    (manager(contacts=[contact(channels=[{"name": "m", "type": "EMAIL", "address": "a@example.com"},
                                         {"name": "m", "type": "EMAIL", "address": "b@example.com"}])]),
     "contacts[0].channels", "channel name 'm' is used more than once"),
    (manager(contacts=[contact(engagementPlan=[{"durationMinutes": 31, "channels": ["mail"]}])]),
     "contacts[0].engagementPlan[0].durationMinutes", "0..30"),
    (manager(contacts=[contact(engagementPlan=[{"durationMinutes": 5, "channels": ["pager"]}])]),
     "contacts[0].engagementPlan[0].channels", "'pager' is not one of this contact's channels"),
    (manager(contacts=[contact(engagementPlan=[])]), "contacts[0].engagementPlan", "at least one stage"),
    (manager(contacts=[contact(retryIntervalMinutes=61)]), "contacts[0].retryIntervalMinutes", "0..60"),
    (manager(contacts=[contact("a"), contact("a")]), "incidentManager.contacts", "alias 'a' is used more than once"),
    (manager(contacts=[contact(f"c{n}") for n in range(6)]), "incidentManager.contacts", "at most 5 contacts"),
    (manager(escalation={"alias": "esc", "displayName": "Escalation", "stages": [{"contacts": ["ghost"],
                                                                                 "minutes": 5}]}),
     "escalation.stages[0].contacts", "'ghost' is not a configured contact alias"),
    (manager(escalation={"alias": "esc", "displayName": "Escalation", "stages": [{"contacts": ["oncall"],
                                                                                 "minutes": 45}]}),
     "escalation.stages[0].minutes", "0..30"),
    (manager(escalation={"alias": "oncall", "displayName": "Escalation", "stages": [{"contacts": ["oncall"],
                                                                                    "minutes": 5}]}),
     "escalation.alias", "needs its own"),
    (manager(escalation={"alias": "esc", "displayName": "Escalation", "stages": []}),
     "escalation.stages", "at least one stage"),
    (manager(notificationTopicArns=[f"arn:aws:sns:us-east-1:123456789012:t{n}" for n in range(10)]),
     "incidentManager.notificationTopicArns", "at most 9"),
    (manager(notificationTopicArns=["arn:aws:sqs:us-east-1:123456789012:queue"]),
     "notificationTopicArns[0]", "matching"),
    (manager(incident={"title": "x" * 201}), "incident.title", "at most 200 characters"),
    (manager(incident={"summary": "x" * 4001}), "incident.summary", "at most 4000 characters"),
    (manager(incident={"dedupeString": ""}), "incident.dedupeString", "at least 1 characters"),
    (manager(incident={"dedupeString": "x" * 1001}), "incident.dedupeString", "at most 1000 characters"),
    (manager(responsePlanName="plan with spaces"), "incidentManager.responsePlanName", "matching"),
    ({"runbookName": "AWS-ContainDevice"}, "incidentResponse.runbookName", "SSM reserves"),
    ({"runbookName": "rb"}, "incidentResponse.runbookName", "matching"),
    ({"impactRules": {"default": 6}}, "impactRules.default", "1..5"),
    ({"impactRules": {"byProfile": {"rules": 0}}}, "impactRules.byProfile.rules", "1..5"),
    ({"impactRules": {"byProfile": {"bad name": 2}}}, "impactRules.byProfile.bad name", "security profile name"),
    ({"impactRules": {"byConfidence": {"EXTREME": 1}}}, "impactRules.byConfidence.EXTREME", "unknown key"),
    ({"auditRouting": {"incidentChecks": ["NOT_A_CHECK"]}}, "auditRouting.incidentChecks[0]", "expected one of"),
    ({"storm": {"threshold": 1}}, "storm.threshold", "2..1000"),
    ({"storm": {"threshold": 200}, "queue": {"batchSize": 100}}, "storm.threshold", "must fit in one batch"),
    ({"storm": {"windowSeconds": 301}}, "storm.windowSeconds", "0..300"),
    ({"storm": {"windowSeconds": 0}}, "storm.windowSeconds", "at least 1 second"),
    ({"queue": {"batchSize": 1001}}, "queue.batchSize", "1..1000"),
    ({"queue": {"maxReceiveCount": 0}}, "queue.maxReceiveCount", "1..1000"),
    ({"queue": {"visibilityTimeoutSeconds": 30}, "intake": {"timeoutSeconds": 60}},
     "queue.visibilityTimeoutSeconds", "shorter than the function timeout"),
    ({"queue": {"retentionSeconds": 30}}, "queue.retentionSeconds", "60..1209600"),
    ({"queue": {"maxConcurrency": 1}}, "queue.maxConcurrency", "2..1000"),
    ({"intake": {"timeoutSeconds": 901}}, "intake.timeoutSeconds", "1..900"),
    ({"intake": {"memoryMb": 64}}, "intake.memoryMb", "128..10240"),
    ({"intake": {"logLevel": "TRACE"}}, "intake.logLevel", "DEBUG, INFO"),
    ({"intake": {"retryMode": "legacy"}}, "intake.retryMode", "standard, adaptive"),
    ({"logRetentionDays": 42}, "incidentResponse.logRetentionDays", "expected one of"),
])
def test_each_mistake_names_its_key(section: dict[str, Any], key: str, message: str) -> None:
    problem = only_problem(section)
    path, _, text = problem.partition(": ")
    assert path.startswith(KEY)
    assert path.endswith(key), problem
    assert message in text, problem


def test_disabled_incident_manager_still_validates_its_contacts() -> None:
    section = manager(enabled=False, contacts=[contact(channels=[{"name": "x", "type": "PAGER", "address": "1"}])])
    problem = only_problem(section)
    assert problem.startswith(f"{KEY}.incidentManager.contacts[0].channels[0].type")

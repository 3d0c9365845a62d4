"""``fleetguard:incidentResponse.opsCenter``: on by default exactly without Incident Manager; every mistake
names its key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import ConfigError, load_settings, read_stack_config
from settings.opscenter import OpsCenterSettings, SlackChannel, StageTarget, TeamsChannel
from tests.settings.config_support import BASE

KEY = "fleetguard:incidentResponse.opsCenter"
TOPIC = "arn:aws:sns:us-east-1:123456789012:security-leads"


def ops_center(section: dict[str, Any] | None, **response: Any) -> OpsCenterSettings:
    incident_response = {**response, **({"opsCenter": section} if section is not None else {})}
    return load_settings({**BASE, "incidentResponse": incident_response}).incident_response.ops_center


def problems(section: dict[str, Any], **response: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        ops_center(section, **response)
    return caught.value.problems


def stage(name: str = "oncall", minutes: int = 5, **notify: Any) -> dict[str, Any]:
    return {"name": name, "minutes": minutes, "notify": notify or {"email": ["oncall@example.com"]}}


def test_on_by_default_without_incident_manager_with_the_documented_defaults() -> None:
    settings = ops_center(None)
    assert settings.enabled is True
    assert settings.category == "Security"
    assert settings.severity_by_impact == {"1": "1", "2": "2", "3": "3", "4": "4", "5": "4"}
    assert settings.escalation == ()
    assert settings.chat.enabled is False


def test_off_by_default_with_incident_manager_and_refused_when_switched_on() -> None:
    manager = {"enabled": True, "replicationSet": {"regions": ["us-east-1"]},
               "contacts": [{"alias": "oncall", "displayName": "On Call",
                             "channels": [{"name": "mail", "type": "EMAIL", "address": "a@example.com"}]}]}
    assert ops_center(None, incidentManager=manager).enabled is False
    [problem] = problems({"enabled": True}, incidentManager=manager)
    assert problem.startswith(f"{KEY}.enabled: OpsCenter incidents replace Incident Manager")


def test_stages_keep_their_order_and_targets() -> None:
    settings = ops_center({"escalation": [
        stage("oncall", 5, email=["oncall@example.com"], sms=["+15555550100"]),
        stage("lead", 15, topicArn=TOPIC),
    ]})
    assert [(s.name, s.minutes, s.target) for s in settings.escalation] == [
        ("oncall", 5, StageTarget(None, ("oncall@example.com",), ("+15555550100",))),
        ("lead", 15, StageTarget(TOPIC)),
    ]


@pytest.mark.parametrize(("section", "expected"), [
    ({"category": "Security Incident"}, f"{KEY}.category: expected one of Availability, Cost, Performance, Recovery, "
                                        "Security (got 'Security Incident')"),
    ({"severityByImpact": {"2": "5"}}, f"{KEY}.severityByImpact.2: expected one of 1, 2, 3, 4 (got '5')"),
    ({"severityByImpact": {"6": "1"}}, f"{KEY}.severityByImpact.6: unknown key; expected one of 1, 2, 3, 4, 5"),
    ({"escalation": [stage("on call")]},
     f"{KEY}.escalation[0].name: expected a string matching [a-zA-Z0-9-]{{1,32}} (got 'on call')"),
    ({"escalation": [stage("x" * 33)]},
     f"{KEY}.escalation[0].name: expected a string matching [a-zA-Z0-9-]{{1,32}} (got '{'x' * 33}')"),
    ({"escalation": [stage(minutes=0)]}, f"{KEY}.escalation[0].minutes: expected a whole number in 1..1440 (got 0)"),
    ({"escalation": [stage(minutes=1441)]},
     f"{KEY}.escalation[0].minutes: expected a whole number in 1..1440 (got 1441)"),
    ({"escalation": [stage("a", 10), stage("b", 10)]},
     f"{KEY}.escalation[1].minutes: stages are ordered by time; expected more than the previous stage's 10 (got 10)"),
    ({"escalation": [stage("a", 5), stage("a", 10)]}, f"{KEY}.escalation: stage name 'a' is used more than once "
                                                      "(got [{\"name\": \"a\", \"minutes\": 5, \"notify\": {\"email\": "
                                                      "[\"oncall@example.com\"]}}, {\"name\": \"a\", \"minutes\": 10, "
                                                      "\"notify\": {\"email\": [\"oncall@example.com\"]}}])"),
    ({"escalation": [{"name": "a", "minutes": 5, "notify": {}}]},
     f"{KEY}.escalation[0].notify: expected topicArn (an existing SNS topic) or email and/or sms addresses (got {{}})"),
    ({"escalation": [stage(sms=["5555550100"])]},
     f"{KEY}.escalation[0].notify.sms[0]: expected a string matching \\+[1-9][0-9]{{6,14}} (got '5555550100')"),
    ({"escalation": [stage(topicArn="arn:aws:sqs:us-east-1:123456789012:q")]},
     f"{KEY}.escalation[0].notify.topicArn: expected a string matching "
     "arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256} (got 'arn:aws:sqs:us-east-1:123456789012:q')"),
    ({"chat": {"enabled": True}}, f"{KEY}.chat.enabled: a chat channel is one Slack channel or one Microsoft Teams "
                                  "channel; expected exactly one of slack, teams (got true)"),
    ({"chat": {"enabled": True, "slack": {"workspaceId": "t07", "channelId": "C07"}}},
     f"{KEY}.chat.slack.workspaceId: expected a string matching [0-9A-Z]{{1,255}} (got 't07')"),
])
def test_each_mistake_is_one_problem_naming_its_key(section: dict[str, Any], expected: str) -> None:
    assert problems(section) == [expected]


def test_a_stage_notifies_a_topic_or_subscriptions_not_both() -> None:
    [problem] = problems({"escalation": [stage(topicArn=TOPIC, email=["a@example.com"])]})
    assert problem.startswith(f"{KEY}.escalation[0].notify.topicArn: a stage notifies either an existing topic")


def test_at_most_five_stages() -> None:
    six = [stage(f"s{index}", index + 1) for index in range(6)]
    assert problems({"escalation": six}) == [f"{KEY}.escalation: expected at most 5 stages (got {json.dumps(six)})"]


def test_chat_channels() -> None:
    slack = ops_center({"chat": {"enabled": True, "slack": {"workspaceId": "T07EA123LEP", "channelId": "C07EZ1"}}})
    assert slack.chat.slack == SlackChannel("T07EA123LEP", "C07EZ1")
    teams = {"teamId": "5f1c3b2a-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "channelId": "19%3ab2c%40thread.tacv2",
             "tenantId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}
    assert ops_center({"chat": {"enabled": True, "teams": teams}}).chat.teams == TeamsChannel(
        teams["teamId"], teams["channelId"], teams["tenantId"])


def test_dev_escalates_through_two_stages() -> None:
    dev = load_settings(read_stack_config(load_stack_config("dev"))).incident_response.ops_center
    assert dev.enabled is True
    assert [(s.name, s.minutes) for s in dev.escalation] == [("platform-oncall", 15), ("platform-lead", 60)]

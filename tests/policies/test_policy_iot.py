"""IoT policy rules over gRPC: wildcard actions, wildcard resources, client id bound to the thing."""

from __future__ import annotations

import json

import pytest

from harness.analyzer import EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import (
    PREFIX,
    THING,
    allow,
    deny,
    device_policy,
    document,
    kms_key,
    resource,
    unknown,
    violations,
)

IOT_RULES = ("iot-policy-no-wildcard-actions", "iot-policy-no-wildcard-resources",
             "iot-policy-client-id-bound-to-thing")


def test_a_least_privilege_device_policy_passes_every_iot_rule(pack: PolicyPackProcess) -> None:
    result = pack.analyze(device_policy())

    assert not result.diagnostics
    assert not set(IOT_RULES) & set(result.not_applicable)


def test_a_quarantine_policy_may_deny_everything(pack: PolicyPackProcess) -> None:
    result = pack.analyze(device_policy(document(deny("iot:*", "*"))))

    assert not result.diagnostics


@pytest.mark.parametrize(("actions", "reported"), [
    ("*", "*"),
    ("iot:*", "iot:*"),
    (["iot:Connect", "iot:Get*"], "iot:Get*"),
])
def test_wildcard_actions_in_allow_statements_are_blocked(
    pack: PolicyPackProcess, actions: object, reported: str,
) -> None:
    policy = device_policy(document(allow(actions, f"{PREFIX}:client/{THING}")))

    messages = violations(pack.analyze(policy), "iot-policy-no-wildcard-actions")

    assert len(messages) == 1
    assert f"wildcard action(s) {reported}" in messages[0]


def test_not_action_in_an_allow_statement_is_blocked(pack: PolicyPackProcess) -> None:
    statement = {"Effect": "Allow", "NotAction": "iot:DeleteThing", "Resource": f"{PREFIX}:client/{THING}"}

    messages = violations(pack.analyze(device_policy(document(statement))), "iot-policy-no-wildcard-actions")

    assert any("NotAction" in message for message in messages)


@pytest.mark.parametrize(("action", "resource_arn"), [
    ("iot:Connect", "*"),
    ("iot:Connect", f"{PREFIX}:client/*"),
    ("iot:Publish", f"{PREFIX}:topic/*"),
    ("iot:Subscribe", f"{PREFIX}:topicfilter/#"),
    ("iot:Receive", f"{PREFIX}:*"),
])
def test_mqtt_actions_on_every_client_or_topic_are_blocked(
    pack: PolicyPackProcess, action: str, resource_arn: str,
) -> None:
    policy = device_policy(document(allow(action, resource_arn)))

    messages = violations(pack.analyze(policy), "iot-policy-no-wildcard-resources")

    assert len(messages) == 1
    assert action in messages[0]
    assert resource_arn in messages[0]


def test_a_wildcard_action_with_a_wildcard_resource_trips_both_rules(pack: PolicyPackProcess) -> None:
    result = pack.analyze(device_policy(document(allow("iot:*", "*"))))

    assert {"iot-policy-no-wildcard-actions", "iot-policy-no-wildcard-resources",
            "iot-policy-client-id-bound-to-thing"} <= result.policy_names()
    assert all(diagnostic.enforcement_level is EnforcementLevel.MANDATORY for diagnostic in result.diagnostics)


def test_scoped_topic_prefixes_are_not_wildcard_resources(pack: PolicyPackProcess) -> None:
    policy = device_policy(document(allow("iot:Publish", f"{PREFIX}:topic/fleet/telemetry/*")))

    assert not violations(pack.analyze(policy), "iot-policy-no-wildcard-resources")


@pytest.mark.parametrize("client", [f"{PREFIX}:client/sensor-001", f"{PREFIX}:client/${{iot:ClientId}}"])
def test_connecting_as_anything_but_the_thing_name_is_blocked(pack: PolicyPackProcess, client: str) -> None:
    policy = device_policy(document(allow("iot:Connect", client)))

    messages = violations(pack.analyze(policy), "iot-policy-client-id-bound-to-thing")

    assert len(messages) == 1
    assert client in messages[0]


def test_topic_resources_beside_connect_are_not_client_ids(pack: PolicyPackProcess) -> None:
    # One statement for several actions: Connect is only evaluated against the client ARN.
    statement = allow(["iot:Connect", "iot:Publish"], [f"{PREFIX}:client/{THING}", f"{PREFIX}:topic/fleet/{THING}"])

    assert not pack.analyze(device_policy(document(statement))).diagnostics


def test_connect_on_not_resource_is_blocked(pack: PolicyPackProcess) -> None:
    statement = {"Effect": "Allow", "Action": "iot:Connect", "NotResource": f"{PREFIX}:client/admin"}

    result = pack.analyze(device_policy(document(statement)))

    assert violations(result, "iot-policy-client-id-bound-to-thing")
    assert violations(result, "iot-policy-no-wildcard-resources")


def test_the_native_iot_policy_document_is_checked_too(pack: PolicyPackProcess) -> None:
    native = resource("aws-native:iot:Policy", "native-device-policy", {
        "policyName": "native-device", "policyDocument": json.loads(document(allow("iot:*", "*"))),
    })

    assert {"iot-policy-no-wildcard-actions", "iot-policy-no-wildcard-resources"} <= pack.analyze(native).policy_names()


def test_an_unknown_policy_document_fails_closed(pack: PolicyPackProcess) -> None:
    result = pack.analyze(device_policy(unknown()))

    for rule in IOT_RULES:
        [message] = violations(result, rule)
        assert message.startswith("cannot verify at the update")
        assert "policy" in message
    assert all(diagnostic.mandatory for diagnostic in result.diagnostics)


def test_an_unknown_client_resource_fails_closed_but_unknown_topics_do_not(pack: PolicyPackProcess) -> None:
    # Unknown ARNs inside a structured (aws-native) document: a topic ARN output is never a wildcard,
    # but an unknown client ARN may not be bound to the thing.
    native = resource("aws-native:iot:Policy", "native-device-policy", {
        "policyName": "native-device",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": [unknown()]},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": [unknown()]},
        ]},
    })

    result = pack.analyze(native)

    assert not violations(result, "iot-policy-no-wildcard-resources")
    [message] = violations(result, "iot-policy-client-id-bound-to-thing")
    assert message.startswith("cannot verify at the update")


def test_a_document_that_is_not_json_is_reported(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(device_policy("{not json")), "iot-policy-no-wildcard-actions")

    assert "not valid JSON" in message


def test_iot_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(kms_key())

    for rule in IOT_RULES:
        assert "does not govern aws:kms/key:Key" in result.not_applicable[rule]

"""IoT policy rules over gRPC: wildcard actions, wildcard resources, client id bound to the thing, topic scope,
shadow and job actions on the own thing only, no Allow by exclusion."""

from __future__ import annotations

import json

import pytest

from harness.analyzer import EnforcementLevel, PolicyPackProcess
from policies.fleetguard_policies.iot import device_policy_findings
from policies.fleetguard_policies.values import UNKNOWN, CannotVerify
from tests.policies.stack_builders import (
    DEVICE_POLICY_DOCUMENT,
    PREFIX,
    THING,
    allow,
    deny,
    device_policy,
    document,
    kms_key,
    native_device_policy,
    resource,
    unknown,
    violations,
)

IOT_RULES = ("iot-policy-no-wildcard-actions", "iot-policy-no-wildcard-resources",
             "iot-policy-client-id-bound-to-thing", "iot-policy-topic-scope", "iot-policy-own-thing-only",
             "iot-policy-no-allow-not-action")
TOPIC_SCOPE = "iot-policy-topic-scope"
OWN_THING = "iot-policy-own-thing-only"
NO_EXCLUSION = "iot-policy-no-allow-not-action"
CLIENT_BINDING = "iot-policy-client-id-bound-to-thing"


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


# -- client ids: the knob for certificate-bound client ids ---------------------------------------------------

def test_a_configured_certificate_variable_binds_the_client_id(pack: PolicyPackProcess) -> None:
    client = f"{PREFIX}:client/${{iot:Certificate.Subject.CommonName}}"
    policy = device_policy(document(allow("iot:Connect", client)))
    assert violations(pack.analyze(policy), CLIENT_BINDING)

    pack.configure({CLIENT_BINDING: {"allowedClientIds": ["${iot:Certificate.Subject.CommonName}"]}})

    assert not violations(pack.analyze(policy), CLIENT_BINDING)
    [message] = violations(pack.analyze(device_policy()), CLIENT_BINDING)
    assert "client/${iot:Certificate.Subject.CommonName}" in message


# -- topic scope --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", [
    f"{PREFIX}:topic/dt/{THING}/telemetry",
    f"{PREFIX}:topic/dt/fleet/{THING}/*",
    f"{PREFIX}:topic/$aws/things/{THING}/shadow/*",
    f"{PREFIX}:topic/{THING}/#",
    f"{PREFIX}:topic/fleet/announcements",
])
def test_named_topics_and_wildcards_inside_the_thing_s_tree_pass(pack: PolicyPackProcess, topic: str) -> None:
    result = pack.analyze(device_policy(document(allow(["iot:Publish", "iot:Receive"], topic))))

    assert not violations(result, TOPIC_SCOPE)
    assert TOPIC_SCOPE not in result.not_applicable


@pytest.mark.parametrize(("action", "topic"), [
    ("iot:Publish", f"{PREFIX}:topic/dt/*"),
    ("iot:Receive", f"{PREFIX}:topic/cmd/+/reboot"),
    ("iot:Subscribe", f"{PREFIX}:topicfilter/$aws/things/+/shadow/update/accepted"),
    ("iot:Subscribe", f"{PREFIX}:topicfilter/#"),
    # The thing name must be a whole level: * would also match things whose names start with this one's.
    ("iot:Publish", f"{PREFIX}:topic/dt/{THING}*"),
    ("iot:Publish", "*"),
    ("iot:*", f"{PREFIX}:topic/fleet/?"),
])
def test_wildcard_topics_outside_the_thing_s_tree_are_blocked(
    pack: PolicyPackProcess, action: str, topic: str,
) -> None:
    [message] = violations(pack.analyze(device_policy(document(allow(action, topic)))), TOPIC_SCOPE)

    assert f"wildcard topic(s) {topic}" in message


def test_topic_scope_judges_each_action_by_its_resource_kind(pack: PolicyPackProcess) -> None:
    # Subscribe is authorized against topicfilter/ resources only, so a wildcard topic/ ARN beside it
    # grants nothing; Publish on the same statement makes it count.
    subscribe_only = allow("iot:Subscribe", [f"{PREFIX}:topicfilter/cmd/{THING}/#", f"{PREFIX}:topic/cmd/*"])
    with_publish = allow(["iot:Subscribe", "iot:Publish"], [f"{PREFIX}:topicfilter/cmd/{THING}/#",
                                                            f"{PREFIX}:topic/cmd/*"])

    assert not violations(pack.analyze(device_policy(document(subscribe_only))), TOPIC_SCOPE)
    [message] = violations(pack.analyze(device_policy(document(with_publish))), TOPIC_SCOPE)
    assert f"{PREFIX}:topic/cmd/*" in message
    assert "topicfilter" not in message


def test_a_configured_shared_prefix_allows_its_wildcards(pack: PolicyPackProcess) -> None:
    broadcast = device_policy(document(allow("iot:Subscribe", f"{PREFIX}:topicfilter/fleet/broadcast/#")))
    lookalike = device_policy(document(allow("iot:Subscribe", f"{PREFIX}:topicfilter/fleet/broadcasts/#")))
    pack.configure({TOPIC_SCOPE: {"allowedTopicPrefixes": ["fleet/broadcast"]}})

    assert not violations(pack.analyze(broadcast), TOPIC_SCOPE)
    [message] = violations(pack.analyze(lookalike), TOPIC_SCOPE)
    assert "allowedTopicPrefixes (fleet/broadcast)" in message


def test_deny_statements_may_use_any_topic(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(device_policy(document(deny("iot:Publish", f"{PREFIX}:topic/*")))),
                          TOPIC_SCOPE)


# -- shadows and jobs on the own thing only -----------------------------------------------------------------

@pytest.mark.parametrize("thing", [f"{PREFIX}:thing/{THING}", f"{PREFIX}:thing/{THING}/*",
                                   f"{PREFIX}:thing/{THING}/config"])
def test_shadow_and_job_actions_on_the_own_thing_pass(pack: PolicyPackProcess, thing: str) -> None:
    statement = allow(["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:GetPendingJobExecutions",
                       "iot:UpdateJobExecution"], thing)

    result = pack.analyze(device_policy(document(statement)))

    assert not violations(result, OWN_THING)
    assert OWN_THING not in result.not_applicable


@pytest.mark.parametrize(("action", "thing"), [
    ("iot:UpdateThingShadow", f"{PREFIX}:thing/*"),
    ("iot:GetThingShadow", f"{PREFIX}:thing/sensor-001"),
    ("iot:DeleteThingShadow", "*"),
    ("iot:DescribeJobExecution", f"{PREFIX}:*"),
    ("iot:StartNextPendingJobExecution", f"{PREFIX}:thing/{THING}-*"),
    ("iot:*ThingShadow", f"{PREFIX}:thing/+"),
])
def test_shadow_and_job_actions_on_other_things_are_blocked(
    pack: PolicyPackProcess, action: str, thing: str,
) -> None:
    [message] = violations(pack.analyze(device_policy(document(allow(action, thing)))), OWN_THING)

    assert thing in message
    assert "its own shadows and jobs" in message


def test_shadow_actions_on_not_resource_are_blocked(pack: PolicyPackProcess) -> None:
    statement = {"Effect": "Allow", "Action": "iot:UpdateThingShadow", "NotResource": f"{PREFIX}:thing/admin"}

    [message] = violations(pack.analyze(device_policy(document(statement))), OWN_THING)

    assert "NotResource" in message


def test_a_thing_arn_unknown_at_the_update_fails_closed(pack: PolicyPackProcess) -> None:
    policy = native_device_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:UpdateThingShadow", "Resource": [unknown()]},
    ]})

    [message] = violations(pack.analyze(policy), OWN_THING)

    assert message.startswith("cannot verify at the update")


# -- no Allow by exclusion ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("statement", "reported"), [
    ({"Effect": "Allow", "NotAction": "iot:DeleteThing", "Resource": f"{PREFIX}:client/{THING}"}, "NotAction"),
    ({"Effect": "Allow", "Action": "iot:Publish", "NotResource": f"{PREFIX}:topic/admin"}, "NotResource"),
    ({"Sid": "Both", "Effect": "Allow", "NotAction": "iot:Connect", "NotResource": "x"}, "NotAction and NotResource"),
])
def test_allow_by_exclusion_is_blocked(pack: PolicyPackProcess, statement: dict[str, object], reported: str) -> None:
    [message] = violations(pack.analyze(device_policy(document(statement))), NO_EXCLUSION)

    assert f"is an Allow with {reported}" in message


def test_deny_by_exclusion_confines_a_device_and_passes(pack: PolicyPackProcess) -> None:
    confine = {"Effect": "Deny", "Action": "iot:Publish", "NotResource": f"{PREFIX}:topic/forensics/{THING}/*"}

    result = pack.analyze(device_policy(document(confine)))

    assert not violations(result, NO_EXCLUSION)
    assert NO_EXCLUSION not in result.not_applicable


# -- both providers, and the preview ------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [TOPIC_SCOPE, OWN_THING, NO_EXCLUSION])
def test_the_new_rules_judge_the_aws_native_policy_too(pack: PolicyPackProcess, rule: str) -> None:
    broad = native_device_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:UpdateThingShadow"], "Resource": f"{PREFIX}:*"},
        {"Effect": "Allow", "NotAction": "iot:Connect", "Resource": f"{PREFIX}:client/{THING}"},
    ]})

    assert violations(pack.analyze(broad), rule)


def test_a_policy_document_unknown_at_preview_is_advisory_for_every_rule(preview_pack: PolicyPackProcess) -> None:
    result = preview_pack.analyze(device_policy(unknown()))

    assert result.policy_names() == set(IOT_RULES)
    assert not [item for item in result.diagnostics if item.mandatory]
    assert all("cannot verify until the update" in item.message for item in result.diagnostics)


# -- the same checks on a policy embedded elsewhere ---------------------------------------------------------

def test_an_embedded_policy_document_is_judged_by_every_device_policy_check() -> None:
    what = "the template's device policy"

    findings = device_policy_findings(document(allow("iot:*", "*")), what)

    assert {finding.split(": ", 1)[0] for finding in findings} == set(IOT_RULES) - {NO_EXCLUSION}
    assert all(finding.split(": ", 1)[1].startswith(what) for finding in findings)
    assert not device_policy_findings(json.loads(DEVICE_POLICY_DOCUMENT), what)
    with pytest.raises(CannotVerify):
        device_policy_findings(UNKNOWN, what)

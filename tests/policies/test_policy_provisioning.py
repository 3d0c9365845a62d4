"""Provisioning rules over gRPC: a pre-provisioning hook, and policies inside templates held to the device
policy rules."""

from __future__ import annotations

import json

import pytest

from harness.analyzer import EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import (
    DEVICE_POLICY_DOCUMENT,
    PREFIX,
    THING,
    allow,
    ca_certificate,
    document,
    kms_key,
    provisioning_body,
    provisioning_template,
    unknown,
    violations,
)

HOOK = "provisioning-template-pre-provisioning-hook"
TEMPLATE_POLICY = "provisioning-template-policy"


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_a_hooked_template_with_a_least_privilege_policy_passes(pack: PolicyPackProcess, native: bool) -> None:
    result = pack.analyze(provisioning_template(native=native))

    assert not result.diagnostics
    assert not {HOOK, TEMPLATE_POLICY} & set(result.not_applicable)


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_a_fleet_provisioning_template_without_a_hook_is_blocked(pack: PolicyPackProcess, native: bool) -> None:
    [message] = violations(pack.analyze(provisioning_template(native=native, preProvisioningHook=None)), HOOK)

    assert "preProvisioningHook.targetArn is not set" in message


def test_the_template_type_defaults_to_fleet_provisioning(pack: PolicyPackProcess) -> None:
    template = provisioning_template(native=True, preProvisioningHook=None, templateType=None)

    assert violations(pack.analyze(template), HOOK)


def test_a_jitp_template_runs_no_hook_so_needs_none(pack: PolicyPackProcess) -> None:
    template = provisioning_template(native=True, preProvisioningHook=None, templateType="JITP")

    assert not violations(pack.analyze(template), HOOK)


def test_the_hook_requirement_can_be_turned_off(pack: PolicyPackProcess) -> None:
    pack.configure({HOOK: {"requirePreProvisioningHook": False}})

    assert not violations(pack.analyze(provisioning_template(preProvisioningHook=None)), HOOK)


def test_an_unknown_hook_target_counts_as_set(pack: PolicyPackProcess) -> None:
    # The hook function's ARN is another resource's output; that it is set is what the rule needs.
    template = provisioning_template(preProvisioningHook={"targetArn": unknown(), "payloadVersion": "2020-04-01"})

    assert not violations(pack.analyze(template), HOOK)


def test_an_unknown_template_type_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    template = provisioning_template(preProvisioningHook=None, type=unknown())

    at_preview = [item for item in preview_pack.analyze(template).diagnostics if item.policy_name == HOOK]
    [at_update] = violations(pack.analyze(template), HOOK)

    assert [item.enforcement_level for item in at_preview] == [EnforcementLevel.ADVISORY]
    assert at_update.startswith("cannot verify at the update")


@pytest.mark.parametrize(("policy_document", "failed_rule", "reported"), [
    (document(allow("iot:*", f"{PREFIX}:client/{THING}")), "iot-policy-no-wildcard-actions", "iot:*"),
    (document(allow("iot:Publish", f"{PREFIX}:topic/*")), "iot-policy-no-wildcard-resources", "topic/*"),
    (document(allow("iot:Connect", f"{PREFIX}:client/sensor-*")), "iot-policy-client-id-bound-to-thing",
     "client/sensor-*"),
    (document(allow("iot:Subscribe", f"{PREFIX}:topicfilter/fleet/+/telemetry")), "iot-policy-topic-scope",
     "topicfilter/fleet/+/telemetry"),
    (document(allow("iot:UpdateThingShadow", f"{PREFIX}:thing/*")), "iot-policy-own-thing-only", "thing/*"),
    (document({"Effect": "Allow", "Action": "iot:Connect", "NotResource": f"{PREFIX}:client/admin"}),
     "iot-policy-no-allow-not-action", "NotResource"),
])
def test_a_template_policy_that_fails_a_device_policy_rule_is_blocked(
    pack: PolicyPackProcess, policy_document: str, failed_rule: str, reported: str,
) -> None:
    template = provisioning_template(body=provisioning_body(DEVICE_POLICY_DOCUMENT, policy_document))

    messages = violations(pack.analyze(template), TEMPLATE_POLICY)

    assert any(message.startswith(f"{failed_rule}: templateBody policy resource 'policy2'") and reported in message
               for message in messages), messages
    assert not any("'policy1'" in message for message in messages)


def test_the_device_policy_settings_apply_inside_templates(pack: PolicyPackProcess) -> None:
    broadcast = document(allow("iot:Subscribe", f"{PREFIX}:topicfilter/fleet/broadcast/#"))
    template = provisioning_template(body=provisioning_body(broadcast))

    before = violations(pack.analyze(template), TEMPLATE_POLICY)
    pack.configure({TEMPLATE_POLICY: {"allowedTopicPrefixes": ["fleet/broadcast/"]}})
    after = violations(pack.analyze(template), TEMPLATE_POLICY)

    assert [message.split(":", 1)[0] for message in before] == ["iot-policy-topic-scope"]
    assert not after


def test_a_template_policy_given_as_an_object_is_checked_too(pack: PolicyPackProcess) -> None:
    broad = {"Version": "2012-10-17", "Statement": [allow("*", "*")]}

    assert violations(pack.analyze(provisioning_template(body=provisioning_body(broad))), TEMPLATE_POLICY)


def test_a_template_that_names_an_existing_policy_has_nothing_to_check(pack: PolicyPackProcess) -> None:
    body = json.dumps({"Resources": {"policy": {"Type": "AWS::IoT::Policy",
                                                "Properties": {"PolicyName": "fleet-device"}}}})

    assert not violations(pack.analyze(provisioning_template(body=body)), TEMPLATE_POLICY)


def test_a_template_body_that_is_not_json_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(provisioning_template(body="{Resources:")), TEMPLATE_POLICY)

    assert "templateBody is not valid JSON" in message


def test_a_ca_just_in_time_template_is_checked_too(pack: PolicyPackProcess) -> None:
    broad = ca_certificate(native=True, auto_registration=True,
                           template=provisioning_body(document(allow("iot:*", "*"))))

    messages = violations(pack.analyze(broad), TEMPLATE_POLICY)

    assert any(message.startswith("iot-policy-no-wildcard-actions: registrationConfig.templateBody policy "
                                  "resource 'policy1'") for message in messages), messages


def test_an_unknown_template_body_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    template = provisioning_template(body=unknown())

    at_preview = [item for item in preview_pack.analyze(template).diagnostics if item.policy_name == TEMPLATE_POLICY]
    [at_update] = violations(pack.analyze(template), TEMPLATE_POLICY)

    assert [item.enforcement_level for item in at_preview] == [EnforcementLevel.ADVISORY]
    assert at_update.startswith("cannot verify at the update: templateBody is unknown")


def test_provisioning_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    key_result = pack.analyze(kms_key())
    ca_result = pack.analyze(ca_certificate())

    assert {HOOK, TEMPLATE_POLICY} <= set(key_result.not_applicable)
    assert HOOK in ca_result.not_applicable
    assert TEMPLATE_POLICY not in ca_result.not_applicable

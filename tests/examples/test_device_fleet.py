"""The example device-fleet stack (``examples/device_fleet``) under the organisation's fleet policy configs.

The stack runs under mocks in both phases of ``pulumi up`` and is judged by the running pack over gRPC:
``fleet-prod.json`` must let it through, at the preview (where ARNs are still unknown) and at the update.
Then one broken copy per IoT rule, each the change a careless edit of the program would register: the
prod config blocks it with exactly the rules it breaks, the dev config only warns about the same rules.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    AnalyzerResource,
    EnforcementLevel,
    PolicyPackProcess,
    PreviewReport,
    from_registrations,
    urn_for,
)
from harness.mockstack import REPO_ROOT, Phase, StackRun, run_stack

pytestmark = pytest.mark.slow

EXAMPLE = REPO_ROOT / "examples" / "device_fleet"
PROJECT = "device-fleet"
STACK = "prod"
FLEET_PROD = POLICY_CONFIG_DIR / "fleet-prod.json"
FLEET_DEV = POLICY_CONFIG_DIR / "fleet-dev.json"
THING = "${iot:Connection.Thing.ThingName}"
IOT = "arn:aws:iot:us-east-1:123456789012"
Breakage = Callable[[list[AnalyzerResource]], list[AnalyzerResource]]


@pytest.fixture(scope="module")
def runs() -> dict[Phase, StackRun]:
    return {phase: run_stack(STACK, root=EXAMPLE, project=PROJECT, phase=phase) for phase in Phase}


def judge(pack: PolicyPackProcess, config: Path, resources: list[AnalyzerResource]) -> PreviewReport:
    pack.configure(config)
    pack.configure_stack(STACK, PROJECT)
    return pack.preview(resources)


def described(report: PreviewReport) -> list[str]:
    return [f"{item.policy_name} ({item.enforcement_level}): {item.message}" for item in report.diagnostics]


# -- Editing what the program registered ------------------------------------------------------------------

def edited(resource: AnalyzerResource, drop: tuple[str, ...] = (), values: Mapping[str, Any] | None = None,
           ) -> AnalyzerResource:
    """The resource with ``drop`` removed from its inputs and outputs and ``values`` set in both."""
    values = values or {}

    def edit(properties: dict[str, Any]) -> dict[str, Any]:
        return {**{key: value for key, value in properties.items() if key not in drop}, **values}

    return dataclasses.replace(resource, inputs=edit(dict(resource.inputs)),
                               outputs=edit(dict(resource.outputs or {})))


def editing(resource_type: str, name: str, edit: Callable[[AnalyzerResource], AnalyzerResource]) -> Breakage:
    """A breakage that changes the one resource of this type and logical name."""
    def breaks(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
        targets = [item for item in resources if item.type == resource_type and item.name == name]
        assert len(targets) == 1, f"the example registers no single {resource_type} {name!r}"
        return [edit(item) if item is targets[0] else item for item in resources]

    return breaks


def dropping(resource_type: str, name: str, *keys: str) -> Breakage:
    return editing(resource_type, name, lambda item: edited(item, drop=keys))


def setting(resource_type: str, name: str, **values: Any) -> Breakage:
    return editing(resource_type, name, lambda item: edited(item, values=values))


def adding(resource_type: str, name: str, inputs: dict[str, Any]) -> Breakage:
    """A breakage that registers one more resource beside the example's own."""
    def breaks(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
        added = AnalyzerResource(urn=urn_for(STACK, PROJECT, resource_type, name), type=resource_type, name=name,
                                 inputs=inputs, outputs=inputs)
        return [*resources, added]

    return breaks


def with_statement(resource_type: str, name: str, document_key: str, statement: dict[str, Any]) -> Breakage:
    """One more statement in a policy document the example writes as a JSON string."""
    def edit(item: AnalyzerResource) -> AnalyzerResource:
        document = json.loads(item.inputs[document_key])
        document["Statement"].append(statement)
        return edited(item, values={document_key: json.dumps(document)})

    return editing(resource_type, name, edit)


def device_policy_with(statement: dict[str, Any]) -> Breakage:
    return with_statement("aws:iot/policy:Policy", "telemetry", "policy", statement)


def role_policy_with(role: str, statement: dict[str, Any]) -> Breakage:
    return with_statement("aws:iam/rolePolicy:RolePolicy", role, "policy", statement)


def allow(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def as_native_topic_rule(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    """The telemetry rule written with aws-native instead, leaving out whether it is disabled."""
    [classic] = [item for item in resources if item.type == "aws:iot/topicRule:TopicRule"]
    inputs = classic.inputs
    payload = {
        "sql": inputs["sql"], "awsIotSqlVersion": inputs["sqlVersion"],
        "actions": [{"kinesis": {"streamName": inputs["kineses"][0]["streamName"],
                                 "roleArn": inputs["kineses"][0]["roleArn"]}}],
        "errorAction": {"cloudwatchLogs": dict(inputs["errorAction"]["cloudwatchLogs"])},
    }
    native_inputs = {"ruleName": inputs["name"], "topicRulePayload": payload,
                     "tags": [{"key": key, "value": value} for key, value in inputs["tags"].items()]}
    native = dataclasses.replace(classic, type="aws-native:iot:TopicRule", inputs=native_inputs,
                                 outputs=native_inputs,
                                 urn=urn_for(STACK, PROJECT, "aws-native:iot:TopicRule", classic.name))
    return [native if item is classic else item for item in resources]


def with_template_policy(resources: list[AnalyzerResource]) -> list[AnalyzerResource]:
    """The provisioning template creates its own device policy, which lets a device do anything."""
    def edit(item: AnalyzerResource) -> AnalyzerResource:
        body = json.loads(item.inputs["templateBody"])
        body["Resources"]["telemetry"] = {"Type": "AWS::IoT::Policy", "Properties": {
            "PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [allow(["iot:*"], ["*"])]}),
        }}
        return edited(item, values={"templateBody": json.dumps(body)})

    return editing("aws:iot/provisioningTemplate:ProvisioningTemplate", "claim", edit)(resources)


def unsigned_authorizer(item: AnalyzerResource) -> AnalyzerResource:
    return edited(item, drop=("tokenKeyName", "tokenSigningPublicKeys"), values={"signingDisabled": True})


# Rules for any AWS stack, not IoT's own: the example complies with them, and the pack's own tests break them.
GENERAL_RULES = frozenset({"log-group-retention", "messaging-customer-managed-kms",
                           "kms-key-rotation", "sqs-dead-letter-queue", "iam-no-wildcard-actions", "required-tags"})
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUExample\n-----END CERTIFICATE-----\n"

# Each broken copy, the rules that must block it in prod, and those the dev config warns about (the same,
# except where the dev config deliberately asks less).
BREAKAGES: dict[str, tuple[Breakage, set[str], set[str] | None]] = {
    "device policy allows iot:* on its own thing": (
        device_policy_with(allow(["iot:*"], [f"{IOT}:thing/{THING}"])), {"iot-policy-no-wildcard-actions"}, None),
    "device policy publishes to every topic": (
        device_policy_with(allow(["iot:Publish"], [f"{IOT}:topic/*"])),
        {"iot-policy-no-wildcard-resources", "iot-policy-topic-scope"}, None),
    "device policy connects under any sensor client id": (
        device_policy_with(allow(["iot:Connect"], [f"{IOT}:client/sensor-*"])),
        {"iot-policy-client-id-bound-to-thing"}, None),
    "device policy reads every device's telemetry": (
        device_policy_with(allow(["iot:Subscribe"], [f"{IOT}:topicfilter/fleet/+/telemetry"])),
        {"iot-policy-topic-scope"}, None),
    "device policy updates other things' shadows": (
        device_policy_with(allow(["iot:UpdateThingShadow"], [f"{IOT}:thing/*"])),
        {"iot-policy-own-thing-only"}, None),
    "device policy allows with NotAction": (
        device_policy_with({"Effect": "Allow", "NotAction": ["iot:DeleteThingShadow"],
                            "Resource": [f"{IOT}:thing/{THING}"]}),
        {"iot-policy-no-wildcard-actions", "iot-policy-no-allow-not-action"}, None),
    "topic rule without error action": (
        dropping("aws:iot/topicRule:TopicRule", "telemetry", "errorAction"), {"topic-rule-error-action"}, None),
    "topic rule on the beta SQL version": (
        setting("aws:iot/topicRule:TopicRule", "telemetry", sqlVersion="beta"),
        {"topic-rule-sql-version-pinned"}, None),
    "topic rule republishes into a reserved topic": (
        setting("aws:iot/topicRule:TopicRule", "telemetry", republishes=[{
            "topic": "$aws/things/${topic(2)}/shadow/update",
            "roleArn": "arn:aws:iam::123456789012:role/device-fleet-prod-telemetry-rule"}]),
        {"topic-rule-no-reserved-republish"}, None),
    "topic rule leaves its disabled state implicit": (as_native_topic_rule, {"topic-rule-enabled-explicit"}, None),
    "topic rule role allows every Kinesis action": (
        role_policy_with("telemetry-rule", allow(["kinesis:*"], ["*"])),
        {"topic-rule-role-scoped", "iam-no-wildcard-actions"}, None),
    "authorizer without token signing": (
        editing("aws:iot/authorizer:Authorizer", "devices", unsigned_authorizer),
        {"authorizer-signing-enabled", "domain-configuration-authorizer-signing"}, None),
    "authorizer function invocable from any source": (
        dropping("aws:lambda/permission:Permission", "authorizer-invoke", "sourceArn"),
        {"authorizer-function-permission-scoped"}, None),
    "role alias credentials for twelve hours": (
        setting("aws:iot/roleAlias:RoleAlias", "device-uploads", credentialDuration=43200),
        {"role-alias-credential-duration"}, None),
    "role alias role allows every S3 action": (
        role_policy_with("device-uploads", allow(["s3:*"], ["arn:aws:s3:::acme-device-logs/*"])),
        {"role-alias-role-no-wildcards", "iam-no-wildcard-actions"}, None),
    "domain on the TLS 1.0 security policy": (
        setting("aws:iot/domainConfiguration:DomainConfiguration", "devices",
                tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS12_1_0_2016_01"}),
        {"domain-configuration-tls12"}, None),
    "custom domain without server certificate": (
        dropping("aws:iot/domainConfiguration:DomainConfiguration", "devices", "serverCertificateArns"),
        {"domain-configuration-server-certificates"}, None),
    # The dev config does not ask for a pre-provisioning hook: lab devices are provisioned by hand.
    "provisioning template without pre-provisioning hook": (
        dropping("aws:iot/provisioningTemplate:ProvisioningTemplate", "claim", "preProvisioningHook"),
        {"provisioning-template-pre-provisioning-hook"}, set()),
    "provisioning template with a permissive device policy": (
        with_template_policy, {"provisioning-template-policy"}, None),
    "job template without abort config": (
        dropping("aws-native:iot:JobTemplate", "firmware", "abortConfig"), {"job-abort-config"}, None),
    "job template without timeout": (
        dropping("aws-native:iot:JobTemplate", "firmware", "timeoutConfig"), {"job-timeout-config"}, None),
    "OTA update of unsigned firmware": (
        adding("aws-native:iot:OtaUpdate", "firmware-ota", {
            "otaUpdateId": "device-fleet-prod-firmware", "targets": [f"{IOT}:thinggroup/device-fleet-prod"],
            "roleArn": "arn:aws:iam::123456789012:role/device-fleet-prod-ota",
            "awsJobAbortConfig": {"abortCriteriaList": [{"action": "CANCEL", "failureType": "FAILED",
                                                         "minNumberOfExecutedThings": 10, "thresholdPercentage": 10}]},
            "awsJobTimeoutConfig": {"inProgressTimeoutInMinutes": 60},
            "files": [{"fileName": "firmware.bin", "fileLocation": {"s3Location": {
                "bucket": "acme-firmware", "key": "firmware.bin", "version": "1"}}}],
            "tags": [{"key": "Project", "value": "device-fleet"}, {"key": "Environment", "value": "prod"},
                     {"key": "Owner", "value": "fleet-platform"}],
        }),
        {"ota-update-signed-code"}, None),
    "CA that registers any device certificate it signed": (
        adding("aws:iot/caCertificate:CaCertificate", "factory-ca", {
            "active": True, "allowAutoRegistration": True, "caCertificatePem": CA_PEM, "certificateMode": "DEFAULT",
            "verificationCertificatePem": CA_PEM,
            "tags": {"Project": "device-fleet", "Environment": "prod", "Owner": "fleet-platform"},
        }),
        {"ca-certificate-registration-restricted"}, None),
    "account IoT logging disabled": (
        setting("aws:iot/loggingOptions:LoggingOptions", "account", defaultLogLevel="DISABLED"),
        {"iot-logging-enabled"}, None),
}


# -- The example as shipped -------------------------------------------------------------------------------

def test_the_example_passes_the_fleet_prod_config_at_the_update(
    pack: PolicyPackProcess, runs: dict[Phase, StackRun],
) -> None:
    report = judge(pack, FLEET_PROD, from_registrations(runs[Phase.UPDATE].resources))

    assert report.resource_count == len(runs[Phase.UPDATE].resources)
    # Nothing at all, not only nothing mandatory: the example is what the pack asks a device team for.
    assert not report.diagnostics, described(report)


def test_the_example_preview_of_a_new_stack_is_never_blocked(
    preview_pack: PolicyPackProcess, runs: dict[Phase, StackRun],
) -> None:
    report = judge(preview_pack, FLEET_PROD, from_registrations(runs[Phase.PREVIEW].resources))

    assert report.resource_count == len(runs[Phase.PREVIEW].resources)
    assert not report.mandatory, described(report)


def test_the_example_passes_the_fleet_dev_config(pack: PolicyPackProcess, runs: dict[Phase, StackRun]) -> None:
    report = judge(pack, FLEET_DEV, from_registrations(runs[Phase.UPDATE].resources))

    assert not report.diagnostics, described(report)


def test_the_example_registers_every_kind_of_resource_the_broken_copies_edit(runs: dict[Phase, StackRun]) -> None:
    run = runs[Phase.UPDATE]
    for resource_type in ("aws:iot/policy:Policy", "aws:iot/topicRule:TopicRule", "aws:iot/authorizer:Authorizer",
                          "aws:iot/domainConfiguration:DomainConfiguration", "aws:iot/roleAlias:RoleAlias",
                          "aws:iot/provisioningTemplate:ProvisioningTemplate", "aws-native:iot:JobTemplate",
                          "aws:iot/loggingOptions:LoggingOptions"):
        assert run.of_type(resource_type), resource_type
    assert len(run.of_type("aws:iot/policy:Policy")) == 2


def test_every_rule_the_fleet_config_turns_on_is_shown_blocking_a_broken_copy(pack: PolicyPackProcess) -> None:
    enabled = {name for name, config in pack.configure(FLEET_PROD).items()
               if config.enforcement_level is not EnforcementLevel.DISABLED}
    shown = {name for _, blocked, _ in BREAKAGES.values() for name in blocked}

    assert not enabled - shown - GENERAL_RULES


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_copy_is_blocked_in_prod_and_only_warned_in_dev(
    pack: PolicyPackProcess, runs: dict[Phase, StackRun], breakage: str,
) -> None:
    breaks, expected, expected_in_dev = BREAKAGES[breakage]
    broken = breaks(copy.deepcopy(from_registrations(runs[Phase.UPDATE].resources)))

    prod = judge(pack, FLEET_PROD, broken)
    dev = judge(pack, FLEET_DEV, broken)

    assert prod.policy_names(mandatory_only=True) == expected, described(prod)
    assert prod.policy_names() == expected, described(prod)
    assert not dev.mandatory, described(dev)
    assert dev.policy_names() == (expected if expected_in_dev is None else expected_in_dev), described(dev)

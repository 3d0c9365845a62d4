"""Provisioning templates: a pre-provisioning hook vets each device before fleet provisioning creates it,
and the IoT policies a template (or a CA's just-in-time template) creates pass the device policy rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from . import iot
from .building import Controls, Report, ResourceContext, of_types, option, report_cannot_verify, resource_policy
from .values import CannotVerify, InvalidProperty, has_value, json_value, known, path

TEMPLATE_TYPE_PROPERTY: Final = {
    "aws:iot/provisioningTemplate:ProvisioningTemplate": "type",
    "aws-native:iot:ProvisioningTemplate": "templateType",
}
CA_CERTIFICATES: Final = ("aws:iot/caCertificate:CaCertificate", "aws-native:iot:CaCertificate")
FLEET_PROVISIONING: Final = "FLEET_PROVISIONING"
"""The template type that runs a pre-provisioning hook (and the default); JITP templates run none."""
TEMPLATE_POLICY_TYPE: Final = "AWS::IoT::Policy"
DEVICE_POLICY_TYPE: Final = "aws:iot/policy:Policy"

EMBEDDED_POLICY_CHECKS: Final[tuple[tuple[str, Callable[[ResourceContext, Report], None]], ...]] = (
    ("iot-policy-no-wildcard-actions", iot.check_no_wildcard_actions),
    ("iot-policy-no-wildcard-resources", iot.check_no_wildcard_resources),
    ("iot-policy-client-id-bound-to-thing", iot.check_client_bound_to_thing),
)
"""The device policy rules a policy inside a template must pass, by rule name (named in the findings)."""

HOOK_SCHEMA = PolicyConfigSchema(properties={
    "requirePreProvisioningHook": {
        "type": "boolean",
        "description": ("Fleet provisioning templates must name a pre-provisioning hook (a Lambda function that "
                        "approves each device before it is created); off where any device may provision."),
        "default": True,
    },
})

PROVISIONING_CONTROLS = Controls(pci=("8.2.1", "8.2.2"), hipaa=("164.312(d)",), nist=("IA-3", "IA-5"))


def check_pre_provisioning_hook(ctx: ResourceContext, report: Report) -> None:
    if not option(ctx.config, HOOK_SCHEMA, "requirePreProvisioningHook"):
        return
    type_property = TEMPLATE_TYPE_PROPERTY[ctx.type]
    template_type = known(ctx.props.get(type_property), type_property) or FLEET_PROVISIONING
    if template_type != FLEET_PROVISIONING:
        return  # just-in-time provisioning runs no hook; the CA's registration is what restricts it
    if not has_value(path(ctx.props, "preProvisioningHook", "targetArn")):
        report("preProvisioningHook.targetArn is not set, so any device holding the claim certificate is "
               "provisioned; name a Lambda function that checks the device (serial number, allow list) first")


def template_bodies(ctx: ResourceContext) -> list[tuple[str, Any]]:
    """(label, body) of the provisioning templates the resource carries."""
    if ctx.type in CA_CERTIFICATES:
        body = path(ctx.props, "registrationConfig", "templateBody")
        return [("registrationConfig.templateBody", body)] if has_value(body) else []
    body = ctx.props.get("templateBody")
    return [("templateBody", body)] if has_value(body) else []


def embedded_policies(label: str, body: Any) -> list[tuple[str, Any]]:
    """(name, document) of every IoT policy the template creates with a document of its own; a policy
    named by PolicyName only already exists and is judged where it is defined."""
    template = json_value(body, label)
    if not isinstance(template, dict):
        raise InvalidProperty(f"{label} must be a provisioning template object")
    resources = known(template.get("Resources"), f"{label} Resources") or {}
    if not isinstance(resources, dict):
        raise InvalidProperty(f"{label} Resources must be an object")
    found: list[tuple[str, Any]] = []
    for name, item in resources.items():
        if not isinstance(item, dict) or item.get("Type") != TEMPLATE_POLICY_TYPE:
            continue
        document = path(item, "Properties", "PolicyDocument")
        if document is not None:
            found.append((str(name), document))
    return found


def _prefixed(report: Report, prefix: str) -> Report:
    """``report`` with ``prefix`` before each message (a device policy check reports as a resource rule)."""
    def prefixed(message: str, *_urn: Any) -> None:
        report(prefix + message)
    return prefixed


def check_template_policies(ctx: ResourceContext, report: Report) -> None:
    for label, body in template_bodies(ctx):
        for name, document in embedded_policies(label, body):
            where = f"{label} policy resource {name!r}"
            policy = ResourceContext(type=DEVICE_POLICY_TYPE, name=name, urn=ctx.urn,
                                     props={iot.IOT_POLICY_DOCUMENT_PROPERTY[DEVICE_POLICY_TYPE]: document},
                                     config={}, provider_props={})
            for rule, check in EMBEDDED_POLICY_CHECKS:
                try:
                    check(policy, _prefixed(report, f"{where} fails {rule}: "))
                except CannotVerify as error:
                    report_cannot_verify(report, CannotVerify(f"{where}: {error.what}"))
                except InvalidProperty as error:
                    report(f"{where}: {error}")
                    break


def policies() -> list[Policy]:
    templates = of_types(*TEMPLATE_TYPE_PROPERTY)
    return [
        resource_policy(
            name="provisioning-template-pre-provisioning-hook",
            description="Fleet provisioning templates call a pre-provisioning hook that vets each device.",
            severity=Severity.HIGH,
            controls=PROVISIONING_CONTROLS,
            remediation_steps=(
                "Set preProvisioningHook.targetArn to a Lambda function (payloadVersion 2020-04-01) that "
                "approves a device only if its serial number or hardware id is on the fleet's allow list, and "
                "grant iot.amazonaws.com permission to invoke it."
            ),
            governs=templates,
            check=check_pre_provisioning_hook,
            config_schema=HOOK_SCHEMA,
        ),
        resource_policy(
            name="provisioning-template-policy",
            description=("IoT policies created by a provisioning template, or by a CA's just-in-time template, "
                         "pass the device policy rules (no wildcard actions or resources, client id bound to "
                         "the thing)."),
            severity=Severity.CRITICAL,
            controls=iot.LEAST_PRIVILEGE,
            remediation_steps=(
                "In each AWS::IoT::Policy resource of the template body, list the IoT actions the device needs, "
                "scope them to client/${iot:Connection.Thing.ThingName} and the thing's own topics, or name an "
                "existing policy with PolicyName instead of embedding a PolicyDocument."
            ),
            governs=of_types(*TEMPLATE_TYPE_PROPERTY, *CA_CERTIFICATES),
            check=check_template_policies,
        ),
    ]

"""Provisioning templates: a pre-provisioning hook vets each device before fleet provisioning creates it,
and the IoT policies a template (or a CA's just-in-time template) creates pass the device policy rules."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from . import iot
from .building import Controls, Report, ResourceContext, of_types, option, report_cannot_verify, resource_policy
from .controls import LEAST_PRIVILEGE
from .values import CannotVerify, InvalidProperty, has_value, json_value, known, path

TEMPLATE_TYPE_PROPERTY: Final = {
    "aws:iot/provisioningTemplate:ProvisioningTemplate": "type",
    "aws-native:iot:ProvisioningTemplate": "templateType",
}
CA_CERTIFICATES: Final = ("aws:iot/caCertificate:CaCertificate", "aws-native:iot:CaCertificate")
FLEET_PROVISIONING: Final = "FLEET_PROVISIONING"
"""The template type that runs a pre-provisioning hook (and the default); JITP templates run none."""
TEMPLATE_POLICY_TYPE: Final = "AWS::IoT::Policy"

TEMPLATE_POLICY_SCHEMA = PolicyConfigSchema(properties={
    **iot.CLIENT_ID_SCHEMA.properties,
    **iot.TOPIC_SCOPE_SCHEMA.properties,
})
"""The device policy rules' own settings, so a policy inside a template is judged as the same policy outside."""

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


def check_template_policies(ctx: ResourceContext, report: Report) -> None:
    for label, body in template_bodies(ctx):
        for name, document in embedded_policies(label, body):
            where = f"{label} policy resource {name!r}"
            try:
                for finding in iot.device_policy_findings(document, where, ctx.config):
                    report(finding)
            except CannotVerify as error:
                report_cannot_verify(report, error)
            except InvalidProperty as error:
                report(str(error))


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
                         "pass every device policy rule (iot-policy-*)."),
            severity=Severity.CRITICAL,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "In each AWS::IoT::Policy resource of the template body, fix what the named iot-policy-* rule "
                "reports: list the IoT actions the device needs, scope them to "
                "client/${iot:Connection.Thing.ThingName} and the thing's own topics and shadows, no Allow with "
                "NotAction or NotResource; or name an existing policy with PolicyName instead of embedding a "
                "PolicyDocument."
            ),
            governs=of_types(*TEMPLATE_TYPE_PROPERTY, *CA_CERTIFICATES),
            check=check_template_policies,
            config_schema=TEMPLATE_POLICY_SCHEMA,
        ),
    ]

"""CA certificates: a CA that auto-registers every device certificate it signed hands out identities on
its own; only a provisioning template (just-in-time provisioning) restricts what those devices become."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, ResourceContext, of_types, option, resource_policy
from .values import has_value, known, path

CLASSIC_CA: Final = "aws:iot/caCertificate:CaCertificate"
NATIVE_CA: Final = "aws-native:iot:CaCertificate"

AUTO_REGISTRATION_SCHEMA = PolicyConfigSchema(properties={
    "allowAutoRegistration": {
        "type": "boolean",
        "description": ("A CA may auto-register device certificates without a provisioning template "
                        "(just-in-time registration, where a function of yours activates each certificate)."),
        "default": False,
    },
})


def auto_registers(ctx: ResourceContext) -> bool:
    if ctx.type == CLASSIC_CA:
        return known(ctx.props.get("allowAutoRegistration"), "allowAutoRegistration") is True
    return bool(known(ctx.props.get("autoRegistrationStatus"), "autoRegistrationStatus") == "ENABLE")


def check_registration_restricted(ctx: ResourceContext, report: Report) -> None:
    if not auto_registers(ctx) or option(ctx.config, AUTO_REGISTRATION_SCHEMA, "allowAutoRegistration"):
        return
    template = known(path(ctx.props, "registrationConfig", "templateBody"), "registrationConfig.templateBody")
    template_name = known(path(ctx.props, "registrationConfig", "templateName"), "registrationConfig.templateName")
    if has_value(template) or has_value(template_name):
        return
    switch = "allowAutoRegistration" if ctx.type == CLASSIC_CA else "autoRegistrationStatus"
    report(f"{switch} turns on auto-registration with no registrationConfig template, so every certificate "
           "the CA signed registers as a device unchecked; add a registrationConfig templateBody or "
           "templateName (just-in-time provisioning) or turn auto-registration off")


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="ca-certificate-registration-restricted",
            description=("A CA certificate auto-registers device certificates only through a provisioning "
                         "template that restricts what they become."),
            severity=Severity.HIGH,
            controls=Controls(pci=("8.2.1", "8.3.1"), hipaa=("164.312(d)",), nist=("IA-3", "IA-5(2)")),
            remediation_steps=(
                "Turn auto-registration off (allowAutoRegistration false, autoRegistrationStatus DISABLE) and "
                "register device certificates explicitly, or give the CA a registrationConfig with a "
                "just-in-time provisioning templateBody or templateName and the role it runs with."
            ),
            governs=of_types(CLASSIC_CA, NATIVE_CA),
            check=check_registration_restricted,
            config_schema=AUTO_REGISTRATION_SCHEMA,
        ),
    ]

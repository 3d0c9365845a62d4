"""Role aliases: short-lived credentials from the AWS IoT credentials provider, for a role without
wildcard actions."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import (
    Controls,
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    each,
    of_types,
    option,
    resource_policy,
    stack_policy,
)
from .controls import LEAST_PRIVILEGE
from .roles import StackRoles
from .values import as_number

DURATION_PROPERTY: Final = {"aws:iot/roleAlias:RoleAlias": "credentialDuration",
                            "aws-native:iot:RoleAlias": "credentialDurationSeconds"}
ROLE_ARN: Final = "roleArn"
DEFAULT_DURATION_SECONDS: Final = 3600
"""What AWS IoT issues when the alias does not say (CreateRoleAlias's default)."""
MIN_DURATION_SECONDS: Final = 900
MAX_DURATION_SECONDS: Final = 43200
"""CreateRoleAlias's bounds on credentialDurationSeconds (botocore's iot model)."""

DURATION_SCHEMA = PolicyConfigSchema(properties={
    "maximumCredentialDurationSeconds": {
        "type": "integer",
        "minimum": MIN_DURATION_SECONDS,
        "maximum": MAX_DURATION_SECONDS,
        "description": "Longest lifetime, in seconds, of the AWS credentials a device may get through a role alias.",
        "default": DEFAULT_DURATION_SECONDS,
    },
})
SESSION_LIMITS = Controls(pci=("8.2.8", "8.6.3"), hipaa=("164.312(a)(2)(iii)",), nist=("AC-12", "IA-5"))


def check_duration(ctx: ResourceContext, report: Report) -> None:
    maximum = option(ctx.config, DURATION_SCHEMA, "maximumCredentialDurationSeconds")
    prop = DURATION_PROPERTY[ctx.type]
    value = ctx.props.get(prop)
    if value is None:
        if maximum < DEFAULT_DURATION_SECONDS:
            report(f"{prop} is not set, so devices get credentials for AWS IoT's default "
                   f"{DEFAULT_DURATION_SECONDS} s; this environment allows at most {maximum:g} s")
        return
    seconds = as_number(value, prop)
    if seconds > maximum:
        report(f"{prop} is {seconds:g} s; this environment allows at most {maximum:g} s, so a stolen device "
               "certificate's credentials expire sooner")


def check_role_no_wildcards(stack: StackContext, report: Report) -> None:
    aliases = stack.require(*DURATION_PROPERTY, reason=(
        "role-alias-role-no-wildcards applies to stacks with role aliases; this one has none"))
    roles = StackRoles.of(stack)

    def check(alias: StackResource) -> None:
        for role, finding in roles.wildcard_grants(alias, [(ROLE_ARN, alias.props.get(ROLE_ARN))]):
            report(f"role alias {alias.name} hands devices role {role.name}, whose {finding}; list the "
                   "actions devices need", alias.urn)

    each(aliases, report, check)


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="role-alias-credential-duration",
            description="Role aliases issue credentials for at most the configured duration (default 1 hour).",
            severity=Severity.MEDIUM,
            controls=SESSION_LIMITS,
            remediation_steps=(
                "Set credentialDuration (classic) or credentialDurationSeconds (aws-native) to no more than "
                "maximumCredentialDurationSeconds; devices fetch new credentials from the credentials provider "
                "when these expire."
            ),
            governs=of_types(*DURATION_PROPERTY),
            check=check_duration,
            config_schema=DURATION_SCHEMA,
        ),
        stack_policy(
            name="role-alias-role-no-wildcards",
            description=("The role behind each role alias is allowed no wildcard action by the policies the stack "
                         "attaches to it (the IOT_ROLE_ALIAS_OVERLY_PERMISSIVE audit check, before deploy)."),
            severity=Severity.CRITICAL,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Give the aliased role policies that list the actions devices call with its credentials (e.g. "
                "s3:PutObject on the device's own prefix) and attach no AdministratorAccess, PowerUserAccess or "
                "*FullAccess policy; every device with a certificate can assume it."
            ),
            check=check_role_no_wildcards,
        ),
    ]

"""Custom authorizers: token signing on, and the authorizer's Lambda function invocable by AWS IoT for
this authorizer only."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, Severity

from .building import (
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    each,
    of_types,
    resource_policy,
    stack_policy,
)
from .controls import LEAST_PRIVILEGE, TOKEN_AUTHENTICATION
from .roles import refers_to
from .values import UNKNOWN, has_value, known

AUTHORIZER_NAME_PROPERTY: Final = {"aws:iot/authorizer:Authorizer": "name",
                                   "aws-native:iot:Authorizer": "authorizerName"}
FUNCTION_ARN: Final = "authorizerFunctionArn"
PERMISSION_FUNCTION_PROPERTY: Final = {"aws:lambda/permission:Permission": "function",
                                       "aws-native:lambda:Permission": "functionName"}
FUNCTION_TYPES: Final = ("aws:lambda/function:Function", "aws-native:lambda:Function")
IOT_PRINCIPAL: Final = "iot.amazonaws.com"
INVOKE: Final = "lambda:InvokeFunction"



def check_signing(ctx: ResourceContext, report: Report) -> None:
    if known(ctx.props.get("signingDisabled"), "signingDisabled") is True:
        report("signingDisabled is true: AWS IoT passes any token to the function unverified, so anyone can "
               "make it run on forged tokens; turn signing on")
        return
    missing = [key for key in ("tokenKeyName", "tokenSigningPublicKeys") if not has_value(ctx.props.get(key))]
    if missing:
        report(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: a signing authorizer "
               "needs the token's header name and the public keys that verify its signature")


def function_name(reference: Any) -> Any:
    """A Lambda function's name from its name or (qualified) ARN; ``UNKNOWN`` stays unknown."""
    if not isinstance(reference, str) or not reference.startswith("arn:"):
        return reference
    parts = reference.split(":")
    return parts[6] if len(parts) > 6 and parts[5] == "function" else reference


def _same_function(authorizer: StackResource, permission: StackResource, functions: list[StackResource]) -> bool:
    """Whether a permission is on the authorizer's function: both name it, or both were computed from the
    same function in the stack."""
    prop = PERMISSION_FUNCTION_PROPERTY[permission.type]
    target = permission.props.get(prop)
    if any(authorizer.depends_on(FUNCTION_ARN, function) and permission.depends_on(prop, function)
           for function in functions):
        return True
    source = authorizer.props.get(FUNCTION_ARN)
    if UNKNOWN in (source, target):
        return False  # computed from different resources: decided by the dependencies above
    return bool(function_name(source) == function_name(target))


def _names_authorizer(permission: StackResource, authorizer: StackResource) -> bool:
    """Whether the permission's sourceArn is the authorizer's own ARN (no wildcard)."""
    name = authorizer.props.get(AUTHORIZER_NAME_PROPERTY[authorizer.type])
    source_arn = permission.props.get("sourceArn")
    by_name = isinstance(name, str) and isinstance(source_arn, str) and source_arn.startswith("arn:") \
        and ":iot:" in source_arn and source_arn.endswith(f":authorizer/{name}")
    return by_name or refers_to(permission, "sourceArn", source_arn, authorizer, [authorizer.props.get("arn")])


def check_permission_scoped(stack: StackContext, report: Report) -> None:
    authorizers = stack.require(*AUTHORIZER_NAME_PROPERTY, reason=(
        "authorizer-function-permission-scoped applies to stacks with custom authorizers; this one has none"))
    permissions = stack.of_type(*PERMISSION_FUNCTION_PROPERTY)
    functions = stack.of_type(*FUNCTION_TYPES)

    def check(authorizer: StackResource) -> None:
        if not any(authorizer.depends_on(FUNCTION_ARN, function) for function in functions):
            known(authorizer.props.get(FUNCTION_ARN), f"{FUNCTION_ARN} of authorizer {authorizer.name}")
        granted = [permission for permission in permissions if _same_function(authorizer, permission, functions)]
        if not granted:
            report(f"no Lambda permission in the stack lets AWS IoT invoke authorizer {authorizer.name}'s "
                   f"function; add one with principal {IOT_PRINCIPAL} and the authorizer's ARN as sourceArn",
                   authorizer.urn)
        for permission in granted:
            principal = known(permission.props.get("principal"), f"principal of {permission.name}")
            action = known(permission.props.get("action"), f"action of {permission.name}")
            problems = []
            if principal != IOT_PRINCIPAL:
                problems.append(f"principal is {principal!r}, not {IOT_PRINCIPAL}")
            if action != INVOKE:
                problems.append(f"action is {action!r}, not {INVOKE}")
            source_arn = permission.props.get("sourceArn")
            if source_arn is None:
                problems.append("sourceArn is not set, so AWS IoT may invoke it for any authorizer, in any account")
            elif not _names_authorizer(permission, authorizer):
                problems.append(f"sourceArn {source_arn!r} does not name the authorizer")
            if problems:
                report(f"Lambda permission {permission.name} on authorizer {authorizer.name}'s function: "
                       f"{'; '.join(problems)}", permission.urn)

    each(authorizers, report, check)


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="authorizer-signing-enabled",
            description=("Custom authorizers verify token signatures (signing not disabled, a token key name and "
                         "signing public keys set)."),
            severity=Severity.HIGH,
            controls=TOKEN_AUTHENTICATION,
            remediation_steps=(
                "Leave signingDisabled false and set tokenKeyName and tokenSigningPublicKeys, so AWS IoT "
                "rejects unsigned or forged tokens before the authorizer function runs."
            ),
            governs=of_types(*AUTHORIZER_NAME_PROPERTY),
            check=check_signing,
        ),
        stack_policy(
            name="authorizer-function-permission-scoped",
            description=("Each custom authorizer's Lambda function may be invoked by AWS IoT for that authorizer "
                         "only (principal iot.amazonaws.com, sourceArn the authorizer's ARN)."),
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Grant lambda:InvokeFunction on the authorizer's function with an aws.lambda.Permission whose "
                "principal is iot.amazonaws.com and whose sourceArn is the authorizer's ARN "
                "(arn:<partition>:iot:<region>:<account>:authorizer/<name>); remove broader permissions."
            ),
            check=check_permission_scoped,
        ),
    ]

"""IoT policies: the IOT_POLICY_OVERLY_PERMISSIVE audit check as a deploy-time gate, and client ids
bound to the thing that connects."""

from __future__ import annotations

import re
from typing import Final

from pulumi_policy import ResourceValidationPolicy, Severity

from .building import Controls, Report, ResourceContext, of_types, resource_policy
from .documents import Statement, grants, resource_texts, statements, wildcard_actions
from .values import CannotVerify

IOT_POLICY_DOCUMENT_PROPERTY: Final = {
    "aws:iot/policy:Policy": "policy",
    "aws-native:iot:Policy": "policyDocument",
}
MQTT_ACTIONS: Final = ("iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive")
THING_BOUND_CLIENT: Final = "client/${iot:Connection.Thing.ThingName}"

# After the ARN's type prefix, nothing but wildcards and separators: every client or topic.
_BROAD_RESOURCE_PATH = re.compile(r"^(?:(?:client|topic|topicfilter)/)?[*#+/]*$")

LEAST_PRIVILEGE = Controls(
    pci=("7.2.1", "7.2.2"),
    hipaa=("164.308(a)(4)", "164.312(a)(1)"),
    nist=("AC-3", "AC-6"),
)


def iot_policy_statements(ctx: ResourceContext) -> tuple[str, list[Statement]]:
    prop = IOT_POLICY_DOCUMENT_PROPERTY[ctx.type]
    what = f"the IoT policy document ({prop})"
    return what, statements(ctx.props.get(prop), what)


def is_broad_iot_resource(resource: str) -> bool:
    """``*``, or an IoT ARN whose resource part is only wildcards (``client/*``, ``topic/*``,
    ``topicfilter/#``...)."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    return len(parts) == 6 and bool(_BROAD_RESOURCE_PATH.match(parts[5]))


def names_clients(resource: str) -> bool:
    """Whether iot:Connect could match this resource: ``*``, a ``client/`` ARN, or an ARN whose resource
    type is a wildcard. Connect is only ever evaluated against client ARNs, so a topic ARN listed in the
    same statement (for Publish or Subscribe) does not let a device connect as anything."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return True
    kind = parts[5].split("/", 1)[0]
    return kind == "client" or "*" in kind or "?" in kind


def check_no_wildcard_actions(ctx: ResourceContext, report: Report) -> None:
    what, parsed = iot_policy_statements(ctx)
    for statement in parsed:
        if not statement.allows:
            continue  # an explicit Deny on iot:* is how a quarantine policy restricts devices
        if statement.not_actions:
            report(f"{statement.label} allows NotAction, which grants every other IoT action; list the actions")
        wildcards = wildcard_actions(statement, what)
        if wildcards:
            report(f"{statement.label} allows wildcard action(s) {', '.join(wildcards)}; list the IoT actions "
                   "the device needs explicitly")


def check_no_wildcard_resources(ctx: ResourceContext, report: Report) -> None:
    what, parsed = iot_policy_statements(ctx)
    for statement in parsed:
        if not statement.allows:
            continue
        mqtt = [action for action in MQTT_ACTIONS if grants(statement, action, what)]
        if not mqtt:
            continue
        if statement.not_resources:
            report(f"{statement.label} allows {', '.join(mqtt)} on NotResource, i.e. on every other client "
                   "and topic; name the resources")
        broad = [resource for resource in resource_texts(statement) if is_broad_iot_resource(resource)]
        if broad:
            report(f"{statement.label} allows {', '.join(mqtt)} on {', '.join(broad)}; scope resources to the "
                   "thing (${iot:Connection.Thing.ThingName}) or to named topics")


def check_client_bound_to_thing(ctx: ResourceContext, report: Report) -> None:
    what, parsed = iot_policy_statements(ctx)
    for statement in parsed:
        if not statement.allows or not grants(statement, "iot:Connect", what):
            continue
        if statement.not_resources:
            report(f"{statement.label} allows iot:Connect on NotResource; connect only as "
                   f"{THING_BOUND_CLIENT}")
            continue
        if len(resource_texts(statement)) != len(statement.resources):
            raise CannotVerify(f"a resource of {statement.label} in {what}")
        unbound = [r for r in resource_texts(statement)
                   if names_clients(r) and not r.endswith(":" + THING_BOUND_CLIENT)]
        if unbound:
            report(f"{statement.label} allows iot:Connect as {', '.join(unbound)}; the client id must be the "
                   f"thing's name: arn:<partition>:iot:<region>:<account>:{THING_BOUND_CLIENT}")


def policies() -> list[ResourceValidationPolicy]:
    governs = of_types(*IOT_POLICY_DOCUMENT_PROPERTY)
    return [
        resource_policy(
            name="iot-policy-no-wildcard-actions",
            description="IoT policies allow only explicitly listed actions (no *, iot:* or NotAction).",
            severity=Severity.CRITICAL,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Replace wildcard actions in Allow statements with the IoT actions the device uses "
                "(typically iot:Connect, iot:Publish, iot:Subscribe, iot:Receive and the shadow actions). "
                "Wildcards are fine in Deny statements."
            ),
            governs=governs,
            check=check_no_wildcard_actions,
        ),
        resource_policy(
            name="iot-policy-no-wildcard-resources",
            description=("IoT policies do not allow connect, publish, subscribe or receive on every client or "
                         "topic (the IOT_POLICY_OVERLY_PERMISSIVE audit check, enforced before deploy)."),
            severity=Severity.CRITICAL,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Scope each MQTT action to resources built from policy variables, e.g. "
                "client/${iot:Connection.Thing.ThingName} and topic/things/${iot:Connection.Thing.ThingName}/*, "
                "instead of *, client/*, topic/* or topicfilter/#."
            ),
            governs=governs,
            check=check_no_wildcard_resources,
        ),
        resource_policy(
            name="iot-policy-client-id-bound-to-thing",
            description="IoT policies let a device connect only with its own thing name as the MQTT client id.",
            severity=Severity.HIGH,
            controls=Controls(pci=("8.2.1", "8.2.2"), hipaa=("164.312(d)",), nist=("IA-3", "AC-3")),
            remediation_steps=(
                "Allow iot:Connect only on arn:<partition>:iot:<region>:<account>:"
                "client/${iot:Connection.Thing.ThingName}, so a certificate can connect only as the thing it "
                "is attached to and client ids cannot collide or be spoofed."
            ),
            governs=governs,
            check=check_client_bound_to_thing,
        ),
    ]

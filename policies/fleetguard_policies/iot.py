"""Device IoT policies: the IOT_POLICY_OVERLY_PERMISSIVE audit check as a deploy-time gate, client ids
bound to the thing that connects, topics and thing resources scoped to the device's own, and no Allow by
exclusion.

Each check judges parsed statements (``*_findings``) so a policy embedded elsewhere (a provisioning
template) is judged by the same code: ``device_policy_findings``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from pulumi_policy import PolicyConfigSchema, ResourceValidationPolicy, Severity

from .building import Controls, Report, ResourceContext, of_types, option, resource_policy
from .controls import LEAST_PRIVILEGE
from .documents import Statement, grants, resource_texts, statements, wildcard_actions
from .values import CannotVerify

IOT_POLICY_DOCUMENT_PROPERTY: Final = {
    "aws:iot/policy:Policy": "policy",
    "aws-native:iot:Policy": "policyDocument",
}
MQTT_ACTIONS: Final = ("iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive")
THING_NAME: Final = "${iot:Connection.Thing.ThingName}"
THING_BOUND_CLIENT: Final = f"client/{THING_NAME}"
OWN_THING: Final = f"thing/{THING_NAME}"

TOPIC_RESOURCE_KIND: Final = {"iot:Publish": "topic", "iot:Receive": "topic", "iot:Subscribe": "topicfilter"}
"""The resource kind AWS IoT authorizes each topic action against."""
THING_ACTIONS: Final = (
    "iot:UpdateThingShadow", "iot:GetThingShadow", "iot:DeleteThingShadow",
    "iot:DescribeJobExecution", "iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution",
    "iot:UpdateJobExecution",
)
"""Shadow and job-execution actions, authorized against ``thing/<name>`` resources."""

# After the ARN's type prefix, nothing but wildcards and separators: every client or topic.
_BROAD_RESOURCE_PATH = re.compile(r"^(?:(?:client|topic|topicfilter)/)?[*#+/]*$")
# Policy wildcards (* ?) and MQTT ones (+ #, which a topic filter resource grants as written).
_TOPIC_WILDCARD = re.compile(r"[*?+#]")

CLIENT_ID_SCHEMA = PolicyConfigSchema(properties={
    "allowedClientIds": {
        "type": "array",
        "items": {"type": "string", "pattern": r"\$\{iot:[A-Za-z.]+\}"},
        "minItems": 1,
        "description": ("Client ids (the part after client/ in the iot:Connect resource) a device may connect "
                        "as. Each must be a policy variable that names one device: the thing name, or e.g. "
                        "${iot:Certificate.Subject.CommonName} where each certificate is issued for one thing. "
                        "${iot:ClientId} matches every client id and binds nothing."),
        "default": [THING_NAME],
    },
})
TOPIC_SCOPE_SCHEMA = PolicyConfigSchema(properties={
    "allowedTopicPrefixes": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "description": ("Topic prefixes (the part after topic/ or topicfilter/, e.g. fleet/broadcast/) under which "
                        "a wildcard may be granted to every device, in addition to each device's own topics: "
                        "those whose levels before the wildcard include ${iot:Connection.Thing.ThingName}."),
        "default": [],
    },
})

Findings = Callable[[list[Statement], str, Mapping[str, Any]], list[str]]
"""A check over a policy document's statements (``what`` names the document) with the rule's config."""


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


def resource_path(resource: str, kind: str) -> str | None:
    """What follows ``<kind>/`` in an IoT ARN that an action authorized against ``kind`` resources could
    match; the whole resource part when the ARN's kind is itself a wildcard; ``None`` when the resource is
    of another kind (a topic ARN listed beside iot:Connect never lets a device connect)."""
    if resource == "*":
        return "*"
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return resource
    resource_kind, _, rest = parts[5].partition("/")
    if resource_kind == kind:
        return rest
    if fnmatch.fnmatchcase(kind, resource_kind):
        return parts[5]
    return None


def names_clients(resource: str) -> bool:
    """Whether iot:Connect could match this resource: ``*``, a ``client/`` ARN, or an ARN whose resource
    type is a wildcard."""
    return resource_path(resource, "client") is not None


def thing_scoped(path: str) -> bool:
    """Whether a topic path's wildcard falls inside the connecting device's own subtree: a whole level
    before it names the thing. ``dt/${iot:Connection.Thing.ThingName}*`` does not qualify: ``*`` would also
    match the topics of every thing whose name starts with this one's."""
    fixed = _TOPIC_WILDCARD.split(path, 1)[0]
    return any(THING_NAME in level for level in fixed.split("/")[:-1])


def under_prefix(path: str, prefixes: Iterable[str]) -> bool:
    fixed = _TOPIC_WILDCARD.split(path, 1)[0]
    return any(fixed.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def wildcard_action_findings(parsed: list[Statement], what: str, _config: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in parsed:
        if not statement.allows:
            continue  # an explicit Deny on iot:* is how a quarantine policy restricts devices
        if statement.not_actions:
            found.append(f"{statement.label} allows NotAction, which grants every other IoT action; list the "
                         "actions")
        wildcards = wildcard_actions(statement, what)
        if wildcards:
            found.append(f"{statement.label} allows wildcard action(s) {', '.join(wildcards)}; list the IoT "
                         "actions the device needs explicitly")
    return found


def wildcard_resource_findings(parsed: list[Statement], what: str, _config: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in parsed:
        if not statement.allows:
            continue
        mqtt = [action for action in MQTT_ACTIONS if grants(statement, action, what)]
        if not mqtt:
            continue
        if statement.not_resources:
            found.append(f"{statement.label} allows {', '.join(mqtt)} on NotResource, i.e. on every other "
                         "client and topic; name the resources")
        broad = [resource for resource in resource_texts(statement) if is_broad_iot_resource(resource)]
        if broad:
            found.append(f"{statement.label} allows {', '.join(mqtt)} on {', '.join(broad)}; scope resources "
                         "to the thing (${iot:Connection.Thing.ThingName}) or to named topics")
    return found


def client_binding_findings(parsed: list[Statement], what: str, config: Mapping[str, Any]) -> list[str]:
    allowed = [f"client/{client}" for client in option(config, CLIENT_ID_SCHEMA, "allowedClientIds")]
    found: list[str] = []
    for statement in parsed:
        if not statement.allows or not grants(statement, "iot:Connect", what):
            continue
        if statement.not_resources:
            found.append(f"{statement.label} allows iot:Connect on NotResource; connect only as "
                         f"{' or '.join(allowed)}")
            continue
        if len(resource_texts(statement)) != len(statement.resources):
            raise CannotVerify(f"a resource of {statement.label} in {what}")
        unbound = [r for r in resource_texts(statement)
                   if names_clients(r) and not any(r.endswith(":" + client) for client in allowed)]
        if unbound:
            found.append(f"{statement.label} allows iot:Connect as {', '.join(unbound)}; the client id must name "
                         f"the device: arn:<partition>:iot:<region>:<account>:{' or '.join(allowed)}")
    return found


def topic_scope_findings(parsed: list[Statement], what: str, config: Mapping[str, Any]) -> list[str]:
    prefixes = option(config, TOPIC_SCOPE_SCHEMA, "allowedTopicPrefixes")
    found: list[str] = []
    for statement in parsed:
        if not statement.allows:
            continue
        granted = [action for action in TOPIC_RESOURCE_KIND if grants(statement, action, what)]
        if not granted:
            continue
        if statement.not_resources:
            found.append(f"{statement.label} allows {', '.join(granted)} on NotResource, i.e. on every other "
                         "topic; name the topics")
        kinds = {TOPIC_RESOURCE_KIND[action] for action in granted}
        unscoped = []
        for resource in resource_texts(statement):
            paths = [path for kind in kinds if (path := resource_path(resource, kind)) is not None]
            if any(_TOPIC_WILDCARD.search(path) and not thing_scoped(path) and not under_prefix(path, prefixes)
                   for path in paths):
                unscoped.append(resource)
        if unscoped:
            shared = f" or a prefix in allowedTopicPrefixes ({', '.join(prefixes)})" if prefixes else ""
            found.append(f"{statement.label} allows {', '.join(granted)} on wildcard topic(s) "
                         f"{', '.join(unscoped)}; a wildcard may only follow a whole topic level naming "
                         f"{THING_NAME}{shared}")
    return found


def own_thing_findings(parsed: list[Statement], what: str, _config: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in parsed:
        if not statement.allows:
            continue
        granted = [action for action in THING_ACTIONS if grants(statement, action, what)]
        if not granted:
            continue
        if statement.not_resources:
            found.append(f"{statement.label} allows {', '.join(granted)} on NotResource, i.e. on other things; "
                         f"name {OWN_THING}")
            continue
        if len(resource_texts(statement)) != len(statement.resources):
            raise CannotVerify(f"a resource of {statement.label} in {what}")
        others = [resource for resource in resource_texts(statement)
                  if resource_path(resource, "thing") is not None and not _names_own_thing(resource)]
        if others:
            found.append(f"{statement.label} allows {', '.join(granted)} on {', '.join(others)}; a device may "
                         f"act only on its own shadows and jobs: arn:<partition>:iot:<region>:<account>:"
                         f"{OWN_THING}")
    return found


def _names_own_thing(resource: str) -> bool:
    # Named shadows are thing/<name>/<shadow name>, so the thing's own subtree counts as its own.
    return resource.endswith(":" + OWN_THING) or (":" + OWN_THING + "/") in resource


def not_action_findings(parsed: list[Statement], _what: str, _config: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in parsed:
        if not statement.allows:
            continue  # Deny with NotResource is how a quarantine policy confines a device
        exclusions = [key for key, values in (("NotAction", statement.not_actions),
                                              ("NotResource", statement.not_resources)) if values]
        if exclusions:
            found.append(f"{statement.label} is an Allow with {' and '.join(exclusions)}, which grants everything "
                         "it does not list; list the actions and resources the device needs")
    return found


DEVICE_POLICY_FINDINGS: Final[dict[str, Findings]] = {
    "iot-policy-no-wildcard-actions": wildcard_action_findings,
    "iot-policy-no-wildcard-resources": wildcard_resource_findings,
    "iot-policy-client-id-bound-to-thing": client_binding_findings,
    "iot-policy-topic-scope": topic_scope_findings,
    "iot-policy-own-thing-only": own_thing_findings,
    "iot-policy-no-allow-not-action": not_action_findings,
}


def device_policy_findings(document: Any, what: str, config: Mapping[str, Any] | None = None) -> list[str]:
    """Every device policy rule's findings on one IoT policy document (JSON text or structured), with the
    rules' default config unless ``config`` is given; each finding is prefixed with the rule's name.
    ``CannotVerify`` when a value it needs is unknown; ``InvalidProperty`` when it is no policy document."""
    parsed = statements(document, what)
    return [f"{rule}: {what} {finding}" for rule, findings in DEVICE_POLICY_FINDINGS.items()
            for finding in findings(parsed, what, config or {})]


def _check(findings: Findings) -> Callable[[ResourceContext, Report], None]:
    def check(ctx: ResourceContext, report: Report) -> None:
        what, parsed = iot_policy_statements(ctx)
        for finding in findings(parsed, what, ctx.config):
            report(finding)
    return check


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
            check=_check(wildcard_action_findings),
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
            check=_check(wildcard_resource_findings),
        ),
        resource_policy(
            name="iot-policy-client-id-bound-to-thing",
            description="IoT policies let a device connect only with its own thing name as the MQTT client id.",
            severity=Severity.HIGH,
            controls=Controls(pci=("8.2.1", "8.2.2"), hipaa=("164.312(d)",), nist=("IA-3", "AC-3")),
            remediation_steps=(
                "Allow iot:Connect only on arn:<partition>:iot:<region>:<account>:"
                "client/${iot:Connection.Thing.ThingName}, so a certificate can connect only as the thing it "
                "is attached to and client ids cannot collide or be spoofed. Where certificates are issued per "
                "thing, list the certificate variable that names it in allowedClientIds instead."
            ),
            governs=governs,
            check=_check(client_binding_findings),
            config_schema=CLIENT_ID_SCHEMA,
        ),
        resource_policy(
            name="iot-policy-topic-scope",
            description=("IoT policies grant publish, subscribe and receive on wildcard topics only inside the "
                         "device's own topic tree or a configured shared prefix."),
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Put the thing name in the topic before any wildcard, e.g. "
                "topic/dt/${iot:Connection.Thing.ThingName}/* and topicfilter/cmd/${iot:Connection.Thing.ThingName}/#, "
                "or name the topics exactly. Topics every "
                "device must share (a broadcast channel) go under a prefix listed in allowedTopicPrefixes."
            ),
            governs=governs,
            check=_check(topic_scope_findings),
            config_schema=TOPIC_SCOPE_SCHEMA,
        ),
        resource_policy(
            name="iot-policy-own-thing-only",
            description=("IoT policies allow shadow and job-execution actions only on the connecting thing "
                         "(thing/${iot:Connection.Thing.ThingName})."),
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Scope iot:GetThingShadow, iot:UpdateThingShadow, iot:DeleteThingShadow and the job execution "
                "actions to arn:<partition>:iot:<region>:<account>:thing/${iot:Connection.Thing.ThingName} "
                "(append /<shadow name> or /* for named shadows), never thing/* or another thing's name."
            ),
            governs=governs,
            check=_check(own_thing_findings),
        ),
        resource_policy(
            name="iot-policy-no-allow-not-action",
            description="IoT policies have no Allow statement with NotAction or NotResource.",
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Rewrite each Allow that uses NotAction or NotResource as an Allow listing the actions and "
                "resources the device needs; keep NotResource for Deny statements that confine a device."
            ),
            governs=governs,
            check=_check(not_action_findings),
        ),
    ]

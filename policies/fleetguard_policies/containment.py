"""Containment: a quarantine thing group that restricts, logs and receives suspect devices."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, StackContext, StackResource, option, report_cannot_verify, stack_policy
from .documents import excludes, grants, statements
from .iot import IOT_POLICY_DOCUMENT_PROPERTY
from .logging import IOT_LOGGING
from .shared_facts import QUARANTINE_ROLE, ROLE_TAG_KEY
from .tagging import tag_map
from .values import UNKNOWN, CannotVerify, as_list, has_value, path

THING_GROUP_NAME_PROPERTY: Final = {
    "aws:iot/thingGroup:ThingGroup": "name",
    "aws-native:iot:ThingGroup": "thingGroupName",
}
IOT_POLICY_NAME_PROPERTY: Final = {"aws:iot/policy:Policy": "name", "aws-native:iot:Policy": "policyName"}
POLICY_ATTACHMENT: Final = "aws:iot/policyAttachment:PolicyAttachment"
RESOURCE_SPECIFIC_LOGGING: Final = "aws-native:iot:ResourceSpecificLogging"
MITIGATION_ACTION: Final = "aws-native:iot:MitigationAction"
MESSAGING_ACTIONS: Final = ("iot:Publish", "iot:Subscribe", "iot:Receive")
"""What a quarantine policy's explicit Deny must restrict (for all but the investigation paths)."""

QUARANTINE_SCHEMA = PolicyConfigSchema(properties={
    "quarantineGroupNameContains": {
        "type": "string",
        "minLength": 1,
        "description": (f"Deprecated fallback, used only when no thing group is tagged "
                        f"{ROLE_TAG_KEY}={QUARANTINE_ROLE}: thing groups whose name contains this text "
                        "(case-insensitive) are then taken as quarantine groups."),
        "default": "quarantine",
    },
    "groupLoggingOwnedElsewhere": {
        "type": "boolean",
        "description": ("The quarantine group's resource-specific logging is set outside this stack (the "
                        "stack's quarantine.manageGroupLogging is false), so the stack need not declare it."),
        "default": False,
    },
    "accountLoggingOwnedElsewhere": {
        "type": "boolean",
        "description": ("The account's IoT v2 logging is configured outside this stack (the stack's "
                        "quarantine.manageAccountLogging is false), so the stack need not declare it."),
        "default": False,
    },
})

Reference = bool | None
"""Whether one resource refers to another: yes, no, or ``None`` when an unknown value hides it."""


def physical_name(resource: StackResource, name_property: dict[str, str]) -> Any:
    return resource.props.get(name_property[resource.type])


def names_group(value: Any, group: StackResource) -> Reference:
    """Whether a name or ARN (or a list of them) identifies ``group``."""
    if value is UNKNOWN:
        return None
    name = physical_name(group, THING_GROUP_NAME_PROPERTY)
    arn = group.props.get("arn")
    verdicts: list[Reference] = []
    for item in as_list(value):
        if item is UNKNOWN:
            verdicts.append(None)
        elif isinstance(item, str):
            verdicts.append(
                (isinstance(arn, str) and item == arn)
                or (isinstance(name, str) and (item == name or item.endswith(f":thinggroup/{name}")))
            )
    return _any_reference(verdicts)


def refers_to(resource: StackResource, prop: str, value: Any, group: StackResource) -> Reference:
    """A reference through a property dependency (how it looks when the ARN is still unknown at
    preview) or through a known name or ARN."""
    if resource.depends_on(prop, group):
        return True
    return names_group(value, group)


def _any_reference(verdicts: Iterable[Reference]) -> Reference:
    listed = list(verdicts)
    if any(verdict is True for verdict in listed):
        return True
    return None if any(verdict is None for verdict in listed) else False


def requirement(
    candidates: Iterable[StackResource],
    satisfies: Callable[[StackResource], Reference],
) -> tuple[Reference, list[CannotVerify]]:
    """True if a candidate satisfies, ``None`` if none does but an unknown could, else False."""
    verdicts: list[Reference] = []
    problems: list[CannotVerify] = []
    for candidate in candidates:
        try:
            verdicts.append(satisfies(candidate))
        except CannotVerify as problem:
            verdicts.append(None)
            problems.append(problem)
    return _any_reference(verdicts), problems


def denies_messaging(policy: StackResource) -> bool:
    """Whether the policy's Deny statements cover every MQTT action (some resources each suffice): a
    Deny of something harmless, such as deleting the shadow, would not restrict a suspect device."""
    prop = IOT_POLICY_DOCUMENT_PROPERTY[policy.type]
    what = f"the document ({prop}) of IoT policy {policy.name}"
    denials = [statement for statement in statements(policy.props.get(prop), what) if statement.denies]

    def denied(action: str) -> bool:
        return any(
            grants(statement, action, what)
            or (bool(statement.not_actions) and not excludes(statement, action, what))
            for statement in denials
        )

    return all(denied(action) for action in MESSAGING_ACTIONS)


def check_group(ctx: StackContext, group: StackResource, report: Report) -> None:
    iot_policies = ctx.of_type(*IOT_POLICY_NAME_PROPERTY)

    def attaches_deny(attachment: StackResource) -> Reference:
        target = refers_to(attachment, "target", attachment.props.get("target"), group)
        if not target:
            return target
        policy_name = attachment.props.get("policy")
        attached = [policy for policy in iot_policies
                    if attachment.depends_on("policy", policy)
                    or (policy_name is not UNKNOWN and policy_name == physical_name(policy, IOT_POLICY_NAME_PROPERTY))]
        if not attached:
            raise CannotVerify(f"policy {policy_name!r} attached by {attachment.name} is not defined in this stack")
        return any(denies_messaging(policy) for policy in attached)

    def logs(logging: StackResource) -> Reference:
        if logging.props.get("targetType") != "THING_GROUP":
            return None if logging.props.get("targetType") is UNKNOWN else False
        level = logging.props.get("logLevel")
        if level is None or level == "DISABLED":
            return False
        target = refers_to(logging, "targetName", logging.props.get("targetName"), group)
        return None if target is not False and level is UNKNOWN else target

    def quarantines(action: StackResource) -> Reference:
        names = path(action.props, "actionParams", "addThingsToThingGroupParams", "thingGroupNames")
        if names is None:
            return False
        return refers_to(action, "actionParams", names, group)

    requirements: list[tuple[str, list[StackResource], Callable[[StackResource], Reference]]] = [
        (f"an IoT policy attached (aws:iot/policyAttachment:PolicyAttachment targeting the group) whose explicit "
         f"Deny statements cover {', '.join(MESSAGING_ACTIONS)}", ctx.of_type(POLICY_ATTACHMENT), attaches_deny),
        ("a mitigation action that puts things into it (aws-native:iot:MitigationAction with "
         "actionParams.addThingsToThingGroupParams naming the group)", ctx.of_type(MITIGATION_ACTION), quarantines),
    ]
    if not option(ctx.config, QUARANTINE_SCHEMA, "groupLoggingOwnedElsewhere"):
        requirements.append((
            "resource-specific logging (aws-native:iot:ResourceSpecificLogging with targetType THING_GROUP and a "
            "log level other than DISABLED)", ctx.of_type(RESOURCE_SPECIFIC_LOGGING), logs))
    for needed, candidates, satisfies in requirements:
        verdict, problems = requirement(candidates, satisfies)
        if verdict is None:
            for problem in problems or [CannotVerify(f"whether quarantine group {group.name} has {needed}")]:
                report_cannot_verify(report, problem, group.urn)
        elif verdict is False:
            report(f"quarantine group {group.name} lacks {needed}", group.urn)


def declared_role(group: StackResource) -> Any:
    """The group's role tag: ``None`` without one, ``UNKNOWN`` when its tags are unknown at preview."""
    try:
        return tag_map(group.props.get("tags"), f"tags of thing group {group.name}").get(ROLE_TAG_KEY)
    except CannotVerify:
        return UNKNOWN


def check_containment(ctx: StackContext, report: Report) -> None:
    ctx.require_iot("containment-quarantine-group")
    roles = [(group, declared_role(group)) for group in ctx.of_type(*THING_GROUP_NAME_PROPERTY)]
    groups = [group for group, role in roles if role == QUARANTINE_ROLE]
    undecided = [group for group, role in roles if role is UNKNOWN]
    for group in undecided:
        report_cannot_verify(report, CannotVerify(
            f"whether thing group {group.name} is the quarantine group (its {ROLE_TAG_KEY} tag)"), group.urn)
    fragment = str(option(ctx.config, QUARANTINE_SCHEMA, "quarantineGroupNameContains")).lower()
    if not groups and not undecided:
        # Deprecated: a stack that declares no group by tag is judged on the groups its names suggest
        # (never on a group whose tag declares another role).
        groups = [group for group, role in roles if role is None
                  and fragment in str(physical_name(group, THING_GROUP_NAME_PROPERTY) or group.name).lower()]
    if not groups:
        if not undecided:
            report(f"the stack has no quarantine thing group: no thing group is tagged "
                   f"{ROLE_TAG_KEY}={QUARANTINE_ROLE} (nor, by the deprecated quarantineGroupNameContains "
                   f"fallback, named with {fragment!r})")
        return
    for group in groups:
        if has_value(group.props.get("queryString")):
            report(f"quarantine group {group.name} is a dynamic thing group; IoT policies cannot be attached to "
                   "dynamic groups, so it could not restrict devices", group.urn)
            continue
        check_group(ctx, group, report)
    if not ctx.of_type(*IOT_LOGGING) and not option(ctx.config, QUARANTINE_SCHEMA, "accountLoggingOwnedElsewhere"):
        report("the stack does not configure account-wide IoT v2 logging (aws:iot/loggingOptions:LoggingOptions); "
               "resource-specific logging for the quarantine group has no effect without it")


def policies() -> list[Policy]:
    return [
        stack_policy(
            name="containment-quarantine-group",
            description=(f"A quarantine thing group (tagged {ROLE_TAG_KEY}={QUARANTINE_ROLE}) exists with an "
                         "explicit-Deny IoT policy attached and its own logging, and a mitigation action moves "
                         "suspect things into it."),
            severity=Severity.CRITICAL,
            controls=Controls(
                pci=("12.10.1",),
                hipaa=("164.308(a)(6)(ii)",),
                nist=("IR-4", "AC-3", "AU-12"),
            ),
            remediation_steps=(
                f"Create a static thing group tagged {ROLE_TAG_KEY}={QUARANTINE_ROLE} (any name); attach an IoT "
                "policy whose Deny statements cover iot:Publish, iot:Subscribe and iot:Receive for all but "
                "the investigation paths (an explicit Deny overrides every Allow); add "
                "aws-native:iot:ResourceSpecificLogging for it (targetType THING_GROUP, logLevel DEBUG or INFO) "
                "with account v2 logging enabled; add an ADD_THINGS_TO_THING_GROUP "
                "mitigation action naming the group."
            ),
            check=check_containment,
            config_schema=QUARANTINE_SCHEMA,
        ),
    ]

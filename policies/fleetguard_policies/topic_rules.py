"""Topic rules: an error action, a pinned SQL version, no republish into AWS IoT's reserved topics, an
explicit enabled state, and roles limited to the actions they need.

The classic provider spreads a rule's actions over one list per kind (``kineses``, ``republishes``...)
and spells the error action's kinds in the singular; aws-native keeps CloudFormation's
``topicRulePayload`` with ``actions: [{<kind>: {...}}]``. ``actions`` reads both as (top-level property,
label, kind, parameters).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

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
from .values import UNKNOWN, InvalidProperty, as_list, has_value, known, path

CLASSIC: Final = "aws:iot/topicRule:TopicRule"
NATIVE: Final = "aws-native:iot:TopicRule"
TOPIC_RULES: Final = (CLASSIC, NATIVE)
NATIVE_PAYLOAD: Final = "topicRulePayload"
CLASSIC_ACTION_LISTS: Final = (
    "cloudwatchAlarms", "cloudwatchLogs", "cloudwatchMetrics", "dynamodbs", "dynamodbv2s", "elasticsearch",
    "firehoses", "https", "iotAnalytics", "iotEvents", "kafkas", "kineses", "lambdas", "republishes", "s3",
    "sns", "sqs", "stepFunctions", "timestreams",
)
CLASSIC_REPUBLISH: Final = "republishes"
REPUBLISH: Final = "republish"
ERROR_ACTION: Final = "errorAction"
SQL_VERSIONS: Final = ("2015-10-08", "2016-03-23", "beta")
"""The AWS IoT SQL versions (the API types the field as a free string; the developer guide lists these)."""
DEFAULT_SQL_VERSION: Final = "2015-10-08"
RESERVED_TOPIC_PREFIX: Final = "$aws/"

SQL_VERSION_SCHEMA = PolicyConfigSchema(properties={
    "allowedSqlVersions": {
        "type": "array",
        "items": {"type": "string", "enum": list(SQL_VERSIONS)},
        "minItems": 1,
        "description": "AWS IoT SQL versions a topic rule may use (2016-03-23 is the current one).",
        "default": ["2016-03-23"],
    },
})
RESERVED_REPUBLISH_SCHEMA = PolicyConfigSchema(properties={
    "allowedReservedTopicPrefixes": {
        "type": "array",
        "items": {"type": "string", "pattern": r"^\$aws/"},
        "description": ("Reserved topic prefixes a rule may republish into, e.g. $aws/things/ where rules "
                        "deliberately update device shadows. Empty: none."),
        "default": [],
    },
})
ROUTING = Controls(pci=("10.2.1", "12.10.1"), hipaa=("164.312(b)", "164.308(a)(6)(ii)"), nist=("AU-5", "SI-11"))
CONFIGURATION = Controls(pci=("2.2.1", "6.5.1"), hipaa=("164.308(a)(1)(ii)(B)",), nist=("CM-2", "CM-6"))


@dataclass(frozen=True)
class RuleAction:
    prop: str
    """The top-level property it sits in (what the engine's property dependencies are keyed by)."""
    label: str
    kind: str
    params: Any


def payload(resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """The rule's payload: aws-native's ``topicRulePayload``, or the classic resource's own properties."""
    if resource_type == CLASSIC:
        return props
    value = known(props.get(NATIVE_PAYLOAD), NATIVE_PAYLOAD)
    if not isinstance(value, dict):
        raise InvalidProperty(f"{NATIVE_PAYLOAD} must be an object")
    return value


def _action(prop: str, label: str, entry: Any) -> Iterator[RuleAction]:
    entry = known(entry, label)
    if not isinstance(entry, dict):
        raise InvalidProperty(f"{label} must be an object")
    for kind, params in entry.items():
        if params is not None:
            yield RuleAction(prop, f"{label}.{kind}", kind, params)


def actions(resource_type: str, props: dict[str, Any]) -> Iterator[RuleAction]:
    """Every action the rule takes, its error action included."""
    if resource_type == CLASSIC:
        for prop in CLASSIC_ACTION_LISTS:
            for position, params in enumerate(as_list(known(props.get(prop), prop))):
                kind = REPUBLISH if prop == CLASSIC_REPUBLISH else prop
                yield RuleAction(prop, f"{prop}[{position}]", kind, params)
        if has_value(props.get(ERROR_ACTION)):
            yield from _action(ERROR_ACTION, ERROR_ACTION, props[ERROR_ACTION])
        return
    body = payload(resource_type, props)
    for position, entry in enumerate(as_list(known(body.get("actions"), f"{NATIVE_PAYLOAD}.actions"))):
        yield from _action(NATIVE_PAYLOAD, f"{NATIVE_PAYLOAD}.actions[{position}]", entry)
    if has_value(body.get(ERROR_ACTION)):
        yield from _action(NATIVE_PAYLOAD, f"{NATIVE_PAYLOAD}.{ERROR_ACTION}", body[ERROR_ACTION])


def _where(resource_type: str, key: str) -> str:
    return key if resource_type == CLASSIC else f"{NATIVE_PAYLOAD}.{key}"


def check_error_action(ctx: ResourceContext, report: Report) -> None:
    error_action = payload(ctx.type, ctx.props).get(ERROR_ACTION)
    if not has_value(error_action) or (isinstance(error_action, dict) and not any(
            has_value(params) for params in error_action.values())):
        report(f"{_where(ctx.type, ERROR_ACTION)} is not set: messages whose actions fail are dropped without "
               "a trace; route them to a queue, stream, bucket or log group")


def check_sql_version(ctx: ResourceContext, report: Report) -> None:
    allowed = option(ctx.config, SQL_VERSION_SCHEMA, "allowedSqlVersions")
    key = "sqlVersion" if ctx.type == CLASSIC else "awsIotSqlVersion"
    where = _where(ctx.type, key)
    version = known(payload(ctx.type, ctx.props).get(key), where)
    if version is None:
        report(f"{where} is not set, so AWS IoT uses {DEFAULT_SQL_VERSION}; pin one of {', '.join(allowed)}")
    elif version not in allowed:
        report(f"{where} is {version!r}; this environment allows {', '.join(allowed)}")


def check_reserved_republish(ctx: ResourceContext, report: Report) -> None:
    allowed = option(ctx.config, RESERVED_REPUBLISH_SCHEMA, "allowedReservedTopicPrefixes")
    for action in actions(ctx.type, ctx.props):
        if action.kind != REPUBLISH:
            continue
        topic = known(path(action.params, "topic"), f"{action.label}.topic")
        if not isinstance(topic, str) or not topic.startswith("$"):
            continue
        # A republish topic escapes $ as $$ (a single $ starts a substitution template).
        reserved = "$" + topic.lstrip("$")
        if reserved.startswith(RESERVED_TOPIC_PREFIX) and not any(reserved.startswith(p) for p in allowed):
            report(f"{action.label} republishes into the reserved topic {topic}, where messages pose as AWS IoT's "
                   "own (shadows, jobs, Device Defender, lifecycle events); republish to an application topic")


def check_enabled_explicit(ctx: ResourceContext, report: Report) -> None:
    key = "enabled" if ctx.type == CLASSIC else "ruleDisabled"
    where = _where(ctx.type, key)
    value = known(payload(ctx.type, ctx.props).get(key), where)
    if not isinstance(value, bool):
        report(f"{where} is not set: state whether the rule runs (true or false) so enabling or disabling "
               "message routing is a reviewed change")


def check_roles_scoped(stack: StackContext, report: Report) -> None:
    rules = stack.require(*TOPIC_RULES, reason=(
        "topic-rule-role-scoped applies to stacks with topic rules; this one has none"))
    roles = StackRoles.of(stack)

    def check(rule: StackResource) -> None:
        references = ((action.prop, role_arn) for action in actions(rule.type, rule.props)
                      for role_arn in _role_arns(action.params))
        for role, finding in roles.wildcard_grants(rule, references):
            report(f"topic rule {rule.name} acts as role {role.name}, whose {finding}; list the actions its "
                   "rule actions need", rule.urn)

    each(rules, report, check)


def _role_arns(params: Any) -> Iterator[Any]:
    """Every ``roleArn`` in an action's parameters (some nest it, e.g. an HTTP action's SigV4 auth)."""
    if params is UNKNOWN:
        yield UNKNOWN
    elif isinstance(params, dict):
        for key, value in params.items():
            if key == "roleArn":
                yield value
            else:
                yield from _role_arns(value)
    elif isinstance(params, list):
        for item in params:
            yield from _role_arns(item)


def policies() -> list[Policy]:
    governs = of_types(*TOPIC_RULES)
    return [
        resource_policy(
            name="topic-rule-error-action",
            description="Every topic rule has an error action, so messages its actions fail on are kept.",
            severity=Severity.MEDIUM,
            controls=ROUTING,
            remediation_steps=(
                "Add an errorAction (aws-native: topicRulePayload.errorAction) that delivers failed messages "
                "somewhere durable, e.g. an SQS queue, a Kinesis stream, an S3 bucket or CloudWatch Logs."
            ),
            governs=governs,
            check=check_error_action,
        ),
        resource_policy(
            name="topic-rule-sql-version-pinned",
            description="Every topic rule pins an allowed AWS IoT SQL version instead of the 2015-10-08 default.",
            severity=Severity.LOW,
            controls=CONFIGURATION,
            remediation_steps=(
                "Set sqlVersion (aws-native: topicRulePayload.awsIotSqlVersion) to 2016-03-23, or to a version "
                "listed in allowedSqlVersions, and test the rule's SQL against it."
            ),
            governs=governs,
            check=check_sql_version,
            config_schema=SQL_VERSION_SCHEMA,
        ),
        resource_policy(
            name="topic-rule-no-reserved-republish",
            description="No topic rule republishes into AWS IoT's reserved $aws/ topics.",
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Republish to an application topic instead of $aws/ (written $$aws/ in a rule). Where a rule "
                "must update shadows, list that reserved prefix in allowedReservedTopicPrefixes and scope the "
                "rule's role to those topics."
            ),
            governs=governs,
            check=check_reserved_republish,
            config_schema=RESERVED_REPUBLISH_SCHEMA,
        ),
        resource_policy(
            name="topic-rule-enabled-explicit",
            description="Every topic rule states whether it is enabled (enabled / ruleDisabled set explicitly).",
            severity=Severity.LOW,
            controls=CONFIGURATION,
            remediation_steps=(
                "Set enabled (classic) or topicRulePayload.ruleDisabled (aws-native) explicitly, so a rule "
                "starting or stopping to route messages shows up in review."
            ),
            governs=governs,
            check=check_enabled_explicit,
        ),
        stack_policy(
            name="topic-rule-role-scoped",
            description=("Each IAM role a topic rule action uses is allowed no wildcard action by the policies "
                         "the stack attaches to it."),
            severity=Severity.HIGH,
            controls=LEAST_PRIVILEGE,
            remediation_steps=(
                "Give each rule action a role whose policies list only what the action does (e.g. "
                "kinesis:PutRecord on the one stream, sqs:SendMessage on the one queue, iot:Publish on the "
                "republish topics) and attach no AdministratorAccess, PowerUserAccess or *FullAccess policy."
            ),
            check=check_roles_scoped,
        ),
    ]

"""Tagging: every taggable resource carries the required tags (owner, environment...), so findings and
costs trace back to a team. A remediation adds the configured default tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, ResourceContext, option, resource_policy
from .values import UNKNOWN, CannotVerify, InvalidProperty, has_value, json_value, known

# Types fleetguard registers that accept tags. Any other resource that passes a `tags` property is
# governed too, so the list only has to name the taggable types a program might leave untagged.
TAGGABLE_TYPES: Final = frozenset({
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:iam/policy:Policy",
    "aws:iam/role:Role",
    "aws:iot/policy:Policy",
    "aws:iot/thingGroup:ThingGroup",
    "aws:kms/key:Key",
    "aws:lambda/function:Function",
    "aws:sns/topic:Topic",
    "aws:sqs/queue:Queue",
    "aws:ssm/document:Document",
    "aws:ssmcontacts/contact:Contact",
    "aws:ssmincidents/replicationSet:ReplicationSet",
    "aws:ssmincidents/responsePlan:ResponsePlan",
    "aws-native:iot:CustomMetric",
    "aws-native:iot:Dimension",
    "aws-native:iot:MitigationAction",
    "aws-native:iot:Policy",
    "aws-native:iot:ScheduledAudit",
    "aws-native:iot:SecurityProfile",
    "aws-native:iot:ThingGroup",
    "aws-native:logs:LogGroup",
})
DEFAULT_REQUIRED_TAGS: Final = ("Project", "Environment", "Owner")

TAGS_SCHEMA = PolicyConfigSchema(properties={
    "requiredTags": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "uniqueItems": True,
        "description": "Tag keys every taggable resource must carry with a non-empty value.",
        "default": list(DEFAULT_REQUIRED_TAGS),
    },
    "defaultTags": {
        "type": "object",
        "additionalProperties": {"type": "string", "minLength": 1},
        "description": "Tags the remediation adds to a resource that lacks them (key to value).",
        "default": {"Project": "fleetguard"},
    },
})


def governs(resource_type: str, props: Mapping[str, Any]) -> bool:
    if resource_type in TAGGABLE_TYPES:
        return True
    # Iterating keys never reads a value, so an unknown tags map does not raise here.
    return resource_type.startswith(("aws:", "aws-native:")) and any(key == "tags" for key in props)


def uses_tag_list(ctx: ResourceContext) -> bool:
    """aws-native takes tags as a list of {key, value}; pulumi-aws as a map."""
    tags = ctx.props.get("tags")
    return isinstance(tags, list) or (tags is None and ctx.type.startswith("aws-native:"))


def tag_map(tags: Any, what: str = "tags") -> dict[str, Any]:
    """Tags as a key to value map, from either shape (``what`` names them in errors): a value may be
    ``UNKNOWN``; an unknown map, entry or key raises ``CannotVerify``."""
    tags = known(tags, what)
    if tags is None:
        return {}
    if isinstance(tags, dict):
        return tags
    if isinstance(tags, list):
        pairs: dict[str, Any] = {}
        for position, item in enumerate(tags, start=1):
            entry = known(item, f"{what}[{position}]")
            key = known(entry.get("key"), f"{what}[{position}].key") if isinstance(entry, dict) else None
            if not isinstance(key, str):
                raise InvalidProperty(f"{what}[{position}] must be an object with a string key")
            pairs[key] = entry.get("value")
        return pairs
    raise InvalidProperty(f"{what} must be a map or a list of key/value objects, got {tags!r}")


def resource_tags(ctx: ResourceContext) -> dict[str, Any]:
    return tag_map(ctx.props.get("tags"))


def provider_default_tags(ctx: ResourceContext) -> dict[str, Any]:
    """Tags the resource's provider adds through defaultTags (they never appear in resource inputs)."""
    default_tags = ctx.provider_props.get("defaultTags")
    if not has_value(default_tags) or default_tags is UNKNOWN:
        return {}
    # Provider inputs reach the engine JSON-encoded.
    parsed = json_value(default_tags, "provider defaultTags") if isinstance(default_tags, str) else default_tags
    tags = parsed.get("tags") if isinstance(parsed, dict) else None
    return tags if isinstance(tags, dict) else {}


def missing_tags(ctx: ResourceContext) -> list[str]:
    effective = {**provider_default_tags(ctx), **resource_tags(ctx)}
    required = option(ctx.config, TAGS_SCHEMA, "requiredTags")
    return [key for key in required if not has_value(effective.get(key))]


def check_required_tags(ctx: ResourceContext, report: Report) -> None:
    missing = missing_tags(ctx)
    if missing:
        report(f"missing required tag(s) {', '.join(missing)} (tags must carry each with a non-empty value)")


def add_default_tags(ctx: ResourceContext) -> dict[str, Any] | None:
    try:
        present = {**provider_default_tags(ctx), **resource_tags(ctx)}
    except (CannotVerify, InvalidProperty):
        return None  # the validation reports tags it cannot read
    defaults: dict[str, str] = dict(option(ctx.config, TAGS_SCHEMA, "defaultTags"))
    additions = {key: value for key, value in defaults.items() if not has_value(present.get(key))}
    if not additions:
        return None
    current = ctx.props.get("tags")
    if uses_tag_list(ctx):
        kept = [item for item in current or [] if isinstance(item, dict) and item.get("key") not in additions]
        return {"tags": kept + [{"key": key, "value": value} for key, value in sorted(additions.items())]}
    return {"tags": {**(current if isinstance(current, dict) else {}), **additions}}


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="required-tags",
            description="Taggable resources carry the required tags (by default Project, Environment and Owner).",
            severity=Severity.LOW,
            controls=Controls(pci=("12.5.1",), hipaa=("164.308(a)(1)(ii)(A)",), nist=("CM-8",)),
            remediation_steps=(
                "Pass the required tags to every taggable resource (or through the provider's defaultTags). "
                "With enforcement level 'remediate' the pack adds the configured defaultTags itself."
            ),
            governs=governs,
            check=check_required_tags,
            config_schema=TAGS_SCHEMA,
            fix=add_default_tags,
        ),
    ]

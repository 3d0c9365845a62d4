"""The tagging rule and its remediation over gRPC."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.analyzer import UNKNOWN_SENTINEL, AnalyzerResource, EnforcementLevel, PolicyPackProcess, ProviderInfo
from tests.policies.stack_builders import (
    NATIVE_TAGS,
    TAGS,
    audit_configuration,
    changed,
    kms_key,
    log_group,
    resource,
    scheduled_audit,
    security_profile,
    topic,
    unknown,
    violations,
)

RULE = "required-tags"
DEFAULTS = {"Project": "fleetguard", "Environment": "test", "Owner": "iot-security"}

# Taggable types fleetguard registers; each must be judged even when it carries no tags at all.
TAGGABLE = (
    "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:iam/policy:Policy", "aws:iam/role:Role", "aws:iot/policy:Policy", "aws:iot/thingGroup:ThingGroup",
    "aws:kms/key:Key", "aws:lambda/function:Function", "aws:sns/topic:Topic", "aws:sqs/queue:Queue",
    "aws:ssm/document:Document", "aws:ssmcontacts/contact:Contact", "aws:ssmincidents/replicationSet:ReplicationSet",
    "aws:ssmincidents/responsePlan:ResponsePlan", "aws-native:iot:MitigationAction", "aws-native:iot:ScheduledAudit",
    "aws-native:iot:SecurityProfile",
)


def provider(default_tags: dict[str, str]) -> ProviderInfo:
    # pulumi-aws sends object-typed provider inputs JSON-encoded.
    return ProviderInfo("pulumi:providers:aws", "urn:pulumi:policytest::fleetguard::pulumi:providers:aws::tagged",
                        "tagged", {"region": "us-east-1", "defaultTags": json.dumps({"tags": default_tags})})


@pytest.mark.parametrize("tagged", [topic(), kms_key(), security_profile(), scheduled_audit()])
def test_resources_with_the_required_tags_pass(pack: PolicyPackProcess, tagged: AnalyzerResource) -> None:
    result = pack.analyze(tagged)

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


@pytest.mark.parametrize("resource_type", TAGGABLE)
def test_every_taggable_type_without_tags_is_reported(pack: PolicyPackProcess, resource_type: str) -> None:
    [message] = violations(pack.analyze(resource(resource_type, "untagged", {})), RULE)

    assert "missing required tag(s) Project, Environment, Owner" in message


@pytest.mark.parametrize(("tags", "missing"), [
    ({"Project": "fleetguard", "Environment": "test"}, "Owner"),
    ({**TAGS, "Owner": ""}, "Owner"),
    ([item for item in NATIVE_TAGS if item["key"] != "Environment"], "Environment"),
])
def test_a_missing_or_empty_required_tag_is_reported(pack: PolicyPackProcess, tags: object, missing: str) -> None:
    tagged = scheduled_audit() if isinstance(tags, list) else topic()

    [message] = violations(pack.analyze(changed(tagged, tags=tags)), RULE)

    assert f"missing required tag(s) {missing} " in message


def test_provider_default_tags_count(pack: PolicyPackProcess) -> None:
    untagged = dataclasses.replace(changed(topic(), tags=None), provider=provider(DEFAULTS))

    assert not violations(pack.analyze(untagged), RULE)


def test_the_required_tag_keys_are_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({RULE: {"requiredTags": ["CostCenter"]}})

    [message] = violations(pack.analyze(topic()), RULE)

    assert "CostCenter" in message


def test_unknown_tag_values_count_but_an_unknown_tag_map_fails_closed(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(topic(tags={**TAGS, "Owner": unknown()})), RULE)

    [message] = violations(pack.analyze(topic(tags=unknown())), RULE)
    assert message.startswith("cannot verify at the update")


@pytest.mark.parametrize("untaggable", [
    audit_configuration(),
    resource("aws:iot/policyAttachment:PolicyAttachment", "attachment", {"policy": "p", "target": "t"}),
    resource("fleetguard:alerts:AlertTopic", "component", {"tags": {}}),
])
def test_the_rule_does_not_apply_to_untaggable_types(pack: PolicyPackProcess, untaggable: AnalyzerResource) -> None:
    assert RULE in pack.analyze(untaggable).not_applicable


# -- remediation ------------------------------------------------------------------------------------------

def remediating(pack: PolicyPackProcess, **config: object) -> None:
    pack.configure({RULE: {"enforcementLevel": "remediate", "defaultTags": DEFAULTS, **config}})


def test_the_remediation_adds_the_default_tags_and_keeps_everything_else(pack: PolicyPackProcess) -> None:
    remediating(pack)
    partly_tagged = topic(tags={"CostCenter": "iot"}, kmsMasterKeyId=unknown())

    properties, applied = pack.remediate(partly_tagged)

    assert [item.policy_name for item in applied] == [RULE]
    assert properties["tags"] == {"CostCenter": "iot", **DEFAULTS}
    assert properties["name"] == "fleetguard-alerts"
    assert properties["kmsMasterKeyId"] == UNKNOWN_SENTINEL  # still unknown, not dropped or resolved
    assert not violations(pack.analyze(dataclasses.replace(partly_tagged, inputs=properties)), RULE)


def test_the_remediation_keeps_existing_values_and_the_native_tag_shape(pack: PolicyPackProcess) -> None:
    remediating(pack)
    audit = changed(scheduled_audit(), tags=[{"key": "Owner", "value": "team-a"}])

    properties, _ = pack.remediate(audit)

    assert properties["tags"] == [
        {"key": "Owner", "value": "team-a"},
        {"key": "Environment", "value": "test"},
        {"key": "Project", "value": "fleetguard"},
    ]


def test_the_remediation_does_not_touch_compliant_or_untaggable_resources(pack: PolicyPackProcess) -> None:
    remediating(pack)

    for untouched in (topic(), audit_configuration(), log_group()):
        properties, applied = pack.remediate(untouched)
        assert not applied
        assert properties == dict(untouched.inputs)


def test_a_tag_the_defaults_cannot_supply_still_blocks_after_remediation(pack: PolicyPackProcess) -> None:
    remediating(pack, requiredTags=["Project", "DataClassification"])
    untagged = changed(topic(), tags=None)

    report = pack.preview([untagged])

    assert [item.policy_name for item in report.remediations] == [RULE]
    [diagnostic] = [item for item in report.diagnostics if item.policy_name == RULE]
    assert "DataClassification" in diagnostic.message
    assert diagnostic.enforcement_level is EnforcementLevel.MANDATORY


def test_the_fleet_index_wait_is_not_a_taggable_aws_resource(pack: PolicyPackProcess) -> None:
    # A Pulumi dynamic resource that only polls DescribeIndex: nothing exists in AWS to tag or to judge.
    wait = resource("pulumi-python:dynamic/fleetguard:IndexReady", "fleetguard-test-fleet-index-ready", {
        "indexName": "AWS_Things", "region": "us-east-1", "timeoutSeconds": 1800,
        "indexingFingerprint": "1818cb3d9fb8b7a3", "__provider": "serialised provider",
    })
    result = pack.analyze(wait)

    assert result.diagnostics == ()
    assert RULE in result.not_applicable

"""The alert topic, audit and detect components as the dev and prod programs register them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import stack_outputs as out
from harness import mockstack
from harness.mockstack import StackRun, run_stack
from settings import ConfigError
from settings.facts import AUDIT_CHECKS, CRITICAL_AUDIT_CHECKS


def policy(document: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


def test_bad_config_fails_before_any_resource_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[str] = []
    new_resource = mockstack._RecordingMocks.new_resource

    def recording(self: Any, args: Any) -> Any:
        registered.append(args.typ)
        return new_resource(self, args)

    monkeypatch.setattr(mockstack._RecordingMocks, "new_resource", recording)
    with pytest.raises(ConfigError, match=r"fleetguard:detect\.ruleBehaviors\[0\]\.durationSeconds"):
        run_stack("dev", {"detect": {"ruleBehaviors": [
            {"name": "B", "metric": "aws:num-messages-sent", "operator": "less-than", "value": 1,
             "durationSeconds": 42},
        ]}})
    assert registered == []
    run_stack("dev")  # the same hook sees every resource of a valid stack
    assert "aws:kms/key:Key" in registered


def test_alert_topic_is_encrypted_with_a_rotating_customer_key(any_stack: StackRun) -> None:
    key = any_stack.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    for topic in any_stack.of_type("aws:sns/topic:Topic"):
        assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    statements = policy(key.inputs["policy"])["Statement"]
    for entry in statements:
        assert all("*" not in action for action in entry["Action"])
    assert "kms:DisableKeyRotation" not in {a for entry in statements for a in entry["Action"]}
    by_sid = {s["Sid"]: s for s in statements}
    scoped = by_sid["AwsServicesUseKeyForThisAccount"]
    assert scoped["Principal"] == {"Service": ["sns.amazonaws.com"]}
    assert scoped["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    unscoped = by_sid["AwsServicesPublishToEncryptedTopics"]
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= set(unscoped["Principal"]["Service"])
    assert "sns.amazonaws.com" not in unscoped["Principal"]["Service"]
    assert "Condition" not in unscoped
    # The account's own principals only through SNS, SQS and DynamoDB (the tables) in the stack's region.
    account_use = by_sid["AccountPrincipalsUseKeyViaMessaging"]
    assert account_use["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert account_use["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert account_use["Condition"] == {"StringEquals": {
        "kms:CallerAccount": "123456789012",
        "kms:ViaService": ["sns.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com",
                           "dynamodb.us-east-1.amazonaws.com"],
    }}
    # DynamoDB may hold a grant on the key for a table, and only for an AWS resource.
    grant = by_sid["AccountPrincipalsLetDynamoDbUseKey"]
    assert grant["Action"] == ["kms:CreateGrant", "kms:DescribeKey"]
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    for table in any_stack.of_type("aws:dynamodb/table:Table"):
        assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key.outputs["arn"]}


def test_publish_role_trusts_iot_and_may_only_publish_to_the_topic(any_stack: StackRun) -> None:
    role = next(r for r in any_stack.of_type("aws:iam/role:Role") if r.name.endswith("alerts-publish-role"))
    trust = policy(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    grant = next(
        r for r in any_stack.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("alerts-publish-policy")
    )
    assert grant.inputs["role"] == role.id
    statements = policy(grant.inputs["policy"])["Statement"]
    topic = next(t for t in any_stack.of_type("aws:sns/topic:Topic") if t.name.endswith("alerts-topic"))
    key = any_stack.one("aws:kms/key:Key")
    assert {(tuple(s["Action"]), tuple(s["Resource"])) for s in statements} == {
        (("sns:Publish",), (topic.outputs["arn"],)),
        (("kms:Decrypt", "kms:GenerateDataKey"), (key.outputs["arn"],)),
    }


def test_every_audit_check_is_set_explicitly(any_stack: StackRun) -> None:
    configuration = any_stack.one("aws-native:iot:AccountAuditConfiguration")
    checks = configuration.inputs["auditCheckConfigurations"]
    assert len(checks) == len(AUDIT_CHECKS)
    assert all(isinstance(entry["enabled"], bool) for entry in checks.values())
    assert "ioTPolicyPotentialMisConfigurationCheck" in checks
    assert configuration.inputs["accountId"] == "123456789012"


def test_prod_audit_configuration(prod_stack: StackRun) -> None:
    configuration = prod_stack.one("aws-native:iot:AccountAuditConfiguration")
    checks = configuration.inputs["auditCheckConfigurations"]
    assert all(entry["enabled"] for entry in checks.values())
    assert checks["deviceCertificateExpiringCheck"]["configuration"] == {"certExpirationThresholdInDays": "60"}
    assert checks["deviceCertificateAgeCheck"]["configuration"] == {"certAgeThresholdInDays": "365"}


def test_dev_disables_only_what_it_says(dev_stack: StackRun) -> None:
    checks = dev_stack.one("aws-native:iot:AccountAuditConfiguration").inputs["auditCheckConfigurations"]
    disabled = {name for name, entry in checks.items() if not entry["enabled"]}
    assert disabled == {"deviceCertificateSharedCheck", "deviceCertificateAgeCheck"}


def test_audit_notifications_and_role_wiring(any_stack: StackRun) -> None:
    configuration = any_stack.one("aws-native:iot:AccountAuditConfiguration")
    # The audit component's own role, not the on-demand audit document's.
    audit_role = next(
        r for r in any_stack.of_type("aws:iam/role:Role") if re.fullmatch(r"fleetguard-\w+-audit-role", r.name)
    )
    assert configuration.inputs["roleArn"] == audit_role.outputs["arn"]
    trust = policy(audit_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    attachment = next(r for r in any_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if r.name.endswith("audit-role-read-config"))
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit"
    sns = configuration.inputs["auditNotificationTargetConfigurations"]["sns"]
    assert sns["enabled"] is True
    assert sns["targetArn"] == any_stack.outputs[out.ALERT_TOPIC_ARN]
    assert sns["roleArn"] == any_stack.outputs[out.ALERT_PUBLISH_ROLE_ARN]


def test_prod_schedules(prod_stack: StackRun) -> None:
    schedules = {s.inputs["scheduledAuditName"]: s.inputs for s in prod_stack.of_type("aws-native:iot:ScheduledAudit")}
    assert schedules["prod-daily-critical"]["frequency"] == "DAILY"
    assert set(schedules["prod-daily-critical"]["targetCheckNames"]) == set(CRITICAL_AUDIT_CHECKS)
    assert schedules["prod-weekly-all"]["dayOfWeek"] == "SUN"
    assert len(schedules["prod-weekly-all"]["targetCheckNames"]) == len(AUDIT_CHECKS)
    assert prod_stack.outputs[out.AUDIT_SCHEDULE_NAMES] == ["prod-daily-critical", "prod-weekly-all"]


def test_dev_schedule_skips_the_exempted_critical_check(dev_stack: StackRun) -> None:
    schedule = dev_stack.one("aws-native:iot:ScheduledAudit").inputs
    assert schedule["frequency"] == "WEEKLY"
    assert schedule["dayOfWeek"] == "MON"
    assert "DEVICE_CERTIFICATE_SHARED_CHECK" not in schedule["targetCheckNames"]
    assert set(schedule["targetCheckNames"]) == set(CRITICAL_AUDIT_CHECKS) - {"DEVICE_CERTIFICATE_SHARED_CHECK"}


def test_schedules_wait_for_the_audit_configuration(any_stack: StackRun) -> None:
    configuration = any_stack.one("aws-native:iot:AccountAuditConfiguration")
    for schedule in any_stack.of_type("aws-native:iot:ScheduledAudit"):
        assert configuration.urn in schedule.dependencies


def test_profiles_alert_to_the_topic_through_the_publish_role(any_stack: StackRun) -> None:
    profiles = any_stack.of_type("aws-native:iot:SecurityProfile")
    assert profiles
    for profile in profiles:
        target = profile.inputs["alertTargets"]["SNS"]
        assert target["alertTargetArn"] == any_stack.outputs[out.ALERT_TOPIC_ARN]
        assert target["roleArn"] == any_stack.outputs[out.ALERT_PUBLISH_ROLE_ARN]
        assert profile.inputs["targetArns"] == ["arn:aws:iot:us-east-1:123456789012:all/things"]


def test_rule_profile_behaviors(prod_stack: StackRun) -> None:
    profile = next(p for p in prod_stack.of_type("aws-native:iot:SecurityProfile")
                   if p.inputs["securityProfileName"] == "fleetguard-prod-rules")
    behaviors = {b["name"]: b for b in profile.inputs["behaviors"]}
    ports = behaviors["AuthorizedListeningTcpPorts"]
    assert ports["metric"] == "aws:listening-tcp-ports"
    assert ports["criteria"]["comparisonOperator"] == "in-port-set"
    assert ports["criteria"]["value"] == {"ports": [443, 8883]}
    assert "durationSeconds" not in ports["criteria"]
    sent = behaviors["MessagesSent"]["criteria"]
    assert sent["value"] == {"count": "100"}
    assert sent["durationSeconds"] == 300
    statistical = behaviors["MessagesSentP99"]["criteria"]
    assert statistical["statisticalThreshold"] == {"statistic": "p99"}
    assert "value" not in statistical
    assert statistical["consecutiveDatapointsToAlarm"] == 2
    assert profile.inputs["additionalMetricsToRetainV2"] == [{"metric": "aws:num-disconnects"}]
    assert prod_stack.outputs[out.RULE_PROFILE_ARN].endswith(":securityprofile/fleetguard-prod-rules")


def test_ml_profile_in_prod_only(dev_stack: StackRun, prod_stack: StackRun) -> None:
    ml = next(p for p in prod_stack.of_type("aws-native:iot:SecurityProfile")
              if p.inputs["securityProfileName"] == "fleetguard-prod-ml")
    for behavior in ml.inputs["behaviors"]:
        assert set(behavior["criteria"]) == {"mlDetectionConfig", "consecutiveDatapointsToAlarm",
                                             "consecutiveDatapointsToClear"}
        assert behavior["criteria"]["mlDetectionConfig"]["confidenceLevel"] in {"LOW", "MEDIUM", "HIGH"}
    assert out.ML_PROFILE_ARN in prod_stack.outputs
    assert [p.inputs["securityProfileName"] for p in dev_stack.of_type("aws-native:iot:SecurityProfile")] == [
        "fleetguard-dev-rules"]


def test_detect_can_be_switched_off() -> None:
    run = run_stack("prod", {"detect": {"enabled": False}})
    assert run.of_type("aws-native:iot:SecurityProfile") == []
    assert run.outputs[out.DETECT_ENABLED] is False
    assert run.of_type("aws-native:iot:AccountAuditConfiguration")


def test_detect_targets_named_groups() -> None:
    run = run_stack("dev", {"detect": {"targets": ["gateways", "sensors"]}})
    profiles = run.of_type("aws-native:iot:SecurityProfile")
    assert len(profiles) == 2  # the rule profile and the ML profile (on by default)
    for profile in profiles:
        assert profile.inputs["targetArns"] == [
            "arn:aws:iot:us-east-1:123456789012:thinggroup/gateways",
            "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors",
        ]


def test_every_child_is_parented_to_its_component(any_stack: StackRun) -> None:
    components = {r.urn for r in any_stack.resources if r.type.startswith("fleetguard:")}
    for resource in any_stack.resources:
        if resource.custom:
            assert resource.parent in components, resource.urn


def test_taggable_resources_carry_the_stack_tags(any_stack: StackRun) -> None:
    expected = {"Project": "fleetguard", "Environment": any_stack.stack}
    for resource in any_stack.resources:
        tags = resource.inputs.get("tags")
        if isinstance(tags, dict):
            assert expected.items() <= tags.items(), resource.urn
        elif isinstance(tags, list):
            pairs = {tag["key"]: tag["value"] for tag in tags}
            assert expected.items() <= pairs.items(), resource.urn

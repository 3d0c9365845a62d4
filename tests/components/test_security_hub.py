"""The Security Hub component as the dev and prod programs register it: ownership, the Device Defender
product subscriptions, the finding rule (checked against sample Security Hub events) and the responders
topic policy."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stack_outputs as out
from components.security_hub import FINDING_INPUT_PATHS, FINDING_MESSAGE_TEMPLATE
from harness.mockstack import ACCOUNT_ID, StackRun, run_stack
from settings import ConfigError

EVENTS = Path(__file__).resolve().parent.parent / "events"
AUDIT_PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-audit"
DETECT_PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-detect"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


DETECT_HIGH = sample("securityhub-device-defender-detect-high.json")
AUDIT_CRITICAL = sample("securityhub-device-defender-audit-critical.json")
DETECT_ARCHIVED = sample("securityhub-device-defender-detect-archived.json")


def field_values(value: Any, path: list[str]) -> Iterator[Any]:
    """Every value at ``path``, looking through arrays the way EventBridge does."""
    if isinstance(value, list):
        for item in value:
            yield from field_values(item, path)
    elif not path:
        yield value
    elif isinstance(value, dict) and path[0] in value:
        yield from field_values(value[path[0]], path[1:])


def leaf_conditions(pattern: dict[str, Any], prefix: list[str]) -> Iterator[tuple[list[str], list[Any]]]:
    for key, expected in pattern.items():
        if isinstance(expected, dict):
            yield from leaf_conditions(expected, [*prefix, key])
        else:
            assert isinstance(expected, list), f"{key}: pattern leaves must be lists"
            assert all(not isinstance(item, dict | list) for item in expected), "only exact values are modelled"
            yield [*prefix, key], expected


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge exact-value matching: every field in the pattern must hold one of the listed values."""
    return all(
        any(value in expected for value in field_values(event, path))
        for path, expected in leaf_conditions(pattern, [])
    )


def input_path(event: dict[str, Any], path: str) -> Any:
    """Resolve an EventBridge input path such as ``$.detail.findings[0].Title``."""
    value: Any = event
    for name, index in re.findall(r"\.([A-Za-z0-9_-]+)(?:\[(\d+)\])?", path[1:]):
        value = value[name]
        if index:
            value = value[int(index)]
    return value


def render(event: dict[str, Any]) -> str:
    """What the responders receive: the template with each placeholder replaced (JSON-escaped, as
    EventBridge does inside a quoted template), decoded as the JSON string it is."""
    text = FINDING_MESSAGE_TEMPLATE
    for key, path in FINDING_INPUT_PATHS.items():
        text = text.replace(f"<{key}>", json.dumps(input_path(event, path))[1:-1])
    message = json.loads(text)
    assert isinstance(message, str)
    return message


def finding_pattern(run: StackRun) -> dict[str, Any]:
    pattern: dict[str, Any] = json.loads(run.one("aws:cloudwatch/eventRule:EventRule").inputs["eventPattern"])
    return pattern


def component(run: StackRun) -> str:
    return run.one("fleetguard:securityhub:SecurityHub").urn


def test_dev_owns_security_hub_and_subscribes_only_after_enabling_it(dev_stack: StackRun) -> None:
    account = dev_stack.one("aws:securityhub/account:Account")
    assert account.parent == component(dev_stack)
    assert account.inputs["enableDefaultStandards"] is False

    subscriptions = dev_stack.of_type("aws:securityhub/productSubscription:ProductSubscription")
    assert sorted(s.inputs["productArn"] for s in subscriptions) == [AUDIT_PRODUCT, DETECT_PRODUCT]
    for subscription in subscriptions:
        assert account.urn in subscription.dependencies
        assert subscription.parent == component(dev_stack)


def test_prod_leaves_security_hub_to_the_organisation_but_still_subscribes(prod_stack: StackRun) -> None:
    assert prod_stack.of_type("aws:securityhub/account:Account") == []
    subscriptions = prod_stack.of_type("aws:securityhub/productSubscription:ProductSubscription")
    assert sorted(s.inputs["productArn"] for s in subscriptions) == [AUDIT_PRODUCT, DETECT_PRODUCT]


def test_security_hub_outlives_the_stack_unless_the_environment_says_otherwise() -> None:
    dev_account = run_stack("dev").one("aws:securityhub/account:Account")
    assert (dev_account.name, dev_account.retain_on_delete) == ("fleetguard-dev-security-hub-account", False)

    prod_account = run_stack("prod", {"securityHub": {"manageAccount": True}}).one("aws:securityhub/account:Account")
    assert prod_account.name == "fleetguard-prod-security-hub-account"
    assert prod_account.retain_on_delete is True


def test_subscriptions_and_products_follow_the_switches() -> None:
    off = run_stack("dev", {"securityHub": {"manageAccount": True, "subscribeProducts": False}})
    assert off.of_type("aws:securityhub/productSubscription:ProductSubscription") == []

    audit_only = run_stack("prod", {"securityHub": {"products": ["audit"]}})
    subscription = audit_only.one("aws:securityhub/productSubscription:ProductSubscription")
    assert subscription.inputs["productArn"] == AUDIT_PRODUCT
    assert finding_pattern(audit_only)["detail"]["findings"]["ProductArn"] == [AUDIT_PRODUCT]


def test_finding_rule_selects_new_active_device_defender_findings_of_routed_severities(
    dev_stack: StackRun, prod_stack: StackRun
) -> None:
    expected_findings = {
        "ProductArn": [AUDIT_PRODUCT, DETECT_PRODUCT],
        "Workflow": {"Status": ["NEW"]},
        "RecordState": ["ACTIVE"],
    }
    for run, severities in ((dev_stack, ["CRITICAL", "HIGH", "MEDIUM"]), (prod_stack, ["CRITICAL", "HIGH"])):
        pattern = finding_pattern(run)
        assert pattern["source"] == ["aws.securityhub"]
        assert pattern["detail-type"] == ["Security Hub Findings - Imported"]
        assert pattern["detail"]["findings"] == {**expected_findings, "Severity": {"Label": severities}}


def test_finding_rule_matches_the_sample_findings_and_nothing_else(prod_stack: StackRun) -> None:
    pattern = finding_pattern(prod_stack)
    assert matches(pattern, DETECT_HIGH)
    assert matches(pattern, AUDIT_CRITICAL)
    assert not matches(pattern, DETECT_ARCHIVED), "a cleared Detect alarm is archived, not news"

    def altered(change: dict[str, Any], event: dict[str, Any] = DETECT_HIGH) -> dict[str, Any]:
        copied = copy.deepcopy(event)
        copied["detail"]["findings"][0].update(change)
        return copied

    assert not matches(pattern, altered({"Severity": {"Label": "MEDIUM"}}))
    assert not matches(pattern, altered({"Workflow": {"Status": "NOTIFIED"}}))
    assert not matches(pattern, altered({"ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}))
    assert not matches(pattern, {**DETECT_HIGH, "detail-type": "Security Hub Findings - Custom Action"})
    assert matches(finding_pattern(run_stack("dev")), altered({"Severity": {"Label": "MEDIUM"}}))


def test_findings_reach_the_responders_topic_as_a_readable_message(any_stack: StackRun) -> None:
    rule = any_stack.one("aws:cloudwatch/eventRule:EventRule")
    target = any_stack.one("aws:cloudwatch/eventTarget:EventTarget")
    policy = any_stack.one("aws:sns/topicPolicy:TopicPolicy")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.inputs["arn"] == any_stack.outputs[out.RESPONDERS_TOPIC_ARN]
    assert policy.urn in target.dependencies, "the target must not deliver before the topic admits it"
    transformer = target.inputs["inputTransformer"]
    assert transformer["inputPaths"] == FINDING_INPUT_PATHS
    assert transformer["inputTemplate"] == FINDING_MESSAGE_TEMPLATE

    assert render(DETECT_HIGH) == (
        "[HIGH] IoT Device Defender - Detect finding in account 123456789012 (us-east-1): pump-controller-0042 "
        "violated MessagesSent in security profile fleetguard-dev-rules. Resource: AwsIotRegisteredThing "
        "arn:aws:iot:us-east-1:123456789012:thing/pump-controller-0042. aws:num-messages-sent was 1874 over "
        "300 seconds; the behavior allows at most 500. Finding id: "
        "arn:aws:iot:us-east-1:123456789012:thing/pump-controller-0042/fleetguard-dev-rules/MessagesSent"
    )
    assert 'of "legacy-telemetry-policy" allows iot:*' in render(AUDIT_CRITICAL)
    assert any_stack.outputs[out.SECURITY_HUB_FINDING_RULE_ARN] == rule.outputs["arn"]


def test_responders_topic_admits_only_this_stacks_rule_and_alarms(any_stack: StackRun) -> None:
    policy = any_stack.one("aws:sns/topicPolicy:TopicPolicy")
    topic = any_stack.outputs[out.RESPONDERS_TOPIC_ARN]
    assert policy.inputs["arn"] == topic
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    incident_manager = any_stack.stack == "prod"  # prod engages Incident Manager, dev uses OpsCenter
    expected = {"StackAlarmsPublish", "FindingRulePublishes"}
    expected.add("IncidentManagerNotifies" if incident_manager else "OpsCenterNotifies")
    assert set(statements) == expected
    if incident_manager:
        assert statements["IncidentManagerNotifies"]["Principal"] == {"Service": "ssm-incidents.amazonaws.com"}
    else:
        assert statements["OpsCenterNotifies"]["Principal"] == {"Service": "ssm.amazonaws.com"}
    for entry in statements.values():
        assert entry["Action"] == ["sns:Publish"]
        assert entry["Resource"] == [topic]
        assert entry["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}

    events = statements["FindingRulePublishes"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"]["ArnEquals"] == {
        "aws:SourceArn": [any_stack.one("aws:cloudwatch/eventRule:EventRule").outputs["arn"]]
    }

    alarms = statements["StackAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    pattern = alarms["Condition"]["ArnLike"]["aws:SourceArn"]
    assert pattern == f"arn:aws:cloudwatch:us-east-1:{ACCOUNT_ID}:alarm:fleetguard-{any_stack.stack}-*"
    alarm_arns = [alarm.outputs["arn"] for alarm in any_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    assert alarm_arns, "the stack registers alarms that publish to the responders topic"
    assert all(fnmatch.fnmatchcase(arn, pattern) for arn in alarm_arns)
    assert not fnmatch.fnmatchcase(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT_ID}:alarm:someone-elses", pattern)


def test_alert_key_lets_eventbridge_and_cloudwatch_encrypt_for_the_topic(any_stack: StackRun) -> None:
    key_policy = json.loads(any_stack.one("aws:kms/key:Key").inputs["policy"])
    granted = {
        service
        for statement in key_policy["Statement"]
        if "Service" in statement["Principal"] and set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        for service in statement["Principal"]["Service"]
    }
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= granted


def test_routing_off_registers_no_rule_and_keeps_alarms_publishing() -> None:
    run = run_stack("prod", {
        "securityHub": {"routeFindings": False},
        "incidentResponse": {"incidentManager": {"enabled": False}},
    })
    assert run.of_type("aws:cloudwatch/eventRule:EventRule") == []
    assert run.of_type("aws:cloudwatch/eventTarget:EventTarget") == []
    assert out.SECURITY_HUB_FINDING_RULE_ARN not in run.outputs
    statements = json.loads(run.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])["Statement"]
    # Incident Manager off: OpsCenter (on by default then) notifies the responders; no finding rule does.
    assert [s["Sid"] for s in statements] == ["StackAlarmsPublish", "OpsCenterNotifies"]


def test_bad_security_hub_config_stops_the_program_before_any_resource() -> None:
    recorded: list[StackRun] = []
    with pytest.raises(ConfigError, match=r"fleetguard:securityHub\.severities\[1\]: expected one of"):
        recorded.append(run_stack("prod", {"securityHub": {"severities": ["HIGH", "SEVERE"]}}))
    assert recorded == []

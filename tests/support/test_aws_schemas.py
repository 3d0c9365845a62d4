"""tests.support.aws_schemas against inputs the pulumi-aws-native SDK really sends (see sample_native_program)."""

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.mockstack import RegisteredResource, run_stack
from tests.support.aws_schemas import (
    CFN_NAMESPACES,
    cfn_schema,
    cfn_type_name,
    to_cfn_properties,
    unwrap_secrets,
    validate_native_resource,
)

SAMPLE_PROGRAM = Path(__file__).with_name("sample_native_program.py")
SAMPLE_NAMES = (
    "rules",
    "ml",
    "audit",
    "weekly",
    "quarantine",
    "quarantine-logging",
    "oncall",
    "device-compromise",
    "hub",
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RegisteredResource]:
    project = tmp_path_factory.mktemp("native-sample")
    shutil.copy(SAMPLE_PROGRAM, project / "__main__.py")
    (project / "Pulumi.sample.yaml").write_text("config: {}\n")
    run = run_stack("sample", root=project)
    return {resource.name: resource for resource in run.resources}


def findings_for(resource: RegisteredResource, inputs: dict[str, Any], region: str = "us-east-1") -> list[str]:
    return validate_native_resource(resource.type, inputs, region)


def inputs_of(sample: dict[str, RegisteredResource], name: str) -> dict[str, Any]:
    """A plain, freely mutable copy of one sample resource's inputs."""
    plain: dict[str, Any] = unwrap_secrets(copy.deepcopy(sample[name].inputs))
    return plain


def only_finding(findings: list[str]) -> str:
    assert len(findings) == 1, findings
    return findings[0]


def test_the_sample_registers_every_resource_the_tests_use(sample: dict[str, RegisteredResource]) -> None:
    assert set(sample) == set(SAMPLE_NAMES)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_valid_sdk_inputs_pass(sample: dict[str, RegisteredResource], name: str) -> None:
    assert validate_native_resource(sample[name].type, sample[name].inputs) == []


def test_odd_aws_native_spelling_maps_to_the_cloudformation_property(
    sample: dict[str, RegisteredResource],
) -> None:
    audit = sample["audit"]
    assert "ioTPolicyPotentialMisConfigurationCheck" in audit.inputs["auditCheckConfigurations"]

    checks = to_cfn_properties(audit.type, audit.inputs)["AuditCheckConfigurations"]

    assert checks["IoTPolicyPotentialMisConfigurationCheck"] == {"Enabled": True}
    assert checks["DeviceCertificateExpiringCheck"] == {
        "Enabled": True,
        "Configuration": {"CertExpirationThresholdInDays": "30"},
    }


def test_map_keys_are_kept_and_tags_become_key_value(sample: dict[str, RegisteredResource]) -> None:
    rules = sample["rules"]

    properties = to_cfn_properties(rules.type, rules.inputs)

    assert set(properties["AlertTargets"]) == {"SNS"}
    assert set(properties["AlertTargets"]["SNS"]) == {"AlertTargetArn", "RoleArn"}
    # The tag value was a Pulumi secret; it reaches the schema as the plain string.
    assert properties["Tags"] == [{"Key": "owner", "Value": "security-team"}]
    hub = sample["hub"]
    assert to_cfn_properties(hub.type, hub.inputs)["Tags"] == {"team": "fleet-security"}


def test_unknown_property_is_reported_with_its_path(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "rules")
    inputs["behaviors"][0]["criteria"]["threshold"] = 3

    finding = only_finding(findings_for(sample["rules"], inputs))

    assert finding.startswith("aws-native:iot:SecurityProfile (AWS::IoT::SecurityProfile) ")
    assert "behaviors[0].criteria.threshold: unknown property" in finding
    assert "comparisonOperator" in finding  # names what the object does take


def test_unknown_top_level_property_is_reported(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "weekly")
    inputs["frequencies"] = ["DAILY"]

    assert "frequencies: unknown property" in only_finding(findings_for(sample["weekly"], inputs))


def test_wrong_case_is_reported_even_though_the_name_matches_case_insensitively(
    sample: dict[str, RegisteredResource],
) -> None:
    inputs = inputs_of(sample, "rules")
    inputs["SecurityProfileName"] = inputs.pop("securityProfileName")
    criteria = inputs["behaviors"][0]["criteria"]
    criteria["ComparisonOperator"] = criteria.pop("comparisonOperator")

    findings = findings_for(sample["rules"], inputs)

    assert len(findings) == 2, findings
    assert "SecurityProfileName: wrong case" in findings[0]
    assert "'securityProfileName'" in findings[0]
    assert "behaviors[0].criteria.ComparisonOperator: wrong case" in findings[1]


def test_iot_policy_check_spelled_the_plain_camel_case_way_is_wrong_case(
    sample: dict[str, RegisteredResource],
) -> None:
    inputs = inputs_of(sample, "audit")
    checks = inputs["auditCheckConfigurations"]
    checks["iotPolicyPotentialMisConfigurationCheck"] = checks.pop("ioTPolicyPotentialMisConfigurationCheck")

    finding = only_finding(findings_for(sample["audit"], inputs))

    assert "auditCheckConfigurations.iotPolicyPotentialMisConfigurationCheck: wrong case" in finding
    assert "'ioTPolicyPotentialMisConfigurationCheck'" in finding


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("weekly", ("frequency",), "HOURLY"),
        ("weekly", ("dayOfWeek",), "MONDAY"),
        ("rules", ("behaviors", 0, "criteria", "comparisonOperator"), "lt"),
        ("ml", ("behaviors", 0, "criteria", "mlDetectionConfig", "confidenceLevel"), "VERY_HIGH"),
        ("quarantine-logging", ("logLevel",), "VERBOSE"),
        ("oncall", ("type",), "TEAM"),
    ],
)
def test_bad_enum_value_is_reported_with_its_path(
    sample: dict[str, RegisteredResource], name: str, path: tuple[str | int, ...], value: str
) -> None:
    inputs = inputs_of(sample, name)
    parent: Any = inputs
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value

    finding = only_finding(findings_for(sample[name], inputs))

    dotted = ".".join(str(part) for part in path).replace(".0.", "[0].")
    assert f"{dotted}: {value!r} is not one of" in finding


def test_out_of_range_datapoints_are_reported(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "rules")
    inputs["behaviors"][0]["criteria"]["consecutiveDatapointsToAlarm"] = 11

    finding = only_finding(findings_for(sample["rules"], inputs))

    assert "behaviors[0].criteria.consecutiveDatapointsToAlarm: 11 is greater than the maximum of 10" in finding


def test_out_of_range_response_plan_impact_is_reported(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "device-compromise")
    inputs["incidentTemplate"]["impact"] = 6

    finding = only_finding(findings_for(sample["device-compromise"], inputs))

    assert "incidentTemplate.impact: 6 is greater than the maximum of 5" in finding


@pytest.mark.parametrize(
    ("name", "key"),
    [("rules", "securityProfileArn"), ("quarantine", "mitigationActionId"), ("weekly", "scheduledAuditArn")],
)
def test_read_only_property_is_reported(sample: dict[str, RegisteredResource], name: str, key: str) -> None:
    inputs = inputs_of(sample, name)
    inputs[key] = "arn:aws:iot:us-east-1:123456789012:set-by-aws"

    assert f"{key}: read-only property" in only_finding(findings_for(sample[name], inputs))


def test_missing_required_property_is_named_in_the_path(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "quarantine")
    del inputs["roleArn"]
    del inputs["actionParams"]["addThingsToThingGroupParams"]["thingGroupNames"]

    findings = findings_for(sample["quarantine"], inputs)

    assert findings == [
        "aws-native:iot:MitigationAction (AWS::IoT::MitigationAction) "
        "actionParams.addThingsToThingGroupParams.thingGroupNames: required property is missing",
        "aws-native:iot:MitigationAction (AWS::IoT::MitigationAction) roleArn: required property is missing",
    ]


def test_patterns_are_checked_including_unicode_classes(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "weekly")
    inputs["dayOfMonth"] = "32"
    # Tag keys use \p{L}-style classes, which Python's re module cannot compile.
    inputs["tags"] = [{"key": "équipe", "value": "sécurité"}, {"key": "bad!key", "value": "x"}]

    findings = findings_for(sample["weekly"], inputs)

    assert len(findings) == 2, findings
    assert "dayOfMonth: '32' does not match" in findings[0]
    assert "tags[1].key: 'bad!key' does not match" in findings[1]


def test_too_many_thing_groups_are_reported(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "quarantine")
    groups = [f"group-{index}" for index in range(11)]
    inputs["actionParams"]["addThingsToThingGroupParams"]["thingGroupNames"] = groups

    finding = only_finding(findings_for(sample["quarantine"], inputs))

    assert "actionParams.addThingsToThingGroupParams.thingGroupNames: " in finding
    assert "is too long" in finding


def test_a_type_missing_from_the_region_is_reported(sample: dict[str, RegisteredResource]) -> None:
    finding = only_finding(findings_for(sample["rules"], inputs_of(sample, "rules"), region="af-south-1"))

    assert "AWS::IoT::SecurityProfile" in finding
    assert "af-south-1" in finding


def test_to_cfn_properties_refuses_unknown_keys(sample: dict[str, RegisteredResource]) -> None:
    inputs = inputs_of(sample, "weekly")
    inputs["hourOfDay"] = 3

    with pytest.raises(ValueError, match="hourOfDay: unknown property"):
        to_cfn_properties(sample["weekly"].type, inputs)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("aws-native:iot:SecurityProfile", "AWS::IoT::SecurityProfile"),
        ("aws-native:ssmincidents:ResponsePlan", "AWS::SSMIncidents::ResponsePlan"),
        ("aws-native:ssmcontacts:ContactChannel", "AWS::SSMContacts::ContactChannel"),
        ("aws-native:securityhub:ProductSubscription", "AWS::SecurityHub::ProductSubscription"),
    ],
)
def test_type_tokens_map_to_cloudformation_types_that_exist(token: str, expected: str) -> None:
    assert cfn_type_name(token) == expected
    assert cfn_schema(expected)["typeName"] == expected


def test_every_mapped_module_is_covered_by_the_mapping_test() -> None:
    assert set(CFN_NAMESPACES) == {"iot", "ssmincidents", "ssmcontacts", "securityhub"}


def test_unmapped_module_fails_loudly() -> None:
    with pytest.raises(ValueError, match=r"module 'sqs' has no CloudFormation namespace"):
        validate_native_resource("aws-native:sqs:Queue", {})


@pytest.mark.parametrize("token", ["aws:iot/policy:Policy", "aws-native:iot", "aws-native::Thing"])
def test_malformed_token_fails_loudly(token: str) -> None:
    with pytest.raises(ValueError, match="is not an aws-native type token"):
        cfn_type_name(token)


def test_cfn_schema_gives_facts_and_a_private_copy() -> None:
    schema = cfn_schema("AWS::IoT::ScheduledAudit")
    assert schema["properties"]["Frequency"]["enum"] == ["DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY"]

    schema["properties"]["Frequency"]["enum"].append("HOURLY")

    assert "HOURLY" not in cfn_schema("AWS::IoT::ScheduledAudit")["properties"]["Frequency"]["enum"]


def test_cfn_schema_rejects_a_type_cloudformation_does_not_have() -> None:
    with pytest.raises(ValueError, match="no resource type AWS::IoT::Quarantine"):
        cfn_schema("AWS::IoT::Quarantine")

"""The fleet component as the dev and prod programs register it: fleet indexing, dynamic groups, KPI
fleet metrics with alarms into the responders topic, and the firmware recovery job template."""

from __future__ import annotations

import json

import pytest

import stack_outputs as out
from components.fleet import escape_query_term, kpi_query
from harness import mockstack
from harness.mockstack import ACCOUNT_ID, RegisteredResource, StackRun, run_stack
from settings import ConfigError
from settings.fleet import DEFAULT_INDEX_READY_TIMEOUT_SECONDS, FirmwareSettings, Kpi

INDEX_READY = "pulumi-python:dynamic/fleetguard:IndexReady"
TAGS_REQUIRED = {"Project": "fleetguard", "Environment": "prod", "Owner": "iot-security"}


def by_name(run: StackRun, type_token: str) -> dict[str, RegisteredResource]:
    return {resource.name: resource for resource in run.of_type(type_token)}


def native_tags(resource: RegisteredResource) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in resource.inputs["tags"]}


def fleet_component(run: StackRun) -> str:
    return run.one("fleetguard:fleet:Fleet").urn


def test_prod_indexes_every_source_the_kpis_need_and_keeps_indexing_on_destroy() -> None:
    run = run_stack("prod")
    indexing = run.one("aws:iot/indexingConfiguration:IndexingConfiguration")
    assert indexing.parent == fleet_component(run)
    assert indexing.inputs["thingIndexingConfiguration"] == {
        "thingIndexingMode": "REGISTRY_AND_SHADOW",
        "thingConnectivityIndexingMode": "STATUS",
        "deviceDefenderIndexingMode": "VIOLATIONS",
        "customFields": [{"name": "attributes.firmwareVersion", "type": "String"}],
    }
    assert indexing.retain_on_delete is True


def index_dependents(run: StackRun) -> list[RegisteredResource]:
    """The fleet component's dynamic groups and fleet metrics: everything that queries the thing index."""
    dependents = run.of_type("aws-native:iot:ThingGroup") + run.of_type("aws-native:iot:FleetMetric")
    return [resource for resource in dependents if resource.parent == fleet_component(run)]


def test_groups_and_metrics_are_created_once_the_index_they_query_is_active(any_stack: StackRun) -> None:
    indexing = any_stack.one("aws:iot/indexingConfiguration:IndexingConfiguration")
    index_ready = any_stack.one(INDEX_READY)
    assert index_ready.parent == fleet_component(any_stack)
    assert index_ready.dependencies == [indexing.urn], "the wait starts after the indexing change"
    fleet_dependents = index_dependents(any_stack)
    assert len(fleet_dependents) >= 4
    assert all(resource.dependencies == [index_ready.urn] for resource in fleet_dependents)


def test_the_index_wait_polls_the_thing_index_in_the_stack_region_for_the_configured_time(
    dev_stack: StackRun, prod_stack: StackRun
) -> None:
    for run, timeout in ((dev_stack, DEFAULT_INDEX_READY_TIMEOUT_SECONDS), (prod_stack, 3600)):
        inputs = run.one(INDEX_READY).inputs
        assert inputs["indexName"] == "AWS_Things"
        assert inputs["region"] == mockstack.REGION
        assert inputs["timeoutSeconds"] == timeout
        assert inputs["__provider"], "the provider travels in the state, serialised"


def test_an_indexing_change_changes_the_wait_input_so_the_update_waits_again() -> None:
    base = run_stack("dev").one(INDEX_READY).inputs["indexingFingerprint"]
    without_shadow = run_stack("dev", {"fleet": {"indexing": {"shadow": False}}})
    assert without_shadow.one(INDEX_READY).inputs["indexingFingerprint"] != base
    longer_wait = run_stack("dev", {"fleet": {"indexing": {"readyTimeoutSeconds": 7200}}})
    assert longer_wait.one(INDEX_READY).inputs["indexingFingerprint"] == base


def test_another_owner_of_indexing_still_means_waiting_for_its_index() -> None:
    run = run_stack("prod", {"fleet": {"indexing": {"manage": False}, "firmware": {"watchedVersion": "3.1.0"}}})
    assert run.of_type("aws:iot/indexingConfiguration:IndexingConfiguration") == []
    index_ready = run.one(INDEX_READY)
    assert index_ready.dependencies == []
    groups = [g for g in run.of_type("aws-native:iot:ThingGroup") if g.parent == fleet_component(run)]
    assert len(groups) == 3
    assert all(resource.dependencies == [index_ready.urn] for resource in index_dependents(run))


def test_no_group_or_metric_means_no_wait() -> None:
    run = run_stack("dev", {"fleet": {"dynamicGroups": [], "metrics": {
        "inViolation": {"enabled": False}, "disconnected": {"enabled": False},
    }}})
    assert index_dependents(run) == []
    assert run.of_type(INDEX_READY) == []


def test_dynamic_groups_answer_the_responders_questions(prod_stack: StackRun) -> None:
    groups = {
        name: group for name, group in by_name(prod_stack, "aws-native:iot:ThingGroup").items()
        if group.parent == fleet_component(prod_stack)
    }
    queries = {group.inputs["thingGroupName"]: group.inputs["queryString"] for group in groups.values()}
    assert queries == {
        "fleetguard-prod-fleet-in-violation": "deviceDefender.violationCount>0",
        "fleetguard-prod-fleet-disconnected": "connectivity.connected:false",
        "fleetguard-prod-fleet-firmware-3_1_0": "attributes.firmwareVersion:3.1.0",
    }
    for group in groups.values():
        assert group.inputs["thingGroupProperties"]["thingGroupDescription"]
        assert TAGS_REQUIRED.items() <= native_tags(group).items()
        assert "parentGroupName" not in group.inputs, "dynamic groups cannot sit in a hierarchy"
    assert prod_stack.outputs[out.FLEET_DYNAMIC_GROUP_NAMES] == {
        "inViolation": "fleetguard-prod-fleet-in-violation",
        "disconnected": "fleetguard-prod-fleet-disconnected",
        "watchedFirmware": "fleetguard-prod-fleet-firmware-3_1_0",
    }


def test_group_selection_follows_config() -> None:
    run = run_stack("dev", {"fleet": {"dynamicGroups": ["disconnected"]}})
    names = [g.inputs["thingGroupName"] for g in run.of_type("aws-native:iot:ThingGroup")
             if g.parent == fleet_component(run)]
    assert names == ["fleetguard-dev-fleet-disconnected"]
    assert run.outputs[out.FLEET_DYNAMIC_GROUP_NAMES] == {"disconnected": "fleetguard-dev-fleet-disconnected"}


def test_fleet_metrics_count_the_devices_behind_each_kpi(prod_stack: StackRun) -> None:
    metrics = {m.inputs["metricName"]: m for m in prod_stack.of_type("aws-native:iot:FleetMetric")}
    expected = {
        "fleetguard-prod-fleet-in-violation": ("deviceDefender.violationCount>0", "deviceDefender.violationCount", 300),
        "fleetguard-prod-fleet-disconnected": ("connectivity.connected:false", "connectivity.connected", 300),
        "fleetguard-prod-fleet-firmware-3_1_0": (
            "attributes.firmwareVersion:3.1.0", "attributes.firmwareVersion", 3600,
        ),
    }
    assert set(metrics) == set(expected)
    for name, (query, field, period) in expected.items():
        metric = metrics[name]
        assert metric.inputs["queryString"] == query
        assert metric.inputs["aggregationField"] == field
        assert metric.inputs["aggregationType"] == {"name": "Statistics", "values": ["count"]}
        assert metric.inputs["period"] == period
        assert metric.inputs["indexName"] == "AWS_Things"
        assert metric.inputs["queryVersion"] == "2017-09-30"
        assert metric.inputs["unit"] == "Count"
        assert TAGS_REQUIRED.items() <= native_tags(metric).items()
    assert prod_stack.outputs[out.FLEET_METRIC_NAMES] == {
        "inViolation": "fleetguard-prod-fleet-in-violation",
        "disconnected": "fleetguard-prod-fleet-disconnected",
        "watchedFirmware": "fleetguard-prod-fleet-firmware-3_1_0",
    }


def test_dev_does_not_measure_the_watched_firmware(dev_stack: StackRun) -> None:
    names = sorted(m.inputs["metricName"] for m in dev_stack.of_type("aws-native:iot:FleetMetric"))
    assert names == ["fleetguard-dev-fleet-disconnected", "fleetguard-dev-fleet-in-violation"]


def test_kpi_alarms_watch_the_fleet_metrics_and_notify_responders(any_stack: StackRun) -> None:
    metrics = {m.inputs["metricName"]: m for m in any_stack.of_type("aws-native:iot:FleetMetric")}
    alarms = {a.inputs["name"]: a for a in any_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.parent == fleet_component(any_stack)}
    assert set(alarms) == set(metrics), "one alarm per fleet metric, named after it"
    responders = any_stack.outputs[out.RESPONDERS_TOPIC_ARN]
    for name, alarm in alarms.items():
        metric = metrics[name]
        assert alarm.inputs["namespace"] == "IoTFleetMetrics"
        assert alarm.inputs["metricName"] == metric.inputs["metricName"]
        assert metric.urn in alarm.property_dependencies["metricName"]
        assert alarm.inputs["dimensions"] == {"AggregationType": "count"}
        assert alarm.inputs["statistic"] == "Maximum"
        assert alarm.inputs["period"] == metric.inputs["period"]
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["alarmActions"] == [responders]
        assert alarm.inputs["okActions"] == [responders]
        assert alarm.inputs["tags"]["Environment"] == any_stack.stack


def test_a_kpi_that_matches_no_device_reads_as_healthy_not_as_missing(any_stack: StackRun) -> None:
    # A count fleet metric publishes nothing while no thing matches: the alarm must hold OK, and nobody is
    # told about INSUFFICIENT_DATA.
    alarms = [a for a in any_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.parent == fleet_component(any_stack)]
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["threshold"] >= 0
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        assert "insufficientDataActions" not in alarm.inputs


def test_alarm_thresholds_come_from_the_environment(dev_stack: StackRun, prod_stack: StackRun) -> None:
    def thresholds(run: StackRun) -> dict[str, tuple[float, int, int]]:
        return {
            a.inputs["name"]: (a.inputs["threshold"], a.inputs["evaluationPeriods"], a.inputs["datapointsToAlarm"])
            for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.parent == fleet_component(run)
        }

    assert thresholds(dev_stack) == {
        "fleetguard-dev-fleet-in-violation": (5.0, 1, 1),
        "fleetguard-dev-fleet-disconnected": (10.0, 3, 3),
    }
    assert thresholds(prod_stack) == {
        "fleetguard-prod-fleet-in-violation": (20.0, 2, 2),
        "fleetguard-prod-fleet-disconnected": (250.0, 3, 3),
        "fleetguard-prod-fleet-firmware-3_1_0": (0.0, 1, 1),
    }


def test_recovery_template_rolls_out_known_good_firmware_in_stages(prod_stack: StackRun) -> None:
    template = prod_stack.one("aws-native:iot:JobTemplate")
    role = by_name(prod_stack, "aws:iam/role:Role")["fleetguard-prod-fleet-recovery-role"]
    assert template.parent == fleet_component(prod_stack)
    assert template.inputs["jobTemplateId"] == "fleetguard-prod-fleet-recovery-3_1_2"
    assert json.loads(template.inputs["document"]) == {
        "operation": "firmware-update",
        "firmwareVersion": "3.1.2",
        "firmwareUrl": "${aws:iot:s3-presigned-url:https://s3.us-east-1.amazonaws.com/fleetguard-prod-firmware/"
                       "releases/3.1.2/device-firmware.bin}",
        "reportVersionInAttribute": "firmwareVersion",
        "firmwareSha256": "9f2c1e7a4b6d8e0f1a3c5b7d9e1f2a4c6b8d0e2f4a6c8b0d2e4f6a8c0b2d4e6f",
    }
    assert "documentSource" not in template.inputs
    assert template.inputs["presignedUrlConfig"] == {"roleArn": role.outputs["arn"], "expiresInSec": 1800}
    assert template.inputs["jobExecutionsRolloutConfig"] == {
        "exponentialRolloutRate": {
            "baseRatePerMinute": 5, "incrementFactor": 1.5, "rateIncreaseCriteria": {"numberOfSucceededThings": 50},
        },
        "maximumPerMinute": 200,
    }
    assert template.inputs["abortConfig"] == {"criteriaList": [
        {"action": "CANCEL", "failureType": "FAILED", "minNumberOfExecutedThings": 50, "thresholdPercentage": 5},
        {"action": "CANCEL", "failureType": "REJECTED", "minNumberOfExecutedThings": 50, "thresholdPercentage": 5},
        {"action": "CANCEL", "failureType": "TIMED_OUT", "minNumberOfExecutedThings": 50, "thresholdPercentage": 10},
    ]}
    assert template.inputs["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert template.inputs["jobExecutionsRetryConfig"] == {
        "retryCriteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]
    }
    assert {tag["key"]: tag["value"] for tag in template.inputs["tags"]}["Environment"] == "prod"
    assert prod_stack.outputs[out.RECOVERY_JOB_TEMPLATE_ARN] == (
        f"arn:aws:iot:us-east-1:{ACCOUNT_ID}:jobtemplate/fleetguard-prod-fleet-recovery-3_1_2"
    )


def test_recovery_role_reads_only_the_release_object(any_stack: StackRun) -> None:
    env = any_stack.stack
    role = by_name(any_stack, "aws:iam/role:Role")[f"fleetguard-{env}-fleet-recovery-role"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{
        "Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    }]
    policy = by_name(any_stack, "aws:iam/rolePolicy:RolePolicy")[f"fleetguard-{env}-fleet-recovery-read-firmware"]
    assert policy.inputs["role"] == role.id
    version = "3.1.2" if env == "prod" else "2.4.0"
    assert json.loads(policy.inputs["policy"])["Statement"] == [{
        "Effect": "Allow", "Action": ["s3:GetObject"], "Sid": "ReadRecoveryFirmware",
        "Resource": [f"arn:aws:s3:::fleetguard-{env}-firmware/releases/{version}/device-firmware.bin"],
    }]
    template = any_stack.one("aws-native:iot:JobTemplate")
    assert policy.urn in template.dependencies


def test_dev_rollout_uses_its_own_rates_and_a_single_abort_rule(dev_stack: StackRun) -> None:
    template = dev_stack.one("aws-native:iot:JobTemplate")
    assert template.inputs["jobTemplateId"] == "fleetguard-dev-fleet-recovery-2_4_0"
    assert template.inputs["presignedUrlConfig"]["expiresInSec"] == 3600
    assert template.inputs["jobExecutionsRolloutConfig"]["exponentialRolloutRate"]["baseRatePerMinute"] == 10
    assert template.inputs["abortConfig"]["criteriaList"] == [
        {"action": "CANCEL", "failureType": "ALL", "minNumberOfExecutedThings": 5, "thresholdPercentage": 25},
    ]
    assert "firmwareSha256" not in json.loads(template.inputs["document"])


def test_recovery_switched_off_registers_no_template_role_or_output() -> None:
    run = run_stack("prod", {"fleet": {"recovery": {"enabled": False}}})
    assert run.of_type("aws-native:iot:JobTemplate") == []
    assert "fleetguard-prod-fleet-recovery-role" not in by_name(run, "aws:iam/role:Role")
    assert out.RECOVERY_JOB_TEMPLATE_ARN not in run.outputs


def test_firmware_versions_are_escaped_as_one_query_term() -> None:
    assert escape_query_term("2.4.0-rc1") == r"2.4.0\-rc1"
    assert escape_query_term("1.0") == "1.0"
    query = kpi_query(Kpi.WATCHED_FIRMWARE, FirmwareSettings("fw_version", "2.4.0-rc1"))
    assert query.query == r"attributes.fw_version:2.4.0\-rc1"
    assert query.aggregation_field == "attributes.fw_version"
    assert query.slug == "firmware-2_4_0-rc1"


def test_bad_fleet_config_stops_the_program_before_any_resource() -> None:
    recorded: list[StackRun] = []
    with pytest.raises(ConfigError, match=r"fleetguard:fleet\.recovery\.rollout\.incrementFactor"):
        recorded.append(run_stack("prod", {"fleet": {"recovery": {
            "firmwareVersion": "3.1.2", "firmwareBucket": "fleetguard-prod-firmware",
            "firmwareKey": "releases/3.1.2/device-firmware.bin", "rollout": {"incrementFactor": 9},
        }}}))
    assert recorded == []

"""Account-wide singletons: each can be left to its owner, and whatever a retained resource points at
keeps its physical name across a destroy and a new up."""

from __future__ import annotations

import json
from typing import Any

import pytest

import stack_outputs as out
from components.iam import ROLE_NAME_MAX_LENGTH, regional_role_name
from harness.mockstack import REGION, RegisteredResource, StackRun, load_stack_config, run_stack
from tests.support.nested_values import strings

NAME_PROPERTIES = {
    "aws:iam/role:Role": "name",
    "aws:sns/topic:Topic": "name",
    "aws:iot/thingGroup:ThingGroup": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
}
"""The input that carries each referenced type's physical name (absent: the provider invents one)."""


def dev_with(section: str, changes: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Dev's ``section`` with ``changes`` merged in (dotted keys reach nested objects) and ``drop`` removed,
    so a test changes one switch and nothing else."""
    value = json.loads(load_stack_config("dev")[f"fleetguard:{section}"])
    for dotted, setting in changes.items():
        *parents, leaf = dotted.split(".")
        target = value
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = setting
    for key in drop:
        value.pop(key, None)
    return {section: value}


def names(run: StackRun) -> set[str]:
    return {resource.name for resource in run.resources}


# --- each switch leaves exactly its singleton (and what only it needs) alone -------------------------

SWITCHES = {
    "audit configuration": (
        dev_with("audit", {"manageAccountConfiguration": False}),
        {"fleetguard-dev-audit-configuration", "fleetguard-dev-audit-role", "fleetguard-dev-audit-role-read-config"},
    ),
    "account v2 logging": (
        dev_with("quarantine", {"manageAccountLogging": False}),
        {"fleetguard-dev-quarantine-account-logging", "fleetguard-dev-quarantine-iot-logs"},
    ),
    "quarantine group logging": (
        dev_with("quarantine", {"manageGroupLogging": False}, drop=("groupLogLevel",)),
        {"fleetguard-dev-quarantine-group-logging"},
    ),
    "fleet indexing": (
        dev_with("fleet", {"indexing.manage": False}),
        {"fleetguard-dev-fleet-indexing"},
    ),
    "security hub": (
        dev_with("securityHub", {"manageAccount": False}, drop=("enableDefaultStandards", "retainAccountOnDelete")),
        {"fleetguard-dev-security-hub-account"},
    ),
}


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_removes_only_its_singleton(switch: str, dev_stack: StackRun) -> None:
    overrides, left_alone = SWITCHES[switch]
    assert left_alone <= names(dev_stack)
    assert names(dev_stack) - names(run_stack("dev", overrides)) == left_alone


def test_schedules_run_without_a_configuration_of_their_own() -> None:
    run = run_stack("dev", dev_with("audit", {"manageAccountConfiguration": False}))
    assert run.of_type("aws-native:iot:AccountAuditConfiguration") == []
    (schedule,) = run.of_type("aws-native:iot:ScheduledAudit")
    assert schedule.inputs["scheduledAuditName"] == "dev-weekly-critical"
    assert schedule.dependencies == []
    assert out.AUDIT_ROLE_ARN not in run.outputs
    assert run.outputs[out.AUDIT_SCHEDULE_NAMES] == ["dev-weekly-critical"]


def test_without_group_logging_the_logging_role_still_serves_the_mitigation_action() -> None:
    run = run_stack("dev", dev_with("quarantine", {"manageGroupLogging": False}, drop=("groupLogLevel",)))
    assert run.of_type("aws-native:iot:ResourceSpecificLogging") == []
    assert run.of_type("aws:iot/loggingOptions:LoggingOptions")
    role = run.by_name("fleetguard-dev-quarantine-iot-logging-role")
    action = run.by_name("fleetguard-dev-quarantine-enable-logging")
    assert action.inputs["actionParams"]["enableIoTLoggingParams"]["roleArnForLogging"] == role.outputs["arn"]


def test_subscriptions_do_not_wait_for_a_hub_this_stack_does_not_own() -> None:
    run = run_stack("dev", dev_with("securityHub", {"manageAccount": False},
                                    drop=("enableDefaultStandards", "retainAccountOnDelete")))
    subscriptions = run.of_type("aws:securityhub/productSubscription:ProductSubscription")
    assert len(subscriptions) == 2
    assert all(subscription.dependencies == [] for subscription in subscriptions)


def test_without_the_index_dynamic_groups_and_metrics_remain() -> None:
    run = run_stack("dev", dev_with("fleet", {"indexing.manage": False}))
    assert run.of_type("aws:iot/indexingConfiguration:IndexingConfiguration") == []
    assert run.of_type("aws-native:iot:FleetMetric")


# --- stable names for what retained resources point at ----------------------------------------------

def retained(run: StackRun) -> list[RegisteredResource]:
    return [resource for resource in run.resources if resource.retain_on_delete]


def referenced(run: StackRun, resource: RegisteredResource) -> list[RegisteredResource]:
    """Resources this one's inputs point at: through property dependencies, or by holding their ARN."""
    urns = {urn for dependencies in resource.property_dependencies.values() for urn in dependencies}
    arns = {text for text in strings(resource.inputs) if text.startswith("arn:")}
    urns |= {other.urn for other in run.resources if other.outputs.get("arn") in arns}
    return [run.by_urn(urn) for urn in sorted(urns) if urn != resource.urn]


def has_stable_name(resource: RegisteredResource) -> bool:
    return bool(resource.inputs.get(NAME_PROPERTIES.get(resource.type, "name")))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_whatever_a_retained_resource_points_at_keeps_its_name(stack: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(f"{stack}_stack")
    kept = retained(run)
    assert {"aws-native:iot:AccountAuditConfiguration", "aws:iot/loggingOptions:LoggingOptions",
            "aws:iot/indexingConfiguration:IndexingConfiguration"} <= {resource.type for resource in kept}
    checked = 0
    for resource in kept:
        for target in referenced(run, resource):
            checked += 1
            assert target.retain_on_delete or has_stable_name(target), (
                f"{resource.name} is retained on delete but points at {target.name}, which has no stable "
                f"physical name: a destroy and up would leave it pointing at a deleted {target.type}"
            )
    # The audit role, the alert topic and its publish role, and the v2 logging role.
    assert checked >= 4


def test_retained_configurations_point_at_the_stable_role_names(any_stack: StackRun) -> None:
    env = any_stack.stack
    configuration = any_stack.one("aws-native:iot:AccountAuditConfiguration")
    account_logging = any_stack.one("aws:iot/loggingOptions:LoggingOptions")
    iam = "arn:aws:iam::123456789012:role"
    assert configuration.inputs["roleArn"] == f"{iam}/fleetguard-{env}-audit-{REGION}"
    sns = configuration.inputs["auditNotificationTargetConfigurations"]["sns"]
    assert sns["roleArn"] == f"{iam}/fleetguard-{env}-alerts-publish-{REGION}"
    assert account_logging.inputs["roleArn"] == f"{iam}/fleetguard-{env}-quarantine-logging-{REGION}"


def test_the_longest_environment_in_the_longest_region_fits_iam() -> None:
    longest = "fleetguard-" + "e" * 16 + "-quarantine-logging"
    assert len(regional_role_name(longest, "us-isof-south-1")) <= ROLE_NAME_MAX_LENGTH


@pytest.mark.parametrize(("name", "region"), [("x" * 60, "us-east-1"), ("fleetguard dev", "us-east-1")])
def test_a_role_name_iam_would_reject_fails_with_the_rule(name: str, region: str) -> None:
    with pytest.raises(ValueError, match=r"IAM role name .* must match .* at most 64 characters"):
        regional_role_name(name, region)

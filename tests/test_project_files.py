"""Pulumi.yaml and the stack files as the Pulumi CLI reads them.

The CLI treats a project-namespace key declared without ``default`` or ``value`` as required ("Stack 'x' is
missing configuration value"), and fills declared defaults into the stack's config before the program
runs. These tests apply the same rules, so a new stack that sets only the required keys is known to work.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from harness.analyzer import POLICY_CONFIG_DIR
from harness.mockstack import REPO_ROOT, load_stack_config, run_stack
from settings import TOP_LEVEL_KEYS, ConfigError, load_settings, read_stack_config
from settings.facts import CRITICAL_AUDIT_CHECKS

REQUIRED_KEYS = {"environment", "owner"}


def project_config() -> dict[str, Any]:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    config: dict[str, Any] = document["config"]
    return config


def test_every_top_level_key_is_declared_with_a_description() -> None:
    declared = {key: entry for key, entry in project_config().items() if ":" not in key}
    assert set(declared) == set(TOP_LEVEL_KEYS)
    for key, entry in declared.items():
        assert entry.get("description"), key


def test_only_environment_and_owner_are_required_by_the_cli() -> None:
    required = {key for key, entry in project_config().items()
                if ":" not in key and "default" not in entry and "value" not in entry}
    assert required == REQUIRED_KEYS


def test_a_stack_with_only_the_required_keys_runs_on_the_declared_defaults() -> None:
    # As the CLI would: every other top-level key absent from the stack, filled from the project defaults.
    overrides: dict[str, Any] = dict.fromkeys(TOP_LEVEL_KEYS)
    overrides.update({key: entry["default"] for key, entry in project_config().items() if "default" in entry})
    overrides.update(environment="qa", owner="iot-qa")
    run = run_stack("dev", overrides)
    assert run.of_type("aws-native:iot:AccountAuditConfiguration")
    assert run.of_type("aws:iot/thingGroup:ThingGroup")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_providers_deploy_to_one_region(stack: str) -> None:
    config = load_stack_config(stack)
    assert config["aws:region"] == config["aws-native:region"]


def test_a_native_region_that_differs_fails_before_any_resource() -> None:
    with pytest.raises(ConfigError, match=r"aws-native:region: expected the same region as aws:region"):
        run_stack("dev", {"aws-native:region": "eu-west-1"})


def test_a_missing_native_region_fails() -> None:
    with pytest.raises(ConfigError, match=r"aws-native:region.*got None"):
        run_stack("dev", {"aws-native:region": None})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_policy_config_exempts_exactly_the_critical_checks_the_stack_disables(stack: str) -> None:
    settings = load_settings(read_stack_config(load_stack_config(stack)))
    disabled = {check.name: check.exemption_reason for check in settings.audit.checks
                if check.name in CRITICAL_AUDIT_CHECKS and not check.enabled}
    policy_config = json.loads((POLICY_CONFIG_DIR / f"{stack}.json").read_text())

    assert policy_config["audit-critical-checks-enabled"]["exemptions"] == disabled


def test_incident_manager_must_replicate_to_the_stack_region() -> None:
    incident_response = json.loads(load_stack_config("prod")["fleetguard:incidentResponse"])
    incident_response["incidentManager"]["replicationSet"]["regions"] = ["us-west-2", "eu-west-1"]
    with pytest.raises(ConfigError, match=r"replicationSet\.regions: expected to include the stack's region "
                                          r"us-east-1 \(aws:region\)"):
        run_stack("prod", {"incidentResponse": incident_response})

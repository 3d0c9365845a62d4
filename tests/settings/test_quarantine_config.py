"""``fleetguard:quarantine`` validation: defaults, the shipped stacks, and one named error per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import ConfigError, load_settings, read_stack_config
from settings.facts import QUARANTINE_ROLE, ROLE_TAG_KEY
from settings.quarantine import (
    DEFAULT_FORENSIC_TOPIC_PREFIX,
    DEFAULT_GROUP_NAME,
    POWERTOOLS_LAYER_VERSION,
    QuarantineSettings,
)
from tests.settings.config_support import BASE, only_config_problem


def quarantine(section: Any) -> QuarantineSettings:
    return load_settings({**BASE, "quarantine": section}).quarantine


def only_problem(section: Any) -> str:
    return only_config_problem({"quarantine": section})


def shipped(stack: str) -> QuarantineSettings:
    return load_settings(read_stack_config(load_stack_config(stack))).quarantine


def test_defaults_when_the_section_is_absent() -> None:
    settings = load_settings(BASE).quarantine
    assert settings == QuarantineSettings(
        group_name=DEFAULT_GROUP_NAME,
        forensic_topic_prefix=DEFAULT_FORENSIC_TOPIC_PREFIX,
        group_log_level="DEBUG",
        manage_group_logging=True,
        manage_account_logging=True,
        account_log_level="ERROR",
        iot_log_retention_days=90,
        mitigation_log_level="ERROR",
        function_log_level="INFO",
        function_log_retention_days=90,
        function_timeout_seconds=60,
        function_memory_mb=256,
        powertools_layer_version=POWERTOOLS_LAYER_VERSION,
    )
    assert settings.group_name == "QUARANTINED"


def test_every_key_is_read() -> None:
    settings = quarantine({
        "groupName": "Isolated_Devices", "forensicTopicPrefix": "ops/evidence", "groupLogLevel": "INFO",
        "manageGroupLogging": True, "manageAccountLogging": False, "accountLogLevel": "WARN", "iotLogRetentionDays": 30,
        "mitigationLogLevel": "DEBUG", "functionLogLevel": "WARNING", "functionLogRetentionDays": 180,
        "functionTimeoutSeconds": 300, "functionMemoryMb": 1024, "powertoolsLayerVersion": 40,
    })
    assert settings == QuarantineSettings(
        "Isolated_Devices", "ops/evidence", "INFO", True, False, "WARN", 30, "DEBUG", "WARNING", 180, 300, 1024, 40,
    )


def test_shipped_stacks_differ_where_environments_should() -> None:
    dev, prod = shipped("dev"), shipped("prod")
    assert dev.group_name == prod.group_name == "QUARANTINED"
    assert dev.group_log_level == prod.group_log_level == "DEBUG"
    assert prod.iot_log_retention_days > dev.iot_log_retention_days
    assert prod.function_log_retention_days > dev.function_log_retention_days
    assert (dev.function_log_level, prod.function_log_level) == ("DEBUG", "INFO")
    assert (dev.account_log_level, prod.account_log_level) == ("WARN", "ERROR")


@pytest.mark.parametrize(("section", "key", "expected"), [
    ({"groupName": "QUARANTINED DEVICES"}, "groupName", "expected a string matching"),
    ({"groupName": "x" * 129}, "groupName", "expected a string matching"),
    ({"forensicTopicPrefix": "forensics/#"}, "forensicTopicPrefix", "expected a string matching"),
    ({"forensicTopicPrefix": "$aws/things"}, "forensicTopicPrefix", "expected a string matching"),
    ({"forensicTopicPrefix": "/forensics"}, "forensicTopicPrefix", "expected a string matching"),
    ({"forensicTopicPrefix": "a/b/c/d/e"}, "forensicTopicPrefix", "expected a string matching"),
    ({"forensicTopicPrefix": "x" * 65}, "forensicTopicPrefix", "expected at most 64 characters"),
    ({"groupLogLevel": "DISABLED"}, "groupLogLevel", "expected one of DEBUG, INFO, WARN, ERROR"),
    ({"manageGroupLogging": "no"}, "manageGroupLogging", "expected true or false"),
    ({"manageGroupLogging": False, "groupLogLevel": "INFO"}, "groupLogLevel",
     "only applies when manageGroupLogging is true"),
    ({"manageAccountLogging": "yes"}, "manageAccountLogging", "expected true or false"),
    ({"accountLogLevel": "VERBOSE"}, "accountLogLevel", "expected one of DEBUG, INFO, WARN, ERROR"),
    ({"iotLogRetentionDays": 10}, "iotLogRetentionDays", "expected one of 1, 3, 5, 7, 14"),
    ({"mitigationLogLevel": "DISABLED"}, "mitigationLogLevel", "expected one of DEBUG, INFO, WARN, ERROR"),
    ({"functionLogLevel": "WARN"}, "functionLogLevel",
     "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ({"functionLogRetentionDays": 0}, "functionLogRetentionDays", "expected one of 1, 3, 5, 7, 14"),
    ({"functionTimeoutSeconds": 301}, "functionTimeoutSeconds", "expected a whole number in 3..300"),
    ({"functionTimeoutSeconds": 1.5}, "functionTimeoutSeconds", "expected a whole number"),
    ({"functionMemoryMb": 64}, "functionMemoryMb", "expected a whole number in 128..10240"),
    ({"powertoolsLayerVersion": 0}, "powertoolsLayerVersion", "expected a whole number in 1..1000"),
    ({"powertoolsLayerVersion": "36"}, "powertoolsLayerVersion", "expected a whole number"),
])
def test_each_mistake_names_its_key_and_what_is_allowed(
    section: dict[str, Any], key: str, expected: str
) -> None:
    problem = only_problem(section)
    assert problem.startswith(f"fleetguard:quarantine.{key}: ")
    assert expected in problem


def test_the_group_log_level_can_be_left_to_another_owner() -> None:
    settings = quarantine({"manageGroupLogging": False})
    assert settings.manage_group_logging is False
    assert settings.manage_account_logging is True


def test_unknown_key_is_named_with_the_allowed_keys() -> None:
    problem = only_problem({"groupname": "QUARANTINED"})
    assert problem.startswith("fleetguard:quarantine.groupname: unknown key; expected one of ")
    assert "groupName" in problem


def test_section_must_be_an_object() -> None:
    assert only_problem("QUARANTINED").startswith("fleetguard:quarantine: expected an object")


def test_stack_tags_may_not_set_the_role_tag_that_declares_the_quarantine_group() -> None:
    # Stack tags go on every taggable resource: every thing group would claim the quarantine role.
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "tags": {ROLE_TAG_KEY: QUARANTINE_ROLE, "CostCenter": "iot"}})

    assert caught.value.problems == [
        f"fleetguard:tags.{ROLE_TAG_KEY}: reserved: fleetguard sets this tag itself, on the resources the policy "
        "pack recognises by it"]

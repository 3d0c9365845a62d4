"""Policy config as the engine reconciles it (defaults from the schema, then ``all``, then per policy),
validated like the engine does, and the shipped per-environment files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    EnforcementLevel,
    PolicyConfigError,
    PolicyPackProcess,
    reconcile_policy_config,
)
from tests.policies.stack_builders import changed, kms_key, topic, violations

DEV = POLICY_CONFIG_DIR / "dev.json"
PROD = POLICY_CONFIG_DIR / "prod.json"


def test_without_config_every_policy_is_mandatory_with_schema_defaults(pack_process: PolicyPackProcess) -> None:
    config = reconcile_policy_config(pack_process.info(), None)

    assert {item.enforcement_level for item in config.values()} == {EnforcementLevel.MANDATORY}
    assert config["required-tags"].properties["requiredTags"] == ["Project", "Environment", "Owner"]
    assert config["iam-no-wildcard-actions"].properties == {}


def test_all_sets_every_level_and_a_policy_entry_overrides_it(pack_process: PolicyPackProcess) -> None:
    config = reconcile_policy_config(pack_process.info(), {
        "all": "advisory",
        "kms-key-rotation": "remediate",
        "log-group-retention": {"enforcementLevel": "disabled", "minimumRetentionDays": 30},
        "required-tags": {"defaultTags": {"Owner": "team"}},
    })

    assert config["iam-no-wildcard-actions"].enforcement_level is EnforcementLevel.ADVISORY
    assert config["kms-key-rotation"].enforcement_level is EnforcementLevel.REMEDIATE
    assert config["log-group-retention"].enforcement_level is EnforcementLevel.DISABLED
    assert config["log-group-retention"].properties == {"minimumRetentionDays": 30}
    # A partial entry keeps the other defaults and the level "all" set.
    assert config["required-tags"].enforcement_level is EnforcementLevel.ADVISORY
    assert config["required-tags"].properties == {"requiredTags": ["Project", "Environment", "Owner"],
                                                  "defaultTags": {"Owner": "team"}}


def test_all_as_an_object_sets_levels_too(pack_process: PolicyPackProcess) -> None:
    config = reconcile_policy_config(pack_process.info(), {"all": {"enforcementLevel": "advisory"}})

    assert {item.enforcement_level for item in config.values()} == {EnforcementLevel.ADVISORY}


@pytest.mark.parametrize(("given", "reported"), [
    ({"all": "strict"}, "'strict' is not an enforcement level"),
    ({"kms-key-rotation": {"enforcementLevel": "block"}}, "kms-key-rotation'.enforcementLevel"),
    ({"kms-key-roation": "mandatory"}, "'kms-key-roation' names no policy"),
    ({"kms-key-rotation": 3}, "expected an enforcement level or an object"),
    ({"log-group-retention": {"minimumRetentionDays": 0}}, "log-group-retention: minimumRetentionDays"),
    ({"log-group-retention": {"minimumRetentionDays": "a year"}}, "is not of type 'integer'"),
    ({"audit-scheduled-critical-checks": {"minimumFrequency": "HOURLY"}}, "minimumFrequency: 'HOURLY' is not one of"),
    ({"required-tags": {"requiredTags": ["Owner", "Owner"]}}, "required-tags: requiredTags"),
    ({"detect-ml-profile-present": {"required": "yes"}}, "required: 'yes' is not of type 'boolean'"),
])
def test_bad_config_is_rejected_naming_the_field(pack_process: PolicyPackProcess, given: dict[str, object],
                                                 reported: str) -> None:
    with pytest.raises(PolicyConfigError) as raised:
        reconcile_policy_config(pack_process.info(), given)

    assert reported in str(raised.value)


def test_a_config_file_that_is_not_json_is_rejected(pack: PolicyPackProcess, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{all: advisory}")

    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        pack.configure(broken)


@pytest.mark.parametrize("path", [DEV, PROD], ids=["dev", "prod"])
def test_the_shipped_config_files_are_valid(pack: PolicyPackProcess, path: Path) -> None:
    config = pack.configure(path)

    assert set(config) == {policy.name for policy in pack.info().policies}


def test_dev_is_advisory_and_prod_is_mandatory_or_remediating(pack: PolicyPackProcess) -> None:
    dev = pack.configure(DEV)
    prod = pack.configure(PROD)

    assert {item.enforcement_level for item in dev.values()} == {EnforcementLevel.ADVISORY}
    assert {name for name, item in prod.items() if item.enforcement_level is EnforcementLevel.REMEDIATE} == {
        "kms-key-rotation", "required-tags"}
    assert {item.enforcement_level for item in prod.values()} == {EnforcementLevel.MANDATORY,
                                                                 EnforcementLevel.REMEDIATE}
    assert json.loads(PROD.read_text())["required-tags"]["defaultTags"]["Environment"] == "prod"


def test_the_same_violation_warns_in_dev_and_blocks_in_prod(pack: PolicyPackProcess) -> None:
    unencrypted = changed(topic(), kmsMasterKeyId=None)

    pack.configure(DEV)
    [dev_diagnostic] = pack.analyze(unencrypted).diagnostics
    pack.configure(PROD)
    [prod_diagnostic] = pack.analyze(unencrypted).diagnostics

    assert dev_diagnostic.enforcement_level is EnforcementLevel.ADVISORY
    assert prod_diagnostic.enforcement_level is EnforcementLevel.MANDATORY
    assert dev_diagnostic.policy_name == prod_diagnostic.policy_name == "messaging-customer-managed-kms"


def test_a_disabled_policy_does_not_run(pack: PolicyPackProcess) -> None:
    pack.configure({"kms-key-rotation": "disabled"})

    assert not violations(pack.analyze(changed(kms_key(), enableKeyRotation=False)), "kms-key-rotation")

"""The policy configs for other teams' IoT stacks: valid for the pack, every rule that checks fleetguard's own
posture off, every other rule on (advisory in dev, mandatory in prod)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analyzer import POLICY_CONFIG_DIR, AnalyzerResource, EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import (
    acm_certificate,
    authorizer,
    ca_certificate,
    changed,
    device_fleet_resources,
    domain_configuration,
    job_template,
    logging_options,
    provisioning_template,
)

FLEET_DEV = POLICY_CONFIG_DIR / "fleet-dev.json"
FLEET_PROD = POLICY_CONFIG_DIR / "fleet-prod.json"
PROD = POLICY_CONFIG_DIR / "prod.json"

POSTURE_PREFIXES = ("containment-", "audit-", "detect-", "response-", "incident-response-", "securityhub-",
                    "opscenter-")
"""Rules that check fleetguard's own stack (its quarantine group, audits, Detect profiles, incident response,
Security Hub): a device team's stack has none of that, so the fleet configs turn them off."""
TAGS_RULE = "required-tags"
"""Tag keys are the organisation's own: the fleet configs report missing tags without blocking or adding
fleetguard's defaults."""


def is_posture(name: str) -> bool:
    return name.startswith(POSTURE_PREFIXES)


def device_team_stack() -> list[AnalyzerResource]:
    """A device team's stack: device policies, a topic rule, a signed authorizer and a role alias, an endpoint
    using the authorizer, fleet provisioning, a firmware job template, a CA that registers nothing by itself,
    and account logging."""
    return [*device_fleet_resources(), domain_configuration(authorizer_resource=authorizer()), acm_certificate(),
            provisioning_template(), job_template(), ca_certificate(), logging_options()]


@pytest.mark.parametrize("path", [FLEET_DEV, FLEET_PROD], ids=["fleet-dev", "fleet-prod"])
def test_the_fleet_configs_are_valid_and_leave_no_posture_rule_on(pack: PolicyPackProcess, path: Path) -> None:
    config = pack.configure(path)

    assert set(config) == {policy.name for policy in pack.info().policies}
    disabled = {name for name, item in config.items() if item.enforcement_level is EnforcementLevel.DISABLED}
    assert disabled == {name for name in config if is_posture(name)}
    assert disabled, "the pack lost its posture rules, or the prefixes no longer name them"
    assert config[TAGS_RULE].properties["defaultTags"] == {}


def test_fleet_dev_warns_on_every_other_rule(pack: PolicyPackProcess) -> None:
    config = pack.configure(FLEET_DEV)

    assert {item.enforcement_level for name, item in config.items() if not is_posture(name)} == {
        EnforcementLevel.ADVISORY}
    assert config["provisioning-template-pre-provisioning-hook"].properties == {"requirePreProvisioningHook": False}


def test_fleet_prod_blocks_on_every_other_rule_but_tags(pack: PolicyPackProcess) -> None:
    config = pack.configure(FLEET_PROD)

    levels = {name: item.enforcement_level for name, item in config.items() if not is_posture(name)}
    assert levels.pop(TAGS_RULE) is EnforcementLevel.ADVISORY
    assert set(levels.values()) == {EnforcementLevel.MANDATORY}


def test_a_device_team_stack_fails_fleetguard_config_but_passes_fleet_prod(pack: PolicyPackProcess) -> None:
    stack = device_team_stack()

    pack.configure(PROD)
    as_fleetguard = pack.preview(stack)
    pack.configure(FLEET_PROD)
    as_fleet = pack.preview(stack)

    assert {name for name in as_fleetguard.policy_names(mandatory_only=True) if is_posture(name)}
    assert not {name for name in as_fleet.policy_names() if is_posture(name)}
    assert not as_fleet.mandatory


def test_a_broken_endpoint_blocks_in_fleet_prod_and_warns_in_fleet_dev(pack: PolicyPackProcess) -> None:
    stack = device_team_stack()
    weak = [changed(item, tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS12_1_0_2015_01"})
            if item.type == "aws:iot/domainConfiguration:DomainConfiguration" else item for item in stack]

    pack.configure(FLEET_PROD)
    [blocked] = pack.preview(weak).mandatory
    pack.configure(FLEET_DEV)
    warned = pack.preview(weak).diagnostics

    assert blocked.policy_name == "domain-configuration-tls12"
    assert [(item.policy_name, item.enforcement_level) for item in warned if item.policy_name != TAGS_RULE] == [
        ("domain-configuration-tls12", EnforcementLevel.ADVISORY)]

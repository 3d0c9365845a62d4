"""The pack's inventory as the engine reads it with GetAnalyzerInfo: every policy, its severity, kind and
control mapping. Adding, renaming or re-rating a policy is a visible change here."""

from __future__ import annotations

import re

import pytest

from harness.analyzer import EnforcementLevel, PolicyInfo, PolicyPackProcess
from harness.mockstack import REPO_ROOT
from settings.facts import CRITICAL_AUDIT_CHECKS, QUARANTINE_ROLE, ROLE_TAG_KEY

INVENTORY = {
    # name: (severity, policy type)
    "iot-policy-no-wildcard-actions": ("critical", "resource"),
    "iot-policy-no-wildcard-resources": ("critical", "resource"),
    "iot-policy-client-id-bound-to-thing": ("high", "resource"),
    "audit-critical-checks-enabled": ("critical", "resource"),
    "audit-notifications-enabled": ("high", "resource"),
    "audit-scheduled-critical-checks": ("high", "stack"),
    "detect-profile-alert-target": ("high", "resource"),
    "detect-profile-has-targets": ("high", "resource"),
    "detect-ml-profile-present": ("medium", "stack"),
    "detect-engine-stream-customer-key": ("high", "resource"),
    "detect-engine-table-customer-key": ("high", "resource"),
    "detect-engine-stream-consumer-on-failure": ("medium", "resource"),
    "containment-quarantine-group": ("critical", "stack"),
    "iot-logging-enabled": ("high", "resource"),
    "log-group-retention": ("medium", "resource"),
    "messaging-customer-managed-kms": ("high", "resource"),
    "kms-key-rotation": ("medium", "resource"),
    "sqs-dead-letter-queue": ("medium", "stack"),
    "iam-no-wildcard-actions": ("high", "resource"),
    "incident-response-ready": ("high", "stack"),
    "opscenter-incidents-ready": ("high", "stack"),
    "securityhub-device-defender-integrations": ("medium", "stack"),
    "required-tags": ("low", "resource"),
    # device fleet: device policies, topic rules, custom authorizers, role aliases
    "iot-policy-topic-scope": ("high", "resource"),
    "iot-policy-own-thing-only": ("high", "resource"),
    "iot-policy-no-allow-not-action": ("high", "resource"),
    "topic-rule-error-action": ("medium", "resource"),
    "topic-rule-sql-version-pinned": ("low", "resource"),
    "topic-rule-no-reserved-republish": ("high", "resource"),
    "topic-rule-enabled-explicit": ("low", "resource"),
    "topic-rule-role-scoped": ("high", "stack"),
    "authorizer-signing-enabled": ("high", "resource"),
    "authorizer-function-permission-scoped": ("high", "stack"),
    "role-alias-credential-duration": ("medium", "resource"),
    "role-alias-role-no-wildcards": ("critical", "stack"),
    # IoT resources other teams' stacks create: endpoints, provisioning, jobs, CAs
    "domain-configuration-tls12": ("high", "resource"),
    "domain-configuration-authorizer-signing": ("high", "stack"),
    "domain-configuration-server-certificates": ("medium", "stack"),
    "provisioning-template-pre-provisioning-hook": ("high", "resource"),
    "provisioning-template-policy": ("critical", "resource"),
    "job-abort-config": ("medium", "resource"),
    "job-timeout-config": ("medium", "resource"),
    "ota-update-signed-code": ("high", "resource"),
    "ca-certificate-registration-restricted": ("high", "resource"),
    "audit-suppression-justified": ("high", "resource"),
}
CONFIG_DEFAULTS = {
    "audit-critical-checks-enabled": {"exemptions": {}},
    "audit-scheduled-critical-checks": {"minimumFrequency": "WEEKLY", "auditConfigurationOwnedElsewhere": False},
    "detect-ml-profile-present": {"required": False},
    "containment-quarantine-group": {
        "quarantineGroupNameContains": "quarantine", "accountLoggingOwnedElsewhere": False,
        "groupLoggingOwnedElsewhere": False,
    },
    "log-group-retention": {"minimumRetentionDays": 365},
    "opscenter-incidents-ready": {"minimumEscalationStages": 2},
    "required-tags": {"requiredTags": ["Project", "Environment", "Owner"], "defaultTags": {"Project": "fleetguard"}},
    # device fleet: device policies, topic rules, custom authorizers, role aliases
    "iot-policy-client-id-bound-to-thing": {"allowedClientIds": ["${iot:Connection.Thing.ThingName}"]},
    "iot-policy-topic-scope": {"allowedTopicPrefixes": []},
    "topic-rule-sql-version-pinned": {"allowedSqlVersions": ["2016-03-23"]},
    "topic-rule-no-reserved-republish": {"allowedReservedTopicPrefixes": []},
    "role-alias-credential-duration": {"maximumCredentialDurationSeconds": 3600},
    "domain-configuration-tls12": {"allowedSecurityPolicies": [
        "IoTSecurityPolicy_TLS13_1_3_2022_10", "IoTSecurityPolicy_TLS13_1_2_2022_10",
        "IoTSecurityPolicy_TLS12_1_2_2022_10"]},
    "domain-configuration-authorizer-signing": {"authorizersOwnedElsewhere": []},
    "domain-configuration-server-certificates": {"requireOcspCheck": False},
    "provisioning-template-pre-provisioning-hook": {"requirePreProvisioningHook": True},
    "provisioning-template-policy": {"allowedClientIds": ["${iot:Connection.Thing.ThingName}"],
                                     "allowedTopicPrefixes": []},
    "job-timeout-config": {"maximumInProgressTimeoutMinutes": 1440},
    "ca-certificate-registration-restricted": {"allowAutoRegistration": False},
    "audit-suppression-justified": {"maxDays": 90},
}
CONTROL_TAG = re.compile(
    r"^(pci-dss-v4\.0:\d+(\.\d+)+"  # requirement numbers, e.g. 10.4.1.1
    r"|hipaa:164\.\d+\([a-z]\)[()0-9a-zA-Z]*"  # 45 CFR sections, e.g. 164.308(a)(1)(ii)(D)
    r"|nist-800-53-r5:[A-Z]{2}-\d+(\(\d+\))?)$"  # controls and enhancements, e.g. SI-4(5)
)


def test_the_inventory_lists_every_policy_with_its_severity_and_kind(pack: PolicyPackProcess) -> None:
    info = pack.info()

    assert info.name == "fleetguard"
    assert {policy.name: (policy.severity, policy.policy_type) for policy in info.policies} == INVENTORY
    for policy in info.policies:
        print(f"{policy.name:45} {policy.severity:9} {policy.policy_type:9} {policy.framework.reference}")


@pytest.fixture(scope="module")
def policies(pack_process: PolicyPackProcess) -> tuple[PolicyInfo, ...]:
    return pack_process.info().policies


def test_every_policy_maps_to_all_three_frameworks(policies: tuple[PolicyInfo, ...]) -> None:
    for policy in policies:
        assert policy.framework.name == "PCI DSS v4.0 / HIPAA Security Rule / NIST SP 800-53 rev 5"
        reference = policy.framework.reference
        assert re.search(r"PCI DSS v4\.0 \d+\.\d+", reference), policy.name
        assert re.search(r"HIPAA 45 CFR 164\.\d+", reference), policy.name
        assert re.search(r"NIST SP 800-53r5 [A-Z]{2}-\d+", reference), policy.name
        prefixes = {tag.split(":")[0] for tag in policy.tags}
        assert prefixes == {"pci-dss-v4.0", "hipaa", "nist-800-53-r5"}, policy.name
        assert all(CONTROL_TAG.match(tag) for tag in policy.tags), policy.tags


def test_every_policy_explains_itself(policies: tuple[PolicyInfo, ...]) -> None:
    for policy in policies:
        assert policy.description.endswith("."), policy.name
        assert len(policy.remediation_steps) > 40, policy.name


def test_the_pack_defaults_to_mandatory(policies: tuple[PolicyInfo, ...]) -> None:
    assert {policy.enforcement_level for policy in policies} == {EnforcementLevel.MANDATORY}


def test_config_schemas_declare_their_defaults(policies: tuple[PolicyInfo, ...]) -> None:
    declared = {
        policy.name: {key: schema["default"] for key, schema in policy.config_properties.items()}
        for policy in policies if policy.config_properties
    }

    assert declared == CONFIG_DEFAULTS
    for policy in policies:
        for key, schema in policy.config_properties.items():
            assert schema.get("description"), f"{policy.name}.{key} has no description"


def test_the_exemption_schema_lists_exactly_the_critical_audit_checks(policies: tuple[PolicyInfo, ...]) -> None:
    (critical,) = [policy for policy in policies if policy.name == "audit-critical-checks-enabled"]
    exemptions = critical.config_properties["exemptions"]
    assert exemptions["propertyNames"]["enum"] == sorted(CRITICAL_AUDIT_CHECKS)


def test_the_containment_rule_tells_operators_the_role_tag(policies: tuple[PolicyInfo, ...]) -> None:
    # What it tells operators to tag must be what the program tags (the containment and stack tests check
    # that the pack recognises that tag).
    (containment,) = [policy for policy in policies if policy.name == "containment-quarantine-group"]
    mark = f"tagged {ROLE_TAG_KEY}={QUARANTINE_ROLE}"
    assert mark in containment.description
    assert mark in containment.remediation_steps
    assert mark in containment.config_properties["quarantineGroupNameContains"]["description"]


def test_the_readmes_count_and_list_every_policy() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"`policies/` holds {len(INVENTORY)} CrossGuard rules" in readme
    pack_readme = (REPO_ROOT / "policies" / "README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \| (?:resource|stack) \|", pack_readme, re.MULTILINE))
    assert listed == set(INVENTORY)

"""The audit mitigation contract: the intake's AUDIT_MITIGATIONS and AUDIT_MITIGATION_DOCUMENT read back
what the stack renders, malformed values are refused naming the variable, and a mitigation task's id is
one per audit task and check within the API's pattern."""

from __future__ import annotations

import pytest

from functions.contract import EnvVar
from functions.contract_mitigation import (
    MITIGATION_TASK_ID_PATTERN,
    AuditMitigationConfig,
    AuditMitigationEnvironment,
    CheckActions,
    mitigation_task_id,
    render_mitigations,
)
from settings.facts import AUDIT_CHECKS

CHECKS = {
    "LOGGING_DISABLED_CHECK": CheckActions(("fleetguard-dev-quarantine-enable-logging",), approval_required=False),
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK": CheckActions(
        ("fleetguard-dev-audit-mitigation-deactivate-ca-cert",), approval_required=True,
    ),
}
DOCUMENT = "fleetguard-dev-audit-mitigation"


def mitigation_environment() -> AuditMitigationEnvironment[str]:
    return AuditMitigationEnvironment(render_mitigations(CHECKS), DOCUMENT)


def test_the_environment_reads_back_what_it_renders() -> None:
    rendered = mitigation_environment().to_environment()
    assert set(rendered) == {EnvVar.AUDIT_MITIGATIONS.value, EnvVar.AUDIT_MITIGATION_DOCUMENT.value}
    assert AuditMitigationEnvironment.from_environment(rendered) == AuditMitigationConfig(CHECKS, DOCUMENT)


def test_no_mapping_means_no_mitigation() -> None:
    assert AuditMitigationEnvironment.from_environment({}) is None


def test_an_approval_needs_the_document() -> None:
    rendered = AuditMitigationEnvironment(render_mitigations(CHECKS)).to_environment()
    with pytest.raises(ValueError, match=f"^{EnvVar.AUDIT_MITIGATION_DOCUMENT}: environment variable is not set"):
        AuditMitigationEnvironment.from_environment(rendered)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "AUDIT_MITIGATIONS: not valid JSON"),
        ("[]", "AUDIT_MITIGATIONS: expected a JSON object"),
        ('{"logging": {"actions": ["a"], "approvalRequired": false}}', "AUDIT_MITIGATIONS.logging: expected an audit"),
        ('{"LOGGING_DISABLED_CHECK": {"actions": ["a"]}}',
         "AUDIT_MITIGATIONS.LOGGING_DISABLED_CHECK: expected an object"),
        ('{"LOGGING_DISABLED_CHECK": {"actions": [], "approvalRequired": false}}',
         "AUDIT_MITIGATIONS.LOGGING_DISABLED_CHECK.actions: expected 1-5"),
        ('{"LOGGING_DISABLED_CHECK": {"actions": ["a b"], "approvalRequired": false}}',
         "AUDIT_MITIGATIONS.LOGGING_DISABLED_CHECK.actions: expected 1-5"),
        ('{"LOGGING_DISABLED_CHECK": {"actions": ["a"], "approvalRequired": "no"}}',
         "AUDIT_MITIGATIONS.LOGGING_DISABLED_CHECK.approvalRequired: expected true or false"),
    ],
)
def test_malformed_mappings_name_the_variable(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        AuditMitigationEnvironment.from_environment({EnvVar.AUDIT_MITIGATIONS: text})


def test_task_ids_fit_the_api_for_every_check_and_the_longest_audit_task_id() -> None:
    longest_audit_task_id = "a" * 40  # botocore's AuditTaskId: [a-zA-Z0-9-]{1,40}
    ids = {mitigation_task_id(longest_audit_task_id, check.name) for check in AUDIT_CHECKS}
    assert len(ids) == len(AUDIT_CHECKS)
    assert all(MITIGATION_TASK_ID_PATTERN.fullmatch(task_id) for task_id in ids)

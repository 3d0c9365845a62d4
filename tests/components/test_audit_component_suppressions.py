"""Audit finding suppressions as the audit component registers them from the stack config."""

from __future__ import annotations

from typing import Any

from harness.mockstack import Phase, StackRun, load_stack_config, run_stack
from settings import read_stack_config

SUPPRESSION = "pulumi-python:dynamic/fleetguard:AuditSuppression"


def with_suppressions(*suppressions: dict[str, Any]) -> StackRun:
    audit = read_stack_config(load_stack_config("dev"))["audit"]
    return run_stack("dev", {"audit": {**audit, "suppressions": [*audit["suppressions"], *suppressions]}},
                     phase=Phase.PREVIEW)


def test_dev_suppresses_its_soak_rigs_client_id_indefinitely_under_the_audit_component() -> None:
    stack = run_stack("dev")
    suppression = stack.one(SUPPRESSION)
    component = stack.one("fleetguard:audit:Audit")
    assert suppression.parent == component.urn
    assert suppression.inputs["checkName"] == "CONFLICTING_CLIENT_IDS_CHECK"
    assert suppression.inputs["resourceIdentifier"] == {"clientId": "lab-bench-soak-rig"}
    assert suppression.inputs["suppressIndefinitely"] is True
    assert suppression.inputs.get("expirationDate") is None
    assert suppression.inputs["region"] == "us-east-1"
    # AWS suppresses findings of enabled checks only: the configuration that enables them comes first.
    assert stack.one("aws-native:iot:AccountAuditConfiguration").urn in suppression.dependencies


def test_a_dated_suppression_is_declared_as_its_day_and_named_by_what_it_suppresses() -> None:
    dated = {"check": "LOGGING_DISABLED_CHECK", "resource": {"account": "123456789012"},
             "expires": "2999-01-01", "reason": "Logging moves to the new account"}
    stack = with_suppressions(dated)
    suppressions = {r.inputs["checkName"]: r for r in stack.of_type(SUPPRESSION)}
    logging = suppressions["LOGGING_DISABLED_CHECK"]
    assert logging.inputs["expirationDate"] == "2999-01-01"
    assert logging.inputs["suppressIndefinitely"] is False
    assert logging.inputs["description"] == "Logging moves to the new account"
    names = {r.name for r in stack.of_type(SUPPRESSION)}
    assert len(names) == 2
    assert all(name.startswith("fleetguard-dev-audit-suppression-") for name in names)
    # Changing only the terms keeps the name, so it is an update, not a new suppression.
    renewed = with_suppressions({**dated, "expires": "2999-06-01", "reason": "Logging moves next summer"})
    assert {r.name for r in renewed.of_type(SUPPRESSION)} == names

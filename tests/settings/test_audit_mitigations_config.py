"""``fleetguard:audit.mitigations``: each check's mitigation actions and who starts them, validated
against the checks the stack enables and the action types Device Defender applies to each check."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.loaders import Loader  # type: ignore[import-untyped]

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from settings.audit_mitigations import ACTION_TYPES, Approval, CheckMitigation, MitigationActionKey
from settings.facts import AUDIT_CHECK_MITIGATION_TYPES, AUDIT_CHECKS_BY_NAME
from tests.settings.config_support import BASE, config_problems, only_config_problem

LOGGING = "LOGGING_DISABLED_CHECK"
REVOKED_CA = "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"


def mitigations(section: Any, **audit: Any) -> tuple[CheckMitigation, ...]:
    return load_settings({**BASE, "audit": {**audit, "mitigations": section}}).audit.mitigations


def only_problem(section: Any, **audit: Any) -> str:
    return only_config_problem({"audit": {**audit, "mitigations": section}})


def test_a_mapped_check_keeps_its_actions_in_order_and_its_approval() -> None:
    assert mitigations({
        LOGGING: {"actions": ["enableLogging", "publishFinding"], "approval": "automatic"},
        REVOKED_CA: {"actions": ["deactivateCaCertificate"], "approval": "required"},
    }) == (
        CheckMitigation(LOGGING, (MitigationActionKey.ENABLE_LOGGING, MitigationActionKey.PUBLISH_FINDING),
                        Approval.AUTOMATIC),
        CheckMitigation(REVOKED_CA, (MitigationActionKey.DEACTIVATE_CA_CERTIFICATE,), Approval.REQUIRED),
    )


def test_no_mitigations_unless_configured() -> None:
    assert mitigations(None) == ()


def test_an_action_whose_type_does_not_apply_to_the_check_is_named() -> None:
    problem = only_problem({LOGGING: {"actions": ["deactivateCaCertificate"], "approval": "automatic"}})
    assert problem == (
        f"fleetguard:audit.mitigations.{LOGGING}.actions: deactivateCaCertificate is a UPDATE_CA_CERTIFICATE "
        f"action; Device Defender applies only PUBLISH_FINDING_TO_SNS, ENABLE_IOT_LOGGING to {LOGGING} "
        '(got ["deactivateCaCertificate"])'
    )


def test_a_disabled_check_cannot_be_mitigated() -> None:
    problem = only_problem({LOGGING: {"actions": ["enableLogging"], "approval": "automatic"}},
                           checks={LOGGING: False})
    assert problem.startswith(f"fleetguard:audit.mitigations.{LOGGING}: the check is disabled")


def test_an_unknown_check_is_reported() -> None:
    problem = only_problem({"NO_SUCH_CHECK": {"actions": ["publishFinding"], "approval": "automatic"}})
    assert problem.startswith("fleetguard:audit.mitigations.NO_SUCH_CHECK: unknown audit check")


@pytest.mark.parametrize(
    ("entry", "where", "expected"),
    [
        ({"actions": [], "approval": "automatic"}, "actions", "expected 1-5 different mitigation actions"),
        ({"actions": ["enableLogging", "enableLogging"], "approval": "automatic"}, "actions",
         "expected 1-5 different mitigation actions"),
        ({"actions": ["turnItOff"], "approval": "automatic"}, "actions[0]", "expected one of addToQuarantine"),
        ({"actions": ["enableLogging"], "approval": "later"}, "approval", "expected one of automatic, required"),
        ({"actions": ["enableLogging"]}, "approval", "required"),
        ({"actions": ["enableLogging"], "approval": "automatic", "when": "now"}, "when", "unknown key"),
    ],
)
def test_malformed_entries_name_the_key(entry: dict[str, Any], where: str, expected: str) -> None:
    problems = config_problems({"audit": {"mitigations": {LOGGING: entry}}})
    assert any(problem.startswith(f"fleetguard:audit.mitigations.{LOGGING}.{where}: {expected}")
               for problem in problems), problems


def test_the_shipped_stacks_map_the_documented_checks() -> None:
    prod = load_settings(read_stack_config(load_stack_config("prod"))).audit.mitigations
    by_check = {mitigation.check_name: mitigation for mitigation in prod}
    assert by_check[REVOKED_CA].approval is Approval.REQUIRED
    assert by_check[LOGGING].approval is Approval.AUTOMATIC
    dev = load_settings(read_stack_config(load_stack_config("dev"))).audit.mitigations
    assert {mitigation.check_name for mitigation in dev} >= {LOGGING}


def test_the_action_types_and_checks_are_the_api_s_own() -> None:
    model = Loader().load_service_model("iot", "service-2")["shapes"]
    action_types = set(model["MitigationActionType"]["enum"])
    assert set(ACTION_TYPES.values()) == action_types
    assert set(AUDIT_CHECK_MITIGATION_TYPES) == set(AUDIT_CHECKS_BY_NAME)
    for applicable in AUDIT_CHECK_MITIGATION_TYPES.values():
        assert "PUBLISH_FINDING_TO_SNS" in applicable
        assert set(applicable) <= action_types

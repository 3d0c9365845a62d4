"""``fleetguard:securityHub`` validation: defaults, and every mistake named with its key."""

from __future__ import annotations

from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from settings.security_hub import SecurityHubSettings
from tests.settings.config_support import BASE, only_config_problem


def security_hub(section: Any) -> SecurityHubSettings:
    return load_settings({**BASE, "securityHub": section}).security_hub


def only_problem(section: Any) -> str:
    return only_config_problem({"securityHub": section})


def test_defaults_assume_central_security_hub_and_route_critical_and_high() -> None:
    assert security_hub({}) == SecurityHubSettings(
        manage_account=False,
        enable_default_standards=False,
        retain_account_on_delete=True,
        subscribe_products=True,
        products=("audit", "detect"),
        route_findings=True,
        severities=("CRITICAL", "HIGH"),
    )


def test_shipped_stacks_differ_in_ownership_and_routed_severities() -> None:
    dev = load_settings(read_stack_config(load_stack_config("dev"))).security_hub
    prod = load_settings(read_stack_config(load_stack_config("prod"))).security_hub
    assert (dev.manage_account, dev.retain_account_on_delete) == (True, False)
    assert dev.severities == ("CRITICAL", "HIGH", "MEDIUM")
    assert (prod.manage_account, prod.severities) == (False, ("CRITICAL", "HIGH"))


def test_owner_switches_are_accepted_when_the_stack_owns_security_hub() -> None:
    owned = security_hub({"manageAccount": True, "enableDefaultStandards": True, "retainAccountOnDelete": False})
    assert (owned.enable_default_standards, owned.retain_account_on_delete) == (True, False)


@pytest.mark.parametrize("key", ["enableDefaultStandards", "retainAccountOnDelete"])
def test_owner_switches_without_ownership_are_reported(key: str) -> None:
    problem = only_problem({key: True})
    assert problem.startswith(f"fleetguard:securityHub.{key}: only applies when manageAccount is true")


@pytest.mark.parametrize(("section", "path", "message"), [
    ({"products": ["audit", "defend"]}, "products[1]", "expected one of audit, detect (got 'defend')"),
    ({"products": []}, "products", "expected at least one of audit, detect"),
    ({"products": ["audit", "audit"]}, "products", "'audit' is listed more than once"),
    ({"severities": ["HIGH", "high"]}, "severities[1]", "expected one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL"),
    ({"severities": []}, "severities", "expected at least one of INFORMATIONAL"),
    ({"severities": "HIGH"}, "severities", "expected a list"),
    ({"manageAccount": "yes"}, "manageAccount", "expected true or false"),
    ({"routeFinding": True}, "routeFinding", "unknown key; expected one of"),
])
def test_mistakes_name_the_key_and_what_is_allowed(section: dict[str, Any], path: str, message: str) -> None:
    problem = only_problem(section)
    assert problem.startswith(f"fleetguard:securityHub.{path}: ")
    assert message in problem


def test_a_non_object_section_is_reported() -> None:
    assert only_problem(["audit"]).startswith("fleetguard:securityHub: expected an object")

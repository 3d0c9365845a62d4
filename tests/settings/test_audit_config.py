"""``fleetguard:audit`` ownership: the account audit configuration can be left to its owner."""

from __future__ import annotations

from typing import Any

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from tests.settings.config_support import BASE, only_config_problem

DAILY_LOGGING_AUDIT = {"name": "daily-logging", "frequency": "DAILY", "checks": ["LOGGING_DISABLED_CHECK"]}


def only_problem(section: Any) -> str:
    return only_config_problem({"audit": section})


def test_the_stack_owns_the_configuration_unless_told_otherwise() -> None:
    assert load_settings(BASE).audit.manage_account_configuration is True
    for stack in ("dev", "prod"):
        assert load_settings(read_stack_config(load_stack_config(stack))).audit.manage_account_configuration


def test_left_to_its_owner_the_schedules_are_still_read() -> None:
    audit = load_settings({**BASE, "audit": {
        "manageAccountConfiguration": False, "schedules": [DAILY_LOGGING_AUDIT],
    }}).audit
    assert audit.manage_account_configuration is False
    assert [schedule.checks for schedule in audit.schedules] == [("LOGGING_DISABLED_CHECK",)]


def test_left_to_its_owner_checks_still_state_what_a_schedule_may_name() -> None:
    # AWS rejects a schedule naming a check the account configuration disables, whoever owns it.
    problem = only_problem({
        "manageAccountConfiguration": False,
        "checks": {"LOGGING_DISABLED_CHECK": False},
        "schedules": [DAILY_LOGGING_AUDIT],
    })
    assert problem.startswith("fleetguard:audit.schedules[0].checks: LOGGING_DISABLED_CHECK is scheduled but disabled")


def test_notifications_need_the_configuration_they_are_part_of() -> None:
    problem = only_problem({"manageAccountConfiguration": False, "notifications": True})
    assert problem == ("fleetguard:audit.notifications: only applies when manageAccountConfiguration is true; "
                       "remove it or set manageAccountConfiguration: true (got true)")


def test_the_switch_is_a_boolean() -> None:
    problem = only_problem({"manageAccountConfiguration": "no"})
    assert problem.startswith("fleetguard:audit.manageAccountConfiguration: expected true or false")

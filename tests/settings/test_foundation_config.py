"""Config validation: every mistake is reported with its key, the bad value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import ConfigError, load_settings, read_stack_config
from settings.facts import AUDIT_CHECKS, CRITICAL_AUDIT_CHECKS
from tests.settings.config_support import BASE, config_problems, only_config_problem


def problems_for(**overrides: Any) -> list[str]:
    return config_problems(overrides)


def only_problem(**overrides: Any) -> str:
    return only_config_problem(overrides)


def rule(**fields: Any) -> dict[str, Any]:
    behavior: dict[str, Any] = {"name": "B", "metric": "aws:num-messages-sent", "operator": "less-than",
                                "value": 10, "durationSeconds": 300}
    behavior.update(fields)
    return behavior


def test_shipped_stacks_are_valid() -> None:
    for stack in ("dev", "prod"):
        settings = load_settings(read_stack_config(load_stack_config(stack)))
        assert settings.environment == stack


def test_prod_enables_every_check_and_audits_critical_checks_daily() -> None:
    prod = load_settings(read_stack_config(load_stack_config("prod")))
    assert set(prod.audit.enabled_checks) == {check.name for check in AUDIT_CHECKS}
    daily = [schedule for schedule in prod.audit.schedules if schedule.frequency == "DAILY"]
    assert daily
    assert set(CRITICAL_AUDIT_CHECKS) <= set(daily[0].checks)


def test_prod_thresholds_are_tighter_than_dev() -> None:
    dev = load_settings(read_stack_config(load_stack_config("dev")))
    prod = load_settings(read_stack_config(load_stack_config("prod")))
    dev_counts = {b.name: b.count for b in dev.detect.rule_behaviors if b.count is not None}
    prod_counts = {b.name: b.count for b in prod.detect.rule_behaviors if b.count is not None}
    shared = dev_counts.keys() & prod_counts.keys()
    assert shared
    assert all(prod_counts[name] < dev_counts[name] for name in shared)


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    text = str(caught.value)
    assert "fleetguard:environment: required" in text
    assert "fleetguard:owner: required" in text


def test_unknown_top_level_key_is_a_mistake() -> None:
    assert only_problem(detcet={}).startswith("fleetguard:detcet: unknown key")


def test_unknown_audit_check_name() -> None:
    problem = only_problem(audit={"checks": {"IOT_POLICY_TOO_OPEN_CHECK": True}})
    assert problem.startswith("fleetguard:audit.checks.IOT_POLICY_TOO_OPEN_CHECK: unknown audit check")
    assert "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in problem


@pytest.mark.parametrize(("check", "option", "value"), [
    ("DEVICE_CERTIFICATE_EXPIRING_CHECK", "certExpirationThresholdInDays", 29),
    ("DEVICE_CERTIFICATE_EXPIRING_CHECK", "certExpirationThresholdInDays", 3653),
    ("DEVICE_CERTIFICATE_AGE_CHECK", "certAgeThresholdInDays", 5),
])
def test_check_option_out_of_range(check: str, option: str, value: int) -> None:
    problem = only_problem(audit={"checks": {check: {"enabled": True, option: value}}})
    assert problem == f"fleetguard:audit.checks.{check}.{option}: expected a whole number in 30..3652 (got {value})"


def test_option_on_a_check_that_takes_none() -> None:
    problem = only_problem(
        audit={"checks": {"LOGGING_DISABLED_CHECK": {"enabled": True, "certAgeThresholdInDays": 60}}}
    )
    assert problem.startswith("fleetguard:audit.checks.LOGGING_DISABLED_CHECK.certAgeThresholdInDays: unknown key")


def test_weekly_audit_without_day() -> None:
    problem = only_problem(audit={"schedules": [{"name": "w", "frequency": "WEEKLY", "checks": "critical"}]})
    assert problem.startswith("fleetguard:audit.schedules[0].dayOfWeek: required when frequency is WEEKLY")


def test_monthly_audit_needs_day_of_month_and_rejects_day_of_week() -> None:
    problems = problems_for(audit={"schedules": [
        {"name": "m", "frequency": "MONTHLY", "dayOfWeek": "MON", "checks": "critical"},
    ]})
    assert any(p.startswith("fleetguard:audit.schedules[0].dayOfMonth: required when frequency is MONTHLY")
               for p in problems)
    assert any(p.startswith("fleetguard:audit.schedules[0].dayOfWeek: only allowed when") for p in problems)


def test_bad_frequency_lists_allowed_values() -> None:
    problem = only_problem(audit={"schedules": [{"name": "h", "frequency": "HOURLY", "checks": "critical"}]})
    assert problem == ("fleetguard:audit.schedules[0].frequency: expected one of DAILY, WEEKLY, BIWEEKLY, "
                       "MONTHLY (got 'HOURLY')")


def test_schedule_of_a_disabled_check_is_rejected() -> None:
    problem = only_problem(audit={
        "checks": {"LOGGING_DISABLED_CHECK": False},
        "schedules": [{"name": "d", "frequency": "DAILY", "checks": ["LOGGING_DISABLED_CHECK"]}],
    })
    assert problem.startswith("fleetguard:audit.schedules[0].checks: LOGGING_DISABLED_CHECK is scheduled but disabled")


@pytest.mark.parametrize("setting", [
    False,
    {"enabled": False},
    {"enabled": False, "exemptionReason": "lab only"},
    {"enabled": False, "exemptionReason": "          x"},
])
def test_a_critical_check_is_disabled_only_with_a_written_reason(setting: Any) -> None:
    problem = only_problem(audit={"checks": {"IOT_POLICY_OVERLY_PERMISSIVE_CHECK": setting}})
    assert problem.startswith("fleetguard:audit.checks.IOT_POLICY_OVERLY_PERMISSIVE_CHECK: a critical check can be "
                              "disabled only with an exemptionReason of at least 10 characters")


def test_a_disabled_critical_check_with_a_reason_is_accepted() -> None:
    settings = load_settings({**BASE, "audit": {"checks": {"IOT_POLICY_OVERLY_PERMISSIVE_CHECK": {
        "enabled": False, "exemptionReason": "Replaced by the organisation-wide scan"}}}})
    (check,) = [c for c in settings.audit.checks if c.name == "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]
    assert check.enabled is False
    assert check.exemption_reason == "Replaced by the organisation-wide scan"


def test_disabling_all_checks_names_every_critical_check_without_a_reason() -> None:
    problems = problems_for(audit={"enableAllChecks": False})
    assert sorted(problem.split(":", 2)[1].removeprefix("audit.checks.") for problem in problems) == sorted(
        f"{name}" for name in CRITICAL_AUDIT_CHECKS)


def test_ports_compared_with_less_than() -> None:
    problem = only_problem(detect={"ruleBehaviors": [
        rule(metric="aws:listening-tcp-ports", operator="less-than", value=3, durationSeconds=None),
    ]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors[0].operator: aws:listening-tcp-ports is compared "
                              "with ports; expected one of in-port-set, not-in-port-set")


def test_count_compared_with_in_port_set() -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(operator="in-port-set", value=[443])]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors[0].operator: aws:num-messages-sent is compared with "
                              "count")


@pytest.mark.parametrize("duration", [0, 120, 301, 7200])
def test_duration_outside_allowed_set(duration: int) -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(durationSeconds=duration)]})
    assert problem == (f"fleetguard:detect.ruleBehaviors[0].durationSeconds: expected one of 300, 600, 900, 1800, "
                       f"3600 (got {duration})")


def test_windowed_metric_needs_duration() -> None:
    problem = only_problem(detect={"ruleBehaviors": [{k: v for k, v in rule().items() if k != "durationSeconds"}]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors[0].durationSeconds: required for aws:num-messages-sent")


@pytest.mark.parametrize(("field", "value"), [("datapointsToAlarm", 0), ("datapointsToAlarm", 11),
                                              ("datapointsToClear", 0), ("datapointsToClear", 11)])
def test_datapoints_outside_1_to_10(field: str, value: int) -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(**{field: value})]})
    assert problem == f"fleetguard:detect.ruleBehaviors[0].{field}: expected a whole number in 1..10 (got {value})"


def test_ml_on_a_rules_only_metric() -> None:
    problem = only_problem(detect={"ml": {"behaviors": [
        {"name": "M", "metric": "aws:listening-tcp-ports", "confidence": "HIGH"},
    ]}})
    assert problem.startswith("fleetguard:detect.ml.behaviors[0].metric: ML Detect does not support this metric")


def test_bad_confidence_level() -> None:
    problem = only_problem(detect={"ml": {"behaviors": [
        {"name": "M", "metric": "aws:num-messages-sent", "confidence": "VERY_HIGH"},
    ]}})
    assert problem == (
        "fleetguard:detect.ml.behaviors[0].confidence: expected one of LOW, MEDIUM, HIGH (got 'VERY_HIGH')"
    )


def test_value_and_statistic_are_exclusive() -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(statistic="p90")]})
    assert problem == "fleetguard:detect.ruleBehaviors[0]: expected exactly one of value or statistic"


def test_invalid_cidr_is_named() -> None:
    problem = only_problem(detect={"ruleBehaviors": [
        {"name": "Src", "metric": "aws:source-ip-address", "operator": "in-cidr-set", "value": ["10.0.0.0/33"]},
    ]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors[0].value[0]: expected a CIDR block")


def test_duplicate_behavior_names() -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(), rule()]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors: behavior name 'B' is used more than once")


def test_unknown_key_inside_a_behavior() -> None:
    problem = only_problem(detect={"ruleBehaviors": [rule(treshold=3)]})
    assert problem.startswith("fleetguard:detect.ruleBehaviors[0].treshold: unknown key")


def test_all_problems_are_reported_together() -> None:
    problems = problems_for(
        audit={"schedules": [{"name": "w", "frequency": "WEEKLY", "checks": "critical"}]},
        detect={"ruleBehaviors": [rule(durationSeconds=5)]},
    )
    assert len(problems) == 2


def test_targets_must_be_all_or_groups() -> None:
    problem = only_problem(detect={"targets": "everything"})
    assert problem.startswith('fleetguard:detect.targets: expected "all" or a list of thing group names')

"""``fleetguard:fleet`` validation: defaults, prerequisites between keys, and every mistake named with
its key."""

from __future__ import annotations

from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from settings.fleet import AbortCriterion, FleetSettings, Kpi, MetricSettings, RetryCriterion, RolloutSettings
from tests.settings.config_support import BASE, config_problems, only_config_problem

RECOVERY: dict[str, Any] = {
    "firmwareVersion": "2.4.0",
    "firmwareBucket": "fleet-firmware",
    "firmwareKey": "releases/2.4.0/fw.bin",
}


def fleet(section: Any) -> FleetSettings:
    return load_settings({**BASE, "fleet": section}).fleet


def problems(section: Any) -> list[str]:
    return config_problems({"fleet": section})


def only_problem(section: Any) -> str:
    return only_config_problem({"fleet": section})


def test_defaults_index_everything_and_watch_violations_and_disconnects() -> None:
    settings = fleet({})
    indexing = settings.indexing
    assert (indexing.manage, indexing.shadow, indexing.connectivity, indexing.device_defender_violations) == (
        True, True, True, True,
    )
    assert indexing.ready_timeout_seconds == 1800
    assert settings.firmware.attribute == "firmwareVersion"
    assert settings.firmware.watched_version is None
    assert settings.dynamic_groups == (Kpi.IN_VIOLATION, Kpi.DISCONNECTED)
    assert settings.metrics == (
        MetricSettings(Kpi.IN_VIOLATION, 300, 10, 1, 1),
        MetricSettings(Kpi.DISCONNECTED, 300, 50, 1, 1),
    )
    assert settings.recovery is None


def test_without_detect_violations_are_not_indexed_or_watched_by_default() -> None:
    settings = load_settings({**BASE, "detect": {"enabled": False}, "fleet": {}}).fleet
    assert settings.indexing.device_defender_violations is False
    assert settings.dynamic_groups == (Kpi.DISCONNECTED,)
    assert [metric.kpi for metric in settings.metrics] == [Kpi.DISCONNECTED]


def test_without_detect_here_violations_may_still_be_indexed_for_another_stacks_profiles() -> None:
    settings = load_settings({**BASE, "detect": {"enabled": False},
                              "fleet": {"indexing": {"deviceDefenderViolations": True}}}).fleet
    assert settings.indexing.device_defender_violations is True
    assert settings.dynamic_groups == (Kpi.IN_VIOLATION, Kpi.DISCONNECTED)


def test_a_watched_version_adds_the_firmware_group_and_metric() -> None:
    settings = fleet({"firmware": {"watchedVersion": "1.9.3"}})
    assert settings.dynamic_groups == (Kpi.IN_VIOLATION, Kpi.DISCONNECTED, Kpi.WATCHED_FIRMWARE)
    assert settings.metrics[-1] == MetricSettings(Kpi.WATCHED_FIRMWARE, 300, 0, 1, 1)


def test_sources_switched_off_drop_their_default_groups_and_metrics() -> None:
    settings = fleet({"indexing": {"connectivity": False, "deviceDefenderViolations": False}})
    assert settings.dynamic_groups == ()
    assert settings.metrics == ()


def test_the_index_wait_is_configurable_even_when_another_stack_owns_indexing() -> None:
    indexing = fleet({"indexing": {"manage": False, "readyTimeoutSeconds": 600}}).indexing
    assert (indexing.manage, indexing.ready_timeout_seconds) == (False, 600)


def test_recovery_defaults_stage_the_rollout_and_abort_on_failures() -> None:
    recovery = fleet({"recovery": RECOVERY}).recovery
    assert recovery is not None
    assert recovery.rollout == RolloutSettings(5, 2.0, 10, 100)
    assert recovery.abort == (AbortCriterion("ALL", 10, 10),)
    assert recovery.retry == (RetryCriterion("TIMED_OUT", 1),)
    assert (recovery.in_progress_timeout_minutes, recovery.presigned_url_expiry_seconds) == (60, 3600)
    assert recovery.firmware_sha256 is None
    assert fleet({"recovery": {**RECOVERY, "enabled": False}}).recovery is None


def test_shipped_stacks_use_different_thresholds_and_rollouts() -> None:
    dev = load_settings(read_stack_config(load_stack_config("dev"))).fleet
    prod = load_settings(read_stack_config(load_stack_config("prod"))).fleet
    assert [m.kpi for m in dev.metrics] == [Kpi.IN_VIOLATION, Kpi.DISCONNECTED]
    assert [m.kpi for m in prod.metrics] == [Kpi.IN_VIOLATION, Kpi.DISCONNECTED, Kpi.WATCHED_FIRMWARE]
    assert dev.recovery is not None
    assert prod.recovery is not None
    assert dev.recovery.rollout.increment_factor == 2.0
    assert prod.recovery.rollout.increment_factor == 1.5
    assert len(prod.recovery.abort) == 3


@pytest.mark.parametrize(("section", "path", "message"), [
    ({"dynamicGroups": ["watchedFirmware"]}, "dynamicGroups[0]",
     "watchedFirmware needs fleetguard:fleet.firmware.watchedVersion to be set"),
    ({"indexing": {"deviceDefenderViolations": False}, "dynamicGroups": ["inViolation"]}, "dynamicGroups[0]",
     "inViolation needs fleetguard:fleet.indexing.deviceDefenderViolations to be true"),
    ({"dynamicGroups": ["disconnected", "disconnected"]}, "dynamicGroups[1]",
     "'disconnected' is listed more than once"),
    ({"dynamicGroups": ["offline"]}, "dynamicGroups[0]", "expected one of inViolation, disconnected, watchedFirmware"),
    ({"indexing": {"connectivity": False}, "dynamicGroups": [], "metrics": {"disconnected": {"threshold": 3}}},
     "metrics.disconnected", "disconnected needs fleetguard:fleet.indexing.connectivity to be true"),
    ({"metrics": {"inViolation": {"periodSeconds": 90}}}, "metrics.inViolation.periodSeconds",
     "a multiple of 60"),
    ({"metrics": {"inViolation": {"periodSeconds": 30}}}, "metrics.inViolation.periodSeconds",
     "expected a whole number in 60..86400"),
    ({"metrics": {"disconnected": {"periodSeconds": 3600, "evaluationPeriods": 25}}},
     "metrics.disconnected.evaluationPeriods", "must not exceed 86400 seconds"),
    ({"metrics": {"disconnected": {"evaluationPeriods": 2, "datapointsToAlarm": 3}}},
     "metrics.disconnected.datapointsToAlarm", "must not exceed evaluationPeriods (2)"),
    ({"metrics": {"disconnected": {"threshold": -1}}}, "metrics.disconnected.threshold",
     "expected a whole number in 0.."),
    ({"metrics": {"offline": {}}}, "metrics.offline", "unknown key"),
    ({"firmware": {"attribute": "firmware.version"}}, "firmware.attribute", "expected a string matching"),
    ({"firmware": {"watchedVersion": "2.3 beta"}}, "firmware.watchedVersion", "expected a string matching"),
    ({"indexing": {"manage": "no"}}, "indexing.manage", "expected true or false"),
    ({"indexing": {"readyTimeoutSeconds": 30}}, "indexing.readyTimeoutSeconds", "expected a whole number in 60..21600"),
    ({"indexing": {"readyTimeoutSeconds": 86400}}, "indexing.readyTimeoutSeconds",
     "expected a whole number in 60..21600"),
    ({"indexing": {"readyTimeoutSeconds": "1h"}}, "indexing.readyTimeoutSeconds", "expected a whole number"),
])
def test_group_metric_and_indexing_mistakes_name_the_key(section: dict[str, Any], path: str, message: str) -> None:
    problem = only_problem(section)
    assert problem.startswith(f"fleetguard:fleet.{path}: ")
    assert message in problem


def test_a_disabled_metric_for_a_missing_source_is_not_a_mistake() -> None:
    settings = fleet({"indexing": {"connectivity": False}, "metrics": {"disconnected": {"enabled": False}}})
    assert Kpi.DISCONNECTED not in [metric.kpi for metric in settings.metrics]


def test_recovery_needs_the_release_it_rolls_out() -> None:
    found = problems({"recovery": {"enabled": True}})
    assert found == [
        "fleetguard:fleet.recovery.firmwareVersion: required (missing)",
        "fleetguard:fleet.recovery.firmwareBucket: required (missing)",
        "fleetguard:fleet.recovery.firmwareKey: required (missing)",
    ]


@pytest.mark.parametrize(("recovery", "path", "message"), [
    ({"firmwareBucket": "Fleet_Firmware"}, "firmwareBucket", "expected a string matching"),
    ({"firmwareKey": "/releases/fw.bin"}, "firmwareKey", "expected a string matching"),
    ({"firmwareKey": "releases/fw v2.bin"}, "firmwareKey", "expected a string matching"),
    ({"firmwareSha256": "ABC"}, "firmwareSha256", "expected a string matching"),
    ({"presignedUrlExpirySeconds": 7200}, "presignedUrlExpirySeconds", "expected a whole number in 60..3600"),
    ({"inProgressTimeoutMinutes": 0}, "inProgressTimeoutMinutes", "expected a whole number in 1..10080"),
    ({"rollout": {"incrementFactor": 1.0}}, "rollout.incrementFactor", "expected a number in 1.1..5.0"),
    ({"rollout": {"incrementFactor": "fast"}}, "rollout.incrementFactor", "expected a number"),
    ({"rollout": {"incrementFactor": 1.55}}, "rollout.incrementFactor", "one digit after the decimal point"),
    ({"rollout": {"baseRatePerMinute": 50, "maximumPerMinute": 20}}, "rollout.maximumPerMinute",
     "must be at least baseRatePerMinute (50)"),
    ({"rollout": {"baseRatePerMinute": 1001}}, "rollout.baseRatePerMinute", "expected a whole number in 1..1000"),
    ({"rollout": {"increaseAfterSucceeded": 0}}, "rollout.increaseAfterSucceeded", "expected a whole number in 1.."),
    ({"abort": []}, "abort", "expected at least one abort criterion"),
    ({"abort": [{"failureType": "CRASHED", "thresholdPercent": 5}]}, "abort[0].failureType",
     "expected one of FAILED, REJECTED, TIMED_OUT, ALL"),
    ({"abort": [{"failureType": "FAILED"}]}, "abort[0].thresholdPercent", "required"),
    ({"abort": [{"failureType": "FAILED", "thresholdPercent": 0}]}, "abort[0].thresholdPercent",
     "expected a whole number in 1..100"),
    ({"abort": [{"failureType": "FAILED", "thresholdPercent": 5}, {"failureType": "FAILED", "thresholdPercent": 9}]},
     "abort", "failure type 'FAILED' is used more than once"),
    ({"retry": [{"failureType": "REJECTED"}]}, "retry[0].failureType", "expected one of FAILED, TIMED_OUT, ALL"),
    ({"retry": [{"failureType": "FAILED", "retries": 11}]}, "retry[0].retries", "expected a whole number in 0..10"),
    ({"retry": [{"failureType": "FAILED"}, {"failureType": "TIMED_OUT"}, {"failureType": "ALL"}]}, "retry",
     "expected at most 2 retry criteria"),
    ({"firmwareVersion": "2.3.1"}, "firmwareVersion", "must differ from firmware.watchedVersion"),
    ({"rolloutRate": 5}, "rolloutRate", "unknown key"),
])
def test_recovery_mistakes_name_the_key(recovery: dict[str, Any], path: str, message: str) -> None:
    problem = only_problem({"firmware": {"watchedVersion": "2.3.1"}, "recovery": {**RECOVERY, **recovery}})
    assert problem.startswith(f"fleetguard:fleet.recovery.{path}: ")
    assert message in problem


def test_continuous_patching_is_off_unless_asked_for() -> None:
    settings = fleet({"firmware": {"watchedVersion": "2.3.1"}, "recovery": RECOVERY})
    assert settings.recovery is not None
    assert settings.recovery.continuous is False
    on = fleet({"firmware": {"watchedVersion": "2.3.1"}, "recovery": {**RECOVERY, "continuous": True}})
    assert on.recovery is not None
    assert on.recovery.continuous is True
    assert Kpi.WATCHED_FIRMWARE in on.dynamic_groups


@pytest.mark.parametrize(("section", "message"), [
    # No watched version: nothing to target.
    ({"recovery": {**RECOVERY, "continuous": True}}, "needs a group to target"),
    # A watched version, but its dynamic group is not created.
    ({"firmware": {"watchedVersion": "2.3.1"}, "dynamicGroups": ["inViolation"],
      "recovery": {**RECOVERY, "continuous": True}}, "watchedFirmware among fleetguard:fleet.dynamicGroups"),
    # No template to create the job from.
    ({"firmware": {"watchedVersion": "2.3.1"}, "recovery": {**RECOVERY, "enabled": False, "continuous": True}},
     "set fleetguard:fleet.recovery.enabled to true"),
    ({"firmware": {"watchedVersion": "2.3.1"}, "recovery": {**RECOVERY, "continuous": "yes"}},
     "expected true or false"),
])
def test_continuous_patching_without_a_group_or_template_names_the_key(section: dict[str, Any], message: str) -> None:
    problem = only_problem(section)
    assert problem.startswith("fleetguard:fleet.recovery.continuous: ")
    assert message in problem

"""The drill, run in process against the embedded emulator: the default fleet's summary, the checks that
would catch a wrong outcome, and a broken expectation turning into a non-zero exit."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import replace

import pytest

from drill.checks import check_expectations
from drill.observed import AuditMitigationTask, DrillReport, Observed
from drill.opscenter import DEVICES as OPS_DEVICES
from drill.opscenter import OpsCenterObserved, check_ops_center
from drill.runner import main
from drill.scenario import (
    ACCOUNT_ID,
    AUDIT_TASK_ID,
    MITIGATION_ACTION,
    REGION,
    STORM_DEVICES,
    UNREGISTERED_DEVICE,
    Alert,
    Wave,
    default_scenario,
)
from functions import aws_clients
from functions.containment import QUARANTINE_KEY, QUARANTINE_REASON_KEY
from functions.contract import Outcome, RecordOutcome

pytestmark = pytest.mark.slow

MALFORMED = {"malformed-not-json", "malformed-no-violation-id", "malformed-time-in-seconds"}


def test_default_drill_meets_every_expectation(drill: tuple[DrillReport, str]) -> None:
    report, printed = drill
    assert report.failures == []
    assert report.exit_code == 0
    assert printed.rstrip().endswith("All expectations met (16 alerts, 10 devices).")


def test_summary_of_the_default_fleet(drill: tuple[DrillReport, str]) -> None:
    report, printed = drill
    observed = report.observed
    assert {thing: containment.by for thing, containment in observed.contained.items()} == {
        "sensor-a-01": "intake", "gateway-b-01": "intake", "sensor-a-02": "intake", "camera-c-01": "contain function",
    }
    assert all(containment.took_ms > 0 for containment in observed.contained.values())
    assert set(observed.released) == {"sensor-a-01", "gateway-b-01"}
    assert observed.quarantined_before_releases == {"sensor-a-01", "gateway-b-01", "sensor-a-02", "camera-c-01"}
    assert observed.quarantined_at_end == {"sensor-a-02", "camera-c-01"}
    cleared, invalidated = (RecordOutcome(Outcome.LOGGED, event) for event in ("alarm-cleared", "alarm-invalidated"))
    assert observed.ignored == {
        "alarm-cleared": f"{cleared} (alarm ended; no incident)",
        "alarm-invalidated": f"{invalidated} (alarm ended; no incident)",
        "contained-alarm-cleared": f"{cleared} (alarm ended; no incident)",
    }
    assert sorted(observed.dead_lettered) == sorted(MALFORMED)
    summary = printed[printed.index("Summary") :]
    for line in ("  contained (4):\n    sensor-a-01: ", "  storm devices handed to Device Defender (4): ",
                 "  released (2): ", "  still quarantined (2): camera-c-01, sensor-a-02", "  ignored (3):",
                 "  dead-lettered (3):", "  responders notifications (7):"):
        assert line in summary


def test_storm_is_handed_to_device_defender_in_one_task(drill: tuple[DrillReport, str]) -> None:
    observed = drill[0].observed
    assert set(observed.bulk_contained) == set(STORM_DEVICES)
    assert all(
        RecordOutcome.parse(outcome).kind is Outcome.STORM_MEMBER
        and RecordOutcome.parse(outcome).detail.startswith("(MessagesSent")
        for outcome in observed.bulk_contained.values()
    )
    [task] = observed.mitigation_tasks
    assert task.actions == (MITIGATION_ACTION,)
    assert sorted(task.violation_ids) == [f"d1a0c0de-0100-4a11-9b01-00000000010{n}" for n in range(1, 5)]
    # Device Defender is not emulated: nothing put the storm devices in the group.
    assert not observed.quarantined_at_end & set(STORM_DEVICES)


def test_the_audit_s_logging_check_is_mitigated_once_and_its_suppressed_check_not_at_all(
    drill: tuple[DrillReport, str],
) -> None:
    report, printed = drill
    [task] = report.observed.audit_mitigation_tasks
    assert task == AuditMitigationTask(
        f"{AUDIT_TASK_ID}-LOGGING_DISABLED_CHECK", AUDIT_TASK_ID,
        {"LOGGING_DISABLED_CHECK": ("fleetguard-drill-enable-logging",)},
    )
    assert "audit mitigation tasks (1):" in printed
    observed = copy.deepcopy(report.observed)
    observed.audit_mitigation_tasks.append(replace(task, task_id=f"{AUDIT_TASK_ID}-REVOKED_DEVICE_CERTIFICATE_"
                                                                 "STILL_ACTIVE_CHECK"))
    assert check_expectations(observed, report.scenario) == [
        f"audit mitigation tasks: expected ['{task.task_id}'], got "
        f"['{task.task_id}', '{AUDIT_TASK_ID}-REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK']"
    ]


def test_malformed_alerts_fail_on_every_delivery_then_rest_in_the_dead_letter_queue(
    drill: tuple[DrillReport, str],
) -> None:
    report, printed = drill
    failures = report.observed.failures
    assert set(failures) == MALFORMED
    # maxReceiveCount 2: delivered twice, failed twice, then moved by the redrive policy.
    assert all(len(reasons) == report.scenario.max_receive_count for reasons in failures.values())
    assert failures["malformed-no-violation-id"][-1] == "malformed message: violationId: required field is missing"
    assert "not valid JSON" in failures["malformed-not-json"][-1]
    assert "epoch seconds" in failures["malformed-time-in-seconds"][-1]
    assert "redrive: 3 record(s) moved to the dead-letter queue after 2 receives" in printed


def test_emulator_state_shows_containment_and_release(drill: tuple[DrillReport, str]) -> None:
    shadows = drill[0].observed.shadows
    still = shadows["sensor-a-02"]
    assert still[QUARANTINE_KEY] is True
    assert "AllBytesOutML" in still[QUARANTINE_REASON_KEY]
    for released in ("sensor-a-01", "gateway-b-01"):
        assert QUARANTINE_KEY not in shadows[released]
    for desired in shadows.values():
        assert desired["firmwareVersion"] == "3.2.1"
        assert desired["telemetryIntervalSeconds"] == 60


def test_fallback_path_notifies_responders(drill: tuple[DrillReport, str]) -> None:
    subjects = drill[0].observed.notifications
    assert sum("sensor-a-01 contained" in subject for subject in subjects) == 2  # two behaviors alarmed
    assert any(f"{UNREGISTERED_DEVICE} in alarm but NOT contained" in subject for subject in subjects)
    # Four non-compliant checks, one of them with every finding suppressed: three for people.
    assert any("3 non-compliant check(s)" in subject for subject in subjects)
    assert any("alert storm, 4 devices, MessagesSent" in subject for subject in subjects)


def test_checks_catch_a_changed_shadow_a_duplicate_dead_letter_and_an_unexpected_failure(
    drill: tuple[DrillReport, str],
) -> None:
    report = drill[0]
    observed: Observed = copy.deepcopy(report.observed)
    observed.shadows["sensor-a-03"]["firmwareVersion"] = "0.0.1"
    observed.shadows["gateway-b-01"][QUARANTINE_KEY] = True
    observed.dead_lettered.append("malformed-not-json")
    observed.failures["ml-in-alarm"] = ["ThrottlingException"]
    task = observed.mitigation_tasks[0]
    observed.mitigation_tasks = [replace(task, task_id="storm/1"), replace(task, violation_ids=task.violation_ids[:1])]
    failures = check_expectations(observed, report.scenario)
    wanted = sorted(task.violation_ids)
    assert failures == [
        "dead-letter queue: an alert is there more than once: ['malformed-no-violation-id', 'malformed-not-json', "
        "'malformed-not-json', 'malformed-time-in-seconds']",
        "records failed that were not expected to: ml-in-alarm",
        f"Device Defender mitigation tasks: expected tasks for violations {[wanted]}, got {[wanted, wanted[:1]]}",
        "mitigation task id 'storm/1': expected [a-zA-Z0-9_-]{1,128}",
        "shadow of sensor-a-03: desired keys the drill set were changed: {'firmwareVersion': '0.0.1'}",
        "shadow of gateway-b-01: quarantine keys quarantine present, but the device is not quarantined",
    ]


def test_a_broken_expectation_exits_non_zero_and_says_which(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = default_scenario()
    expected = scenario.expectations
    broken = replace(scenario, expectations=replace(expected, contained=expected.contained | {"meter-d-01"}))
    environment = dict(os.environ)
    data_endpoint_factory = aws_clients.data_endpoint_url

    assert main([], scenario=broken) == 1

    captured = capsys.readouterr()
    assert "EXPECTATIONS FAILED (2):" in captured.out
    assert (
        "contained: expected 5 [camera-c-01, gateway-b-01, meter-d-01, sensor-a-01, sensor-a-02], "
        "got 4 [camera-c-01, gateway-b-01, sensor-a-01, sensor-a-02]"
    ) in captured.out
    assert "drill failed: 2 expectation(s) not met" in captured.err
    # An in-process run leaves the environment and the client factory as it found them.
    assert dict(os.environ) == environment
    assert aws_clients.data_endpoint_url is data_endpoint_factory


def test_arguments_are_refused_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fast"]) == 2
    assert "usage: python -m drill" in capsys.readouterr().err


def test_scenario_rejects_alerts_it_could_not_tell_apart() -> None:
    scenario = default_scenario()
    first = scenario.waves[0]
    twin = Alert("twin", "rule in-alarm", first.alerts[0].message)
    with pytest.raises(ValueError, match=r"each message must be unique; repeated: \['\{"):
        replace(scenario, waves=(Wave(first.name, (*first.alerts, twin)), *scenario.waves[1:]))
    with pytest.raises(ValueError, match="visibility_timeout_seconds: expected at least 1, got 0"):
        replace(scenario, visibility_timeout_seconds=0)
    with pytest.raises(ValueError, match=r"expectations\.dead_lettered: no alert labelled missing"):
        replace(scenario, expectations=replace(scenario.expectations, dead_lettered=frozenset({"missing"})))


# --- the OpsCenter part -------------------------------------------------------------------------------------


def test_the_opscenter_part_shows_the_items_the_executions_and_an_escalation(drill: tuple[DrillReport, str]) -> None:
    report, printed = drill
    assert report.failures == []
    summary = printed[printed.index("Summary") :]

    assert "  OpsCenter incidents (2):\n" in summary
    assert "[opscenter-sensor-01] Resolved:" in summary
    assert "[opscenter-sensor-02] InProgress:" in summary
    assert "  runbook executions (2): " in summary
    assert "    +5 min oncall oi-000000000001: stage notified\n" in summary
    assert "    +5 min oncall oi-000000000002: escalation stopped\n" in summary
    assert "    +15 min lead oi-000000000001: stage notified\n" in summary
    assert "escalation oi-000000000002-oncall: escalation stopped; deleted oi-000000000002-lead" in printed


def test_the_opscenter_checks_catch_a_second_item_and_a_missed_stage() -> None:
    item = {"OperationalData": {"/aws/resources": {"Value": json.dumps(
        [{"arn": f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:thing/{OPS_DEVICES[0]}"}])}}, "Status": "Open", "Title": "t"}
    observed = OpsCenterObserved(items={"oi-000000000001": item, "oi-000000000002": item,
                                        "oi-000000000003": item})

    assert any("expected one per device" in failure for failure in check_ops_center(observed))

    second = {**item, "OperationalData": {"/aws/resources": {"Value": json.dumps(
        [{"arn": f"arn:aws:iot:{REGION}:{ACCOUNT_ID}:thing/{OPS_DEVICES[1]}"}])}}}
    observed = OpsCenterObserved(items={"oi-000000000001": item, "oi-000000000002": second},
                                 escalations=[(5, "oncall", "oi-000000000001", "stage notified")])
    failures = check_ops_center(observed)

    assert any(failure.startswith("escalations: expected") for failure in failures)
    assert any(failure.startswith("OpsItem statuses:") for failure in failures)


def test_the_suppressed_check_is_declared_first_and_then_left_alone(drill: tuple[DrillReport, str]) -> None:
    report, text = drill
    suppressed = "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK"
    declared = [f"{suppressed}/{'b3' * 32}", f"{suppressed}/{'c4' * 32}"]
    assert report.observed.suppressions == declared
    assert text.index("audit suppression created") < text.index("published audit-non-compliant")
    # The checks catch a suppressed check that is mitigated or shown to people, and a suppression not made.
    observed: Observed = copy.deepcopy(report.observed)
    observed.suppressions.pop()
    observed.audit_mitigation_tasks.append(AuditMitigationTask("t", AUDIT_TASK_ID, {suppressed: ("deactivate",)}))
    observed.notification_messages.append(f"- {suppressed}: 2 of 40 resource(s) non-compliant")
    failures = [failure for failure in check_expectations(observed, report.scenario) if "suppress" in failure]
    assert failures == [
        f"audit suppressions: expected {declared}, got {declared[:1]}",
        f"audit suppressions: a mitigation task was started for {suppressed}, all of whose findings are suppressed",
        f"audit suppressions: a responders notification mentions {suppressed}, all of whose findings are suppressed",
    ]

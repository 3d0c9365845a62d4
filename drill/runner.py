"""Run the incident-response drill: build the fleet in the emulator, publish the scenario's waves through
the intake, let responders contain and release devices, read the emulator's state back and check it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from drill.checks import check_engine, check_expectations
from drill.consumer import DrillError, drain_intake
from drill.emulator import Clients, build_fleet, drain_queue, emulator, quarantined, queue_counts
from drill.engine import ENGINE_PROFILE, engine_environment, prepare_engine, run_engine_part
from drill.handlers import handler_environment, handlers_pointed_at, mitigation_stand_in
from drill.logs import LogSink, Timeline, captured_logs
from drill.observed import Containment, DrillReport, Run
from drill.opscenter import check_ops_center, run_ops_center_part, summary_lines
from drill.report import render
from drill.scenario import ACCOUNT_ID, QUARANTINE_GROUP, QUARANTINE_POLICY, REGION, Alert, Scenario, default_scenario
from drill.suppressions import declare_suppressions
from functions import contain, engine_handler, escalation, intake, release
from functions.contract import OutputKey, Status
from harness.lambda_context import lambda_context


def run_drill(scenario: Scenario | None = None, out: TextIO | None = None) -> DrillReport:
    """Run the scenario (the default fleet when None) and print the timeline and summary to ``out``
    (stdout when None). The report's exit code is non-zero when an expectation failed."""
    scenario = scenario or default_scenario()
    stream = out if out is not None else sys.stdout
    timeline = Timeline()
    with emulator() as url:
        timeline.add(f"emulator up: moto server at {url}")
        clients = Clients.for_emulator(url)
        plumbing = build_fleet(clients, scenario)
        groups = {group for device in scenario.devices for group in device.groups}
        timeline.add(
            f"fleet ready: {len(scenario.devices)} things in {len(groups)} groups with shadows, quarantine group "
            f"{QUARANTINE_GROUP} with IoT policy {QUARANTINE_POLICY}, alert topic -> intake queue (dead-letter "
            f"after {scenario.max_receive_count} receives), responders topic -> inbox queue"
        )
        sink = LogSink(timeline)
        run = Run(scenario, clients, plumbing, timeline, sink)
        run.labels_by_message = {alert.message: alert for wave in scenario.waves for alert in wave.alerts}
        with (
            handlers_pointed_at(url, handler_environment(url, scenario, plumbing)),
            captured_logs([intake.logger.name, contain.logger.name, release.logger.name], sink),
            mitigation_stand_in(url, scenario, run.observed.mitigation_tasks, run.observed.audit_mitigation_tasks),
        ):
            run.observed.suppressions = [
                f"{suppression.check}/{suppression.certificate_id}"
                for suppression in declare_suppressions(scenario.suppressions, timeline)
            ]
            for number, wave in enumerate(scenario.waves, start=1):
                _publish_wave(run, number, wave.name, wave.alerts)
                drain_intake(run)
            _operator_contains(run)
            run.observed.quarantined_before_releases = quarantined(clients)
            timeline.add(
                "quarantine group before releases: "
                + (", ".join(sorted(run.observed.quarantined_before_releases)) or "empty")
            )
            _release_devices(run)
        _observe_state(run)
        # After the main scenario's state is read back: the OpsCenter part's devices are not the fleet's.
        with (
            handlers_pointed_at(url, handler_environment(url, scenario, plumbing)),
            captured_logs([intake.logger.name, contain.logger.name, release.logger.name, escalation.logger.name],
                          sink),
        ):
            ops_center = run_ops_center_part(run, url)
        # Last, with Device Defender Detect off: the fleetguard engine's violations through the same intake.
        engine_dead_letters = prepare_engine(run)
        engine_settings = {
            **handler_environment(url, scenario, plumbing, engine_profile_names=(ENGINE_PROFILE,)),
            **engine_environment(plumbing.alert_topic_arn),
        }
        with (
            handlers_pointed_at(url, engine_settings),
            captured_logs([intake.logger.name, contain.logger.name, engine_handler.logger.name], sink),
        ):
            engine = run_engine_part(run, engine_dead_letters)
        timeline.add("emulator state read back; checking expectations")
    failures = check_expectations(run.observed, scenario) + check_ops_center(ops_center) + check_engine(engine)
    report = DrillReport(scenario, run.observed, timeline, url, failures, summary_lines(ops_center), engine)
    stream.write(render(report))
    stream.flush()
    return report


def _publish_wave(run: Run, number: int, name: str, alerts: Sequence[Alert]) -> None:
    run.timeline.add(f"wave {number} ({name}): publishing {len(alerts)} alert(s) to the alert topic")
    for alert in alerts:
        run.clients.sns.publish(TopicArn=run.plumbing.alert_topic_arn, Message=alert.message)
        run.published_at[alert.label] = run.timeline.now_ms()
        subject = f" for {alert.thing_name}" if alert.thing_name else ""
        run.timeline.add(f"  published {alert.label}: {alert.kind}{subject}")


def _operator_contains(run: Run) -> None:
    for number, planned in enumerate(run.scenario.operator_contains, start=1):
        context = lambda_context("fleetguard-drill-contain", region=REGION, account_id=ACCOUNT_ID,
                                 request_id=f"00000000-0000-4000-a000-{number:012d}", log_stream="drill")
        already = planned.thing_name in quarantined(run.clients)
        started = run.timeline.now_ms()
        result = contain.handler({"thingName": planned.thing_name, "reason": planned.reason}, context)
        took = run.timeline.now_ms() - started
        status = result.get(OutputKey.STATUS)
        newly = status == Status.CONTAINED and not already
        if newly and planned.thing_name not in run.observed.contained:
            run.observed.contained[planned.thing_name] = Containment(took, "contain function")
        run.timeline.add(
            f"contain function: {planned.thing_name} {status} (already contained: {already}) "
            f"in {took:.0f} ms; reason: {planned.reason}",
            at_ms=started,
        )


def _release_devices(run: Run) -> None:
    for number, planned in enumerate(run.scenario.releases, start=1):
        context = lambda_context("fleetguard-drill-release", region=REGION, account_id=ACCOUNT_ID,
                                 request_id=f"00000000-0000-4000-9000-{number:012d}", log_stream="drill")
        was_quarantined = planned.thing_name in run.observed.quarantined_before_releases
        started = run.timeline.now_ms()
        result = release.handler({"thingName": planned.thing_name, "reason": planned.reason}, context)
        took = run.timeline.now_ms() - started
        status = result.get(OutputKey.STATUS)
        if status == Status.RELEASED and was_quarantined:
            run.observed.released[planned.thing_name] = took
        run.timeline.add(
            f"release function: {planned.thing_name} {status} "
            f"(was quarantined: {was_quarantined}) in {took:.0f} ms; reason: {planned.reason}",
            at_ms=started,
        )


def _observe_state(run: Run) -> None:
    clients, plumbing, observed = run.clients, run.plumbing, run.observed
    observed.quarantined_at_end = quarantined(clients)
    for device in run.scenario.devices:
        document = json.loads(clients.iot_data.get_thing_shadow(thingName=device.name)["payload"].read())
        observed.shadows[device.name] = dict(document.get("state", {}).get("desired", {}))
    for body in drain_queue(clients.sqs, plumbing.dead_letter_queue_url):
        alert = run.alert_of_body(body)
        observed.dead_lettered.append(alert.label if alert is not None else f"unknown message {body[:80]!r}")
    for body in drain_queue(clients.sqs, plumbing.responders_inbox_url):
        notification = json.loads(body)
        observed.notifications.append(str(notification.get("Subject")))
        observed.notification_messages.append(str(notification.get("Message")))
    visible, in_flight = queue_counts(clients.sqs, plumbing.intake_queue_url)
    observed.left_in_intake_queue = visible + in_flight
    attached = clients.iot.list_attached_policies(target=plumbing.quarantine_group_arn)["policies"]
    observed.quarantine_policy_attached = any(policy["policyName"] == QUARANTINE_POLICY for policy in attached)


def main(argv: Sequence[str] | None = None, scenario: Scenario | None = None) -> int:
    """``python -m drill``: run the scenario (the default one unless given); 0 when every expectation
    holds, 1 otherwise, 2 when the drill could not run."""
    if argv:
        sys.stderr.write("usage: python -m drill  (no arguments: the drill's fleet and scenario are fixed)\n")
        return 2
    try:
        report = run_drill(scenario)
    except DrillError as error:
        sys.stderr.write(f"drill aborted: {error}\n")
        return 2
    if report.failures:
        sys.stderr.write(f"drill failed: {len(report.failures)} expectation(s) not met (see above)\n")
    return report.exit_code

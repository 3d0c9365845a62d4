"""The drill's printed report: the timeline, then a summary of what happened and whether it held."""

from __future__ import annotations

from drill.observed import DrillReport, EngineObserved
from drill.scenario import ACCOUNT_ID, REGION, Alert


def render(report: DrillReport) -> str:
    observed, scenario = report.observed, report.scenario
    lines = [
        "fleetguard drill: incident-response game day on an embedded AWS emulator",
        f"emulator: moto server at {report.emulator_url} (account {ACCOUNT_ID}, {REGION})",
        "Incident Manager: not in the emulator; the intake runs its fallback path "
        "(contain the device itself, notify the responders topic)",
        "Device Defender mitigation tasks (Detect and audit): not in the emulator; a stub checks and answers "
        "the intake's requests",
        "OpsCenter and Automation: not in the emulator; an in-memory stand-in answers, and the drill fires "
        "the escalation schedules by advancing the scheduler clock",
        "Kinesis: not needed; the drill invokes the Detect engine's handler with the events its stream would "
        "deliver (Device Defender Detect off)",
        "",
        "Timeline (ms since start)",
    ]
    lines += [f"{at:8.0f}  {text}" for at, text in sorted(report.timeline.entries, key=lambda entry: entry[0])]
    lines += ["", "Summary"]
    lines.append(f"  contained ({len(observed.contained)}):")
    lines += [
        f"    {thing}: {containment.took_ms:.0f} ms by the {containment.by}"
        for thing, containment in observed.contained.items()
    ]
    lines.append(f"  storm devices handed to Device Defender ({len(observed.bulk_contained)}): "
                 + (", ".join(sorted(observed.bulk_contained)) or "none")
                 + "  (the emulator cannot run the task: they stay outside the quarantine group)")
    lines += [
        f"    mitigation task {task.task_id}: {len(task.violation_ids)} violation(s), actions {', '.join(task.actions)}"
        for task in observed.mitigation_tasks
    ]
    lines.append(f"  audit suppressions declared ({len(observed.suppressions)}): "
                 + (", ".join(f"{entry[:60]}..." for entry in observed.suppressions) or "none"))
    lines.append(f"  audit mitigation tasks ({len(observed.audit_mitigation_tasks)}):")
    lines += [
        f"    {task.task_id}: " + "; ".join(f"{check} -> {', '.join(actions)}"
                                            for check, actions in task.actions_by_check.items())
        for task in observed.audit_mitigation_tasks
    ]
    lines.append(f"  released ({len(observed.released)}): " + (", ".join(
        f"{thing} in {ms:.0f} ms" for thing, ms in observed.released.items()
    ) or "none"))
    lines.append(f"  still quarantined ({len(observed.quarantined_at_end)}): "
                 + (", ".join(sorted(observed.quarantined_at_end)) or "none"))
    lines.append(f"  ignored ({len(observed.ignored)}):")
    alerts = scenario.alerts
    lines += [
        f"    {_describe(alerts.get(label), label)}: {reason}" for label, reason in sorted(observed.ignored.items())
    ]
    lines.append(f"  dead-lettered ({len(observed.dead_lettered)}):")
    lines += [
        f"    {_describe(alerts.get(label), label)}: {observed.failures.get(label, ['no failure logged'])[-1]}"
        for label in sorted(observed.dead_lettered)
    ]
    lines.append(f"  responders notifications ({len(observed.notifications)}):")
    lines += [f"    {subject}" for subject in observed.notifications]
    lines += report.ops_center
    if report.engine is not None:
        lines += engine_lines(report.engine)
    lines.append("")
    if report.failures:
        lines.append(f"EXPECTATIONS FAILED ({len(report.failures)}):")
        lines += [f"  - {failure}" for failure in report.failures]
    else:
        lines.append(f"All expectations met ({len(alerts)} alerts, {len(scenario.devices)} devices).")
    return "\n".join(lines) + "\n"


def _describe(alert: Alert | None, label: str) -> str:
    return f"{label} [{alert.thing_name}]" if alert is not None and alert.thing_name else label


def engine_lines(observed: EngineObserved) -> list[str]:
    lines = [f"  Detect engine batches ({len(observed.batches)}):"]
    for batch in observed.batches:
        lines.append(f"    {batch.name}: {batch.records} record(s), {len(batch.failed)} failed, "
                     f"{len(batch.events)} event(s) published")
        lines += [f"      {event.thing_name} {event.behavior} {event.event_type} ({event.profile}, "
                  f"violation {event.violation_id})" for event in batch.events]
    lines.append(f"  contained from the engine's violations ({len(observed.contained)}):")
    lines += [f"    {thing}: {containment.took_ms:.0f} ms by the {containment.by}"
              for thing, containment in observed.contained.items()]
    lines.append(f"  still in alarm in the engine's state: {', '.join(sorted(observed.in_alarm)) or 'none'}")
    return lines

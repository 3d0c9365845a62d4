"""The drill's Detect engine part: its stream records decode as the engine's own, and the run shows the
engine's violations contained by the intake, a redelivery changing nothing and an alarm clearing; the
checks catch what would go wrong."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from drill.checks import check_engine
from drill.engine import (
    ALLOWED_PORTS,
    AUTH_BEHAVIOR,
    AUTH_DEVICE,
    ENGINE_PROFILE,
    PORT_DEVICE,
    PORTS_BEHAVIOR,
    UNAUTHORIZED_PORT,
    stream_batches,
)
from drill.observed import DrillReport, EngineBatch, EngineEvent, EngineObserved
from functions.contract import Outcome, RecordOutcome
from functions.engine_records import decode_record
from functions.evaluator import ObservationKind
from functions.messages import VIOLATION_ID_PATTERN


def test_the_stream_records_decode_into_the_scenario_s_observations() -> None:
    first, redelivered, later = stream_batches()
    assert redelivered == first
    decoded = [decode_record(record) for record in (*first, *later)]
    assert [record.error for record in decoded] == [None] * len(decoded)
    observations = [observation for record in decoded for observation in record.observations]
    reports = [(observation.device, observation.report.tcp_ports) for observation in observations
               if observation.kind is ObservationKind.REPORT and observation.report is not None]
    assert reports == [
        (PORT_DEVICE, tuple(sorted((*ALLOWED_PORTS, UNAUTHORIZED_PORT)))),
        (AUTH_DEVICE, ALLOWED_PORTS),
        (PORT_DEVICE, ALLOWED_PORTS),
    ]
    failures = [observation for observation in observations if observation.kind is ObservationKind.AUTH_FAILURE]
    assert {observation.device for observation in failures} == {AUTH_DEVICE}
    assert len(failures) > (AUTH_BEHAVIOR.count or 0), "the burst must exceed the behavior's bound"


@pytest.mark.slow
def test_the_engine_s_violations_are_contained_once_and_an_alarm_clears(drill: tuple[DrillReport, str]) -> None:
    report, printed = drill
    engine = report.engine
    assert engine is not None
    assert check_engine(engine) == []
    first, redelivered, later = (
        sorted((event.thing_name, event.behavior, event.event_type) for event in batch.events)
        for batch in engine.batches
    )
    assert first == [(PORT_DEVICE, PORTS_BEHAVIOR.name, "in-alarm"), (AUTH_DEVICE, AUTH_BEHAVIOR.name, "in-alarm")]
    assert redelivered == []
    assert later == [(PORT_DEVICE, PORTS_BEHAVIOR.name, "alarm-cleared")]
    events = [event for batch in engine.batches for event in batch.events]
    assert {event.profile for event in events} == {ENGINE_PROFILE}
    assert all(VIOLATION_ID_PATTERN.fullmatch(event.violation_id) for event in events)
    assert sorted(engine.containments) == [PORT_DEVICE, AUTH_DEVICE]
    assert {thing: containment.by for thing, containment in engine.contained.items()} == {
        PORT_DEVICE: "intake", AUTH_DEVICE: "intake"}
    assert engine.quarantined == {PORT_DEVICE, AUTH_DEVICE}
    cleared = RecordOutcome(Outcome.LOGGED, "alarm-cleared")
    assert list(engine.ignored.values()) == [f"{cleared} (alarm ended; no incident)"]
    assert sorted(engine.notifications) == [f"fleetguard: {PORT_DEVICE} contained ({PORTS_BEHAVIOR.name})",
                                            f"fleetguard: {AUTH_DEVICE} contained ({AUTH_BEHAVIOR.name})"]
    assert engine.in_alarm == {AUTH_DEVICE}
    assert engine.dead_letters == []
    # The main scenario's tallies hold none of the part's devices.
    assert not set(report.observed.contained) & {PORT_DEVICE, AUTH_DEVICE}
    assert "  Detect engine batches (3):" in printed
    assert f"  still in alarm in the engine's state: {AUTH_DEVICE}" in printed


@pytest.mark.slow
def test_checks_catch_a_second_containment_an_event_on_redelivery_and_a_foreign_profile(
    drill: tuple[DrillReport, str],
) -> None:
    engine = drill[0].engine
    assert engine is not None
    broken: EngineObserved = copy.deepcopy(engine)
    broken.containments.append(PORT_DEVICE)
    cleared = broken.batches[2].events[0]
    broken.batches[1].events.append(replace(cleared, profile="fleetguard-drill-rules"))
    broken.batches[0].failed.append("49650000000000000000001")
    broken.dead_letters.append(json.dumps({"reason": "record: not valid JSON"}))
    broken.in_alarm = frozenset()

    failures = check_engine(broken)

    assert failures == [
        "engine batch 'reports and an authorization-failure burst': records reported failed: "
        "['49650000000000000000001']",
        "engine events per batch: expected "
        f"[['{PORT_DEVICE} {PORTS_BEHAVIOR.name} in-alarm', '{AUTH_DEVICE} {AUTH_BEHAVIOR.name} in-alarm'], [], "
        f"['{PORT_DEVICE} {PORTS_BEHAVIOR.name} alarm-cleared']], got "
        f"[['{PORT_DEVICE} {PORTS_BEHAVIOR.name} in-alarm', '{AUTH_DEVICE} {AUTH_BEHAVIOR.name} in-alarm'], "
        f"['{PORT_DEVICE} {PORTS_BEHAVIOR.name} alarm-cleared'], "
        f"['{PORT_DEVICE} {PORTS_BEHAVIOR.name} alarm-cleared']]",
        f"engine event {cleared.violation_id} of {PORT_DEVICE}: expected security profile {ENGINE_PROFILE}, "
        "got fleetguard-drill-rules",
        f"engine part: expected the intake to contain each of 2 [{PORT_DEVICE}, {AUTH_DEVICE}] once, got "
        f"{sorted([PORT_DEVICE, AUTH_DEVICE, PORT_DEVICE])}",
        f"engine dead-letter queue: expected empty, got {broken.dead_letters}",
        f"engine state: expected in alarm 1 [{AUTH_DEVICE}], got 0 []",
    ]


def test_checks_catch_violation_ids_that_change_within_one_violation() -> None:
    in_alarm = EngineEvent(PORT_DEVICE, PORTS_BEHAVIOR.name, "in-alarm", "a1", ENGINE_PROFILE)
    observed = EngineObserved()
    observed.batches = [EngineBatch("one", 1, [], [in_alarm, replace(in_alarm, event_type="alarm-cleared",
                                                                      violation_id="b2")])]
    assert any("its events carry different ids ['a1', 'b2']" in failure for failure in check_engine(observed))

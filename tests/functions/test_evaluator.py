"""The engine's evaluation semantics: operators and value kinds, windows, datapoints to alarm and to clear,
suppressed behaviors, targets, duplicate and out-of-order input, silent devices and the state it writes."""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from typing import Any

import pytest

from functions.device_report import DeviceReport
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.evaluator import (
    HEARTBEAT_MS,
    SILENCE_MS,
    DeviceState,
    Evaluation,
    Observation,
    ObservationKind,
    evaluate,
    invalidate_silent,
    violation_id,
)
from functions.messages import EventType, ViolationEvent, parse_message

DEVICE = "dev-1"
T0 = 1_767_225_600_000  # a multiple of every window length
MINUTE = 60_000
REPORT_EVERY = 5 * MINUTE


def profile(*behaviors: EngineBehavior, groups: tuple[str, ...] = ()) -> EngineProfile:
    return EngineProfile("fleetguard-engine", groups, behaviors)


def report(report_id: int, **metrics: Any) -> DeviceReport:
    return DeviceReport(report_id=report_id, version="1.0", **metrics)


def at(minutes: float) -> int:
    return T0 + int(minutes * MINUTE)


def reported(report_id: int, minutes: float, **metrics: Any) -> Observation:
    return Observation(DEVICE, at(minutes), ObservationKind.REPORT, report=report(report_id, **metrics))


def event(kind: ObservationKind, minutes: float, **fields: Any) -> Observation:
    return Observation(DEVICE, at(minutes), kind, **fields)


def run(engine: EngineProfile, *batches: list[Observation], state: DeviceState | None = None) -> list[Evaluation]:
    """Evaluate batches one after the other, as successive handler invocations would."""
    evaluations = []
    current = state or DeviceState(DEVICE)
    for batch in batches:
        evaluation = evaluate(engine, current, batch)
        evaluations.append(evaluation)
        current = evaluation.state
    return evaluations


def types(evaluations: list[Evaluation]) -> list[str]:
    return [event["violationEventType"] for evaluation in evaluations for event in evaluation.events]


def parsed(event_document: dict[str, Any]) -> ViolationEvent:
    result = parse_message(json.dumps(event_document))
    assert isinstance(result, ViolationEvent)
    return result


# --- operators and value kinds ----------------------------------------------------------------------------

@pytest.mark.parametrize(("operator", "value", "violating"), [
    ("less-than", 4, False), ("less-than", 5, True),
    ("less-than-equals", 5, False), ("less-than-equals", 6, True),
    ("greater-than", 6, False), ("greater-than", 5, True),
    ("greater-than-equals", 5, False), ("greater-than-equals", 4, True),
])
def test_count_operators_state_what_is_normal(operator: str, value: int, violating: bool) -> None:
    engine = profile(EngineBehavior("Established", "aws:num-established-tcp-connections", operator, count=5))

    [evaluation] = run(engine, [reported(1, 0, num_established=value)])

    assert types([evaluation]) == (["in-alarm"] if violating else [])
    if violating:
        assert evaluation.events[0]["metricValue"] == {"count": value}


@pytest.mark.parametrize(("operator", "ports", "violating"), [
    ("in-port-set", (22, 443), False), ("in-port-set", (), False), ("in-port-set", (22, 4444), True),
    ("not-in-port-set", (8080,), False), ("not-in-port-set", (22, 8080), True),
])
def test_port_operators(operator: str, ports: tuple[int, ...], violating: bool) -> None:
    engine = profile(EngineBehavior("Udp", "aws:listening-udp-ports", operator, ports=(22, 443)))

    [evaluation] = run(engine, [reported(1, 0, udp_ports=ports)])

    assert types([evaluation]) == (["in-alarm"] if violating else [])
    if violating:
        assert evaluation.events[0]["metricValue"] == {"ports": list(ports)}


@pytest.mark.parametrize(("operator", "addresses", "violating"), [
    ("in-cidr-set", ("10.1.2.3", "2001:db8::5"), False), ("in-cidr-set", ("10.1.2.3", "192.0.2.1"), True),
    ("in-cidr-set", ("2001:db9::1",), True),
    ("not-in-cidr-set", ("192.0.2.1",), False), ("not-in-cidr-set", ("192.0.2.1", "10.9.9.9"), True),
])
def test_cidr_operators_on_destination_addresses(operator: str, addresses: tuple[str, ...], violating: bool) -> None:
    engine = profile(EngineBehavior("Peers", "aws:destination-ip-addresses", operator,
                                    cidrs=("10.0.0.0/8", "2001:db8::/32")))
    ips = tuple(ipaddress.ip_address(address) for address in addresses)

    [evaluation] = run(engine, [reported(1, 0, destination_ips=ips)])

    assert types([evaluation]) == (["in-alarm"] if violating else [])
    if violating:
        assert evaluation.events[0]["metricValue"] == {"cidrs": [f"{ip}/{ip.max_prefixlen}" for ip in ips]}


def test_source_address_is_a_datapoint_per_connection() -> None:
    engine = profile(EngineBehavior("Sources", "aws:source-ip-address", "in-cidr-set", cidrs=("198.51.100.0/24",)))

    evaluations = run(engine, [event(ObservationKind.CONNECT, 0, source_ip="198.51.100.7")],
                      [event(ObservationKind.CONNECT, 1, source_ip="203.0.113.9")],
                      [event(ObservationKind.CONNECT, 2, source_ip="198.51.100.8")])

    assert types(evaluations) == ["in-alarm", "alarm-cleared"]
    assert evaluations[1].events[0]["metricValue"] == {"cidrs": ["203.0.113.9/32"]}


def test_message_size_is_a_datapoint_per_message() -> None:
    engine = profile(EngineBehavior("Size", "aws:message-byte-size", "less-than-equals", count=1024))

    evaluations = run(engine, [event(ObservationKind.MESSAGE, 0, message_bytes=1024)],
                      [event(ObservationKind.MESSAGE, 1, message_bytes=1025)])

    assert types(evaluations) == ["in-alarm"]


def test_a_metric_the_report_leaves_out_is_no_datapoint() -> None:
    engine = profile(EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,)))

    [evaluation] = run(engine, [reported(1, 0, udp_ports=(4444,))])

    assert evaluation.events == ()
    assert evaluation.state.behaviors == {}


# --- windows ----------------------------------------------------------------------------------------------

AUTH = EngineBehavior("Auth", "aws:num-authorization-failures", "less-than", count=5, duration_seconds=300)


def failures(count: int, minutes: float) -> list[Observation]:
    return [event(ObservationKind.AUTH_FAILURE, minutes + index / 1000) for index in range(count)]


def test_a_burst_alarms_as_soon_as_the_window_sum_crosses_the_bound() -> None:
    [evaluation] = run(profile(AUTH), failures(4, 1) + failures(1, 3) + failures(3, 4))

    [alarm] = evaluation.events
    assert alarm["violationEventType"] == "in-alarm"
    assert alarm["metricValue"] == {"count": 5}
    assert alarm["violationEventTime"] == at(3)
    assert alarm["behavior"]["criteria"]["durationSeconds"] == 300


def test_windows_are_aligned_to_multiples_of_the_duration() -> None:
    # 4 failures just before a window boundary and 4 just after: two windows of 4, no alarm.
    evaluations = run(profile(AUTH), failures(4, 4.5), failures(4, 5.5), failures(1, 11))

    assert types(evaluations) == []


def test_a_window_below_a_lower_bound_violates_when_it_closes() -> None:
    engine = profile(EngineBehavior("Alive", "aws:all-packets-out", "greater-than-equals", count=100,
                                    duration_seconds=600))

    evaluations = run(engine, [reported(1, 0, packets_out=60), reported(2, 5, packets_out=30)],
                      [reported(3, 10, packets_out=70)], [reported(4, 15, packets_out=40)],
                      [reported(5, 20, packets_out=1)])

    # Window 0-10 sums 90 (violating, known when the report at 10 arrives); 10-20 sums 110 (normal, known
    # as soon as it passes 100).
    assert types(evaluations) == ["in-alarm", "alarm-cleared"]
    assert evaluations[1].events[0]["metricValue"] == {"count": 90}
    assert evaluations[2].events[0]["metricValue"] == {"count": 110}


def test_cloud_side_windows_without_events_count_zero() -> None:
    engine = profile(EngineBehavior("Disconnects", "aws:num-disconnects", "greater-than", count=0,
                                    duration_seconds=300, datapoints_to_alarm=3))
    disconnect = ObservationKind.DISCONNECT

    evaluations = run(engine, [event(disconnect, 1)], [event(disconnect, 16)])

    # Windows 0-5 (1 disconnect) is normal; 5-10 and 10-15 had none: two violating datapoints, then the
    # window 15-20 is normal again, so the alarm (3 in a row) is never raised.
    assert types(evaluations) == []
    # Three empty windows (5-20) alarm; the disconnect at 21 makes 20-25 normal at once, which clears it.
    evaluations = run(engine, [event(disconnect, 1)], [event(disconnect, 21)])
    assert types(evaluations) == ["in-alarm", "alarm-cleared"]
    assert [event["metricValue"] for event in evaluations[1].events] == [{"count": 0}, {"count": 1}]


def test_device_side_windows_without_reports_are_no_datapoint() -> None:
    engine = profile(EngineBehavior("Quiet", "aws:all-bytes-out", "greater-than", count=0, duration_seconds=300))

    evaluations = run(engine, [reported(1, 1, bytes_out=10)], [reported(2, 31, bytes_out=10)])

    assert types(evaluations) == []


def test_observations_for_a_closed_window_are_dropped() -> None:
    evaluations = run(profile(AUTH), failures(1, 6), failures(3, 6.5) + failures(4, 2))

    assert types(evaluations) == []
    assert evaluations[1].state.behaviors["Auth"].window_sum == 4  # the 4 failures at minute 2 came too late


# --- datapoints to alarm and to clear, suppressed alerts ------------------------------------------------

TCP = EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22, 443), datapoints_to_alarm=3,
                     datapoints_to_clear=2)


def port_reports(*ports: tuple[int, ...]) -> list[list[Observation]]:
    return [[reported(index + 1, index * 5, tcp_ports=listening)] for index, listening in enumerate(ports)]


BAD, GOOD = (22, 4444), (22,)


def test_an_alarm_needs_consecutive_violating_datapoints() -> None:
    assert types(run(profile(TCP), *port_reports(BAD, BAD, GOOD, BAD, BAD))) == []
    evaluations = run(profile(TCP), *port_reports(BAD, BAD, GOOD, BAD, BAD, BAD))
    assert types(evaluations) == ["in-alarm"]
    assert evaluations[-1].events[0]["violationEventTime"] == at(25)


def test_an_alarm_clears_after_consecutive_normal_datapoints() -> None:
    evaluations = run(profile(TCP), *port_reports(BAD, BAD, BAD, GOOD, BAD, GOOD, GOOD, GOOD))

    assert types(evaluations) == ["in-alarm", "alarm-cleared"]
    raised, cleared = evaluations[2].events[0], evaluations[6].events[0]
    assert cleared["violationId"] == raised["violationId"]
    assert cleared["metricValue"] == {"ports": [22]}
    assert evaluations[7].state.behaviors["Tcp"].in_alarm is False


def test_a_new_alarm_gets_a_new_violation_id() -> None:
    engine = profile(EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,)))

    evaluations = run(engine, *port_reports(BAD, GOOD, BAD))

    first, _, second = (evaluation.events[0]["violationId"] for evaluation in evaluations)
    assert first != second
    assert second == violation_id("fleetguard-engine", DEVICE, "Tcp", at(10))


def test_suppressed_behaviors_keep_state_and_publish_nothing() -> None:
    suppressed = EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,), suppress_alerts=True)
    loud = EngineBehavior("Udp", "aws:listening-udp-ports", "in-port-set", ports=(53,))

    [evaluation] = run(profile(suppressed, loud), [reported(1, 0, tcp_ports=BAD, udp_ports=(99,))])

    assert [event["behavior"]["name"] for event in evaluation.events] == ["Udp"]
    assert evaluation.state.behaviors["Tcp"].in_alarm is True
    assert evaluation.changed is True


# --- what a downstream consumer sees ---------------------------------------------------------------------

def test_events_are_violation_events_the_intake_parses() -> None:
    evaluations = run(profile(TCP, AUTH), *port_reports(BAD, BAD, BAD), failures(5, 16),
                      [reported(9, 30, tcp_ports=GOOD)], [reported(10, 35, tcp_ports=GOOD)])
    documents = [event for evaluation in evaluations for event in evaluation.events]

    violations = [parsed(document) for document in documents]

    assert [(v.behavior.name, v.event_type) for v in violations] == [
        ("Tcp", EventType.IN_ALARM), ("Auth", EventType.IN_ALARM), ("Tcp", EventType.ALARM_CLEARED)]
    for violation in violations:
        assert violation.thing_name == DEVICE
        assert violation.security_profile_name == "fleetguard-engine"
        assert violation.behavior.kind == "rule"
        assert violation.behavior.criteria["consecutiveDatapointsToAlarm"] in (1, 3)


# --- duplicates, order and redelivery ---------------------------------------------------------------------

def test_a_report_that_is_not_newer_is_ignored() -> None:
    engine = profile(EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,)))

    evaluations = run(engine, [reported(5, 0, tcp_ports=GOOD)], [reported(5, 1, tcp_ports=BAD)],
                      [reported(4, 2, tcp_ports=BAD)])

    assert types(evaluations) == []
    assert [evaluation.changed for evaluation in evaluations] == [True, False, False]


def test_redelivered_stream_records_are_skipped_by_sequence() -> None:
    batch = [Observation(DEVICE, at(1) + index, ObservationKind.AUTH_FAILURE, sequence=100 + index)
             for index in range(3)]

    first, second = run(profile(AUTH), batch, batch)

    assert first.state.behaviors["Auth"].window_sum == 3
    assert second.state.behaviors["Auth"].window_sum == 3
    assert second.changed is False


def test_the_input_state_is_not_modified() -> None:
    state = DeviceState(DEVICE)
    before = state.to_item()

    evaluate(profile(TCP, AUTH), state, [*failures(9, 1), reported(1, 2, tcp_ports=BAD)])

    assert state.to_item() == before


# --- writes: only what a later verdict depends on ----------------------------------------------------------

def test_steady_state_writes_only_the_heartbeat() -> None:
    engine = profile(TCP, AUTH, EngineBehavior("Out", "aws:all-bytes-out", "less-than", count=10**6,
                                               duration_seconds=300))
    reports_per_day = 24 * 60 // 5
    batches = [[reported(index + 1, index * 5, tcp_ports=GOOD, bytes_out=1000)] for index in range(reports_per_day)]

    evaluations = run(engine, *batches)

    writes = sum(evaluation.changed for evaluation in evaluations)
    assert writes == 24 * 3600 * 1000 // HEARTBEAT_MS  # the first observation, then once per heartbeat
    assert writes / reports_per_day <= 0.05


def test_the_heartbeat_bounds_how_stale_last_seen_is() -> None:
    engine = profile(TCP)
    first, quiet, due = run(engine, [reported(1, 0, tcp_ports=GOOD)], [reported(2, 5, tcp_ports=GOOD)],
                            [reported(3, HEARTBEAT_MS / MINUTE, tcp_ports=GOOD)])

    assert (first.changed, quiet.changed, due.changed) == (True, False, True)
    assert quiet.state.last_seen_ms == at(0)
    assert due.state.last_seen_ms == at(0) + HEARTBEAT_MS


# --- targets ---------------------------------------------------------------------------------------------

def test_a_profile_for_groups_skips_devices_outside_them_and_invalidates_their_alarms() -> None:
    engine = profile(EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,)), groups=("line-2",))
    member = DeviceState(DEVICE, groups=("line-1", "line-2"))

    raised = evaluate(engine, member, [reported(1, 0, tcp_ports=BAD)])
    moved = evaluate(engine, DeviceState(**{**vars_of(raised.state), "groups": ("line-1",)}),
                     [reported(2, 5, tcp_ports=BAD)])

    assert types([raised, moved]) == ["in-alarm", "alarm-invalidated"]
    assert "metricValue" not in moved.events[0]
    assert moved.state.behaviors == {}
    assert evaluate(engine, DeviceState("other", groups=()), [reported(1, 0, tcp_ports=BAD)]).events == ()


def test_a_profile_for_groups_needs_the_groups_looked_up() -> None:
    engine = profile(TCP, groups=("line-2",))

    with pytest.raises(ValueError, match=r"dev-1: thing groups unknown"):
        evaluate(engine, DeviceState(DEVICE), [reported(1, 0, tcp_ports=BAD)])


def vars_of(state: DeviceState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__slots__}


def test_behaviors_dropped_from_the_profile_are_forgotten() -> None:
    [raised] = run(profile(TCP), *port_reports(BAD, BAD, BAD))[-1:]
    assert raised.state.behaviors["Tcp"].in_alarm

    [after] = run(profile(AUTH), [reported(9, 30)], state=raised.state)

    assert after.changed is True
    assert "Tcp" not in after.state.behaviors


# --- silent devices --------------------------------------------------------------------------------------

def test_alarms_of_a_silent_device_are_invalidated_after_two_days_and_a_heartbeat() -> None:
    engine = profile(EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=(22,)),
                     EngineBehavior("Udp", "aws:listening-udp-ports", "in-port-set", ports=(53,), suppress_alerts=True))
    [raised] = run(engine, [reported(1, 0, tcp_ports=BAD, udp_ports=(99,))])
    silent_since = raised.state.last_seen_ms
    assert silent_since is not None

    early = invalidate_silent(engine, raised.state, silent_since + SILENCE_MS + HEARTBEAT_MS - 1)
    due = invalidate_silent(engine, raised.state, silent_since + SILENCE_MS + HEARTBEAT_MS)

    assert (early.events, early.changed) == ((), False)
    [invalidated] = due.events
    assert parsed(invalidated).event_type is EventType.ALARM_INVALIDATED
    assert invalidated["violationId"] == raised.events[0]["violationId"]
    assert due.changed is True
    assert not any(state.in_alarm for state in due.state.behaviors.values())


def test_a_silent_device_without_alarms_needs_no_write() -> None:
    [quiet] = run(profile(TCP), [reported(1, 0, tcp_ports=GOOD)])

    assert invalidate_silent(profile(TCP), quiet.state, at(0) + 10 * SILENCE_MS).changed is False


# --- stored state -----------------------------------------------------------------------------------------

def test_state_round_trips_through_its_item_with_decimal_numbers() -> None:
    [evaluation] = run(profile(TCP, AUTH), [*failures(7, 1), reported(3, 2, tcp_ports=BAD)])
    item = evaluation.state.to_item()
    item["version"] = 4
    stored = json.loads(json.dumps(item), parse_int=Decimal)

    loaded = DeviceState.from_item(stored)

    assert loaded.to_item() == item
    assert loaded.behaviors == evaluation.state.behaviors
    assert isinstance(loaded.behaviors["Auth"].window_sum, int)


def test_a_reloaded_window_is_a_lower_bound_never_a_full_sum() -> None:
    engine = profile(EngineBehavior("Alive", "aws:all-packets-out", "greater-than-equals", count=100,
                                    duration_seconds=600))
    [seen] = run(engine, [reported(1, 0, packets_out=60)])
    # Another process saw reports 2-3 (summing past 100) without writing, then stopped.
    reloaded = DeviceState.from_item(seen.state.to_item())

    after = run(engine, [reported(4, 10, packets_out=20)], [reported(5, 20, packets_out=200)], state=reloaded)

    # 0-10 cannot be judged from 60 (a lower bound): no datapoint, so no false alarm; 10-20 (20 seen
    # after a report the lost process may also have counted) is not judged either; from 20 on, complete.
    assert types(after) == []
    [later] = run(engine, [reported(6, 30, packets_out=0)], state=after[-1].state)
    assert types([later]) == []  # 20-30 summed 200
    [low] = run(engine, [reported(7, 40, packets_out=0)], state=later.state)
    assert types([low]) == ["in-alarm"]  # 30-40 summed 0


def test_a_reloaded_window_that_already_violates_a_bound_still_alarms() -> None:
    reloaded = DeviceState.from_item(run(profile(AUTH), failures(4, 1))[0].state.to_item())

    [evaluation] = run(profile(AUTH), failures(1, 2), state=reloaded)

    assert types([evaluation]) == ["in-alarm"]


def test_after_a_reload_windows_that_look_empty_are_not_zero_datapoints() -> None:
    engine = profile(EngineBehavior("Attempts", "aws:num-connection-attempts", "greater-than", count=0,
                                    duration_seconds=300))
    [seen] = run(engine, [event(ObservationKind.CONNECT, 1)])
    # The windows 5-20 may have had attempts a process saw without writing: they are not judged as 0.
    reloaded = DeviceState.from_item(seen.state.to_item())

    [evaluation] = run(engine, [event(ObservationKind.CONNECT, 21)], state=reloaded)

    assert types([evaluation]) == []
    [in_memory] = run(engine, [event(ObservationKind.CONNECT, 21)], state=seen.state)
    assert types([in_memory]) == ["in-alarm", "alarm-cleared"]

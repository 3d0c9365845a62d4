"""Properties of the evaluator over generated observation sequences."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.device_report import DeviceReport
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.evaluator import DeviceState, Evaluation, Observation, ObservationKind, evaluate

DEVICE = "dev-1"
T0 = 1_767_225_600_000
ALLOWED = (22, 443)
GOOD, BAD = (22,), (22, 4444)


def port_profile(to_alarm: int, to_clear: int) -> EngineProfile:
    return EngineProfile("fleetguard-engine", (), (EngineBehavior(
        "Tcp", "aws:listening-tcp-ports", "in-port-set", ports=ALLOWED,
        datapoints_to_alarm=to_alarm, datapoints_to_clear=to_clear),))


def reports(violating: list[bool]) -> list[Observation]:
    return [Observation(DEVICE, T0 + index * 300_000, ObservationKind.REPORT,
                        report=DeviceReport(index + 1, "1.0", tcp_ports=BAD if bad else GOOD))
            for index, bad in enumerate(violating)]


def expected_events(violating: list[bool], to_alarm: int, to_clear: int) -> list[tuple[int, str]]:
    """The documented rule, written plainly: N violating datapoints in a row raise, M normal ones clear."""
    events, in_alarm, streak = [], False, 0
    for index, bad in enumerate(violating):
        streak = streak + 1 if bad != in_alarm else 0
        if streak == (to_clear if in_alarm else to_alarm):
            in_alarm, streak = not in_alarm, 0
            events.append((index, "in-alarm" if in_alarm else "alarm-cleared"))
    return events


def event_list(evaluations: list[Evaluation]) -> list[tuple[int, str]]:
    return [((event["violationEventTime"] - T0) // 300_000, event["violationEventType"])
            for evaluation in evaluations for event in evaluation.events]


datapoints = st.lists(st.booleans(), max_size=40)
counts = st.integers(min_value=1, max_value=10)


@settings(max_examples=200, deadline=None)
@given(violating=datapoints, to_alarm=counts, to_clear=counts)
def test_alarms_follow_consecutive_datapoints_to_alarm_and_to_clear(
        violating: list[bool], to_alarm: int, to_clear: int) -> None:
    evaluation = evaluate(port_profile(to_alarm, to_clear), DeviceState(DEVICE), reports(violating))

    assert event_list([evaluation]) == expected_events(violating, to_alarm, to_clear)


@settings(max_examples=200, deadline=None)
@given(violating=datapoints, to_alarm=counts, to_clear=counts)
def test_events_alternate_in_alarm_and_cleared_under_one_violation_id(
        violating: list[bool], to_alarm: int, to_clear: int) -> None:
    evaluation = evaluate(port_profile(to_alarm, to_clear), DeviceState(DEVICE), reports(violating))

    kinds = [event["violationEventType"] for event in evaluation.events]
    assert kinds == ["in-alarm", "alarm-cleared"] * (len(kinds) // 2) + ["in-alarm"] * (len(kinds) % 2)
    ids = [event["violationId"] for event in evaluation.events]
    raised, cleared = ids[0::2], ids[1::2]
    assert cleared == raised[: len(cleared)]
    assert len(set(raised)) == len(raised)


MIXED_PROFILE = EngineProfile("fleetguard-engine", (), (
    EngineBehavior("Tcp", "aws:listening-tcp-ports", "in-port-set", ports=ALLOWED, datapoints_to_alarm=2),
    EngineBehavior("Auth", "aws:num-authorization-failures", "less-than", count=3, duration_seconds=300,
                   datapoints_to_clear=2),
    EngineBehavior("Out", "aws:all-bytes-out", "less-than-equals", count=5000, duration_seconds=600),
))


@st.composite
def observations(draw: st.DrawFn) -> list[Observation]:
    """Reports (report ids growing, as a device numbers them) and authorization failures in stream order,
    each with its record's sequence number."""
    steps = draw(st.lists(st.tuples(st.sampled_from(["report", "failure"]), st.integers(0, 200_000),
                                    st.booleans(), st.integers(0, 4000)), max_size=30))
    result, now = [], T0
    for sequence, (kind, gap_ms, bad, bytes_out) in enumerate(steps):
        now += gap_ms
        if kind == "report":
            report = DeviceReport(T0 // 1000 + sequence, "1.0", tcp_ports=BAD if bad else GOOD, bytes_out=bytes_out)
            result.append(Observation(DEVICE, now, ObservationKind.REPORT, report=report, sequence=sequence))
        else:
            result.append(Observation(DEVICE, now, ObservationKind.AUTH_FAILURE, sequence=sequence))
    return result


@settings(max_examples=150, deadline=None)
@given(batch=observations())
def test_redelivering_the_same_observations_changes_nothing(batch: list[Observation]) -> None:
    first = evaluate(MIXED_PROFILE, DeviceState(DEVICE), batch)

    again = evaluate(MIXED_PROFILE, first.state, batch)

    assert again.events == ()
    assert again.changed is False
    assert again.state.to_item() == first.state.to_item()


@settings(max_examples=150, deadline=None)
@given(batch=observations(), cuts=st.lists(st.integers(0, 30), max_size=5))
def test_how_the_stream_is_cut_into_batches_changes_no_event(batch: list[Observation], cuts: list[int]) -> None:
    whole = evaluate(MIXED_PROFILE, DeviceState(DEVICE), batch)
    state, events = DeviceState(DEVICE), list[dict[str, Any]]()
    bounds = [0, *sorted(cut for cut in cuts if cut <= len(batch)), len(batch)]
    for start, end in pairwise(bounds):
        evaluation = evaluate(MIXED_PROFILE, state, batch[start:end])
        state, events = evaluation.state, [*events, *evaluation.events]

    assert events == list(whole.events)
    # Only the coarse heartbeat may differ: it is refined whenever a batch writes anyway.
    assert {**state.to_item(), "lastSeenMs": 0} == {**whole.state.to_item(), "lastSeenMs": 0}


@settings(max_examples=150, deadline=None)
@given(batch=observations())
def test_restarting_from_the_last_write_changes_no_point_metric_event(batch: list[Observation]) -> None:
    """Persisting only when ``changed`` says so, a process that reloads its state from the last write goes
    on exactly as one that kept it in memory, for every metric without a window (windowed ones may skip
    the datapoint of an incomplete window, as the evaluator's notes say)."""
    uninterrupted = evaluate(MIXED_PROFILE, DeviceState(DEVICE), batch)
    stored, raised = DeviceState(DEVICE).to_item(), list[dict[str, Any]]()
    state = DeviceState(DEVICE)
    for index, observation in enumerate(batch):
        evaluation = evaluate(MIXED_PROFILE, state, [observation])
        raised.extend(evaluation.events)
        if evaluation.changed:
            stored = evaluation.state.to_item()
        # Every third observation the process restarts from the stored item.
        state = DeviceState.from_item(stored) if index % 3 == 2 else evaluation.state

    def point_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [event for event in events if event["behavior"]["name"] == "Tcp"]

    assert point_events(raised) == point_events(list(uninterrupted.events))

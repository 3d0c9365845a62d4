"""The Detect engine's sweep against moto: a device silent for two days has its alarms invalidated and
leaves the alarmed index; devices still reporting, and devices without an alarm, are left alone."""

from __future__ import annotations

from typing import Any

import pytest

from functions import aws_clients, engine_handler, engine_sweep
from functions.contract_engine import STATE_ALARMED
from functions.evaluator import HEARTBEAT_MS, SILENCE_MS
from functions.messages import EventType
from tests.functions.engine_support import (
    MINUTE,
    PORTS,
    PROFILE_NAME,
    T0,
    EngineAccount,
    kinesis_event,
    report_record,
    set_clock,
)

pytest_plugins = ("tests.functions.engine_support",)

SWEEP_AT = T0 + SILENCE_MS + HEARTBEAT_MS + 10 * MINUTE


def report(device: str, minutes: float, *, sequence: int, ports: tuple[int, ...], context: Any) -> None:
    record = report_record(device, sequence, minutes, sequence=sequence, tcp_ports=ports)
    assert engine_handler.handler(kinesis_event([record]), context) == {"batchItemFailures": []}


def test_a_silent_alarmed_device_is_invalidated_and_the_others_are_left_alone(
    engine_account: EngineAccount, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, call_log: Any
) -> None:
    report("silent", 0, sequence=1, ports=(4444,), context=lambda_context)
    report("quiet-but-normal", 0, sequence=2, ports=(22,), context=lambda_context)
    set_clock(monkeypatch, SWEEP_AT - 60 * MINUTE)
    report("still-alarmed", (SWEEP_AT - T0) / MINUTE - 60, sequence=3, ports=(4444,), context=lambda_context)
    engine_account.alerts()
    set_clock(monkeypatch, SWEEP_AT)
    call_log.watch(aws_clients.client("dynamodb"))

    result = engine_sweep.handler({}, lambda_context)

    assert result["candidates"] == 1
    assert result["invalidated"] == 1
    [alert] = engine_account.alerts()
    assert (alert["thingName"], alert["securityProfileName"], alert["violationEventType"]) == (
        "silent", PROFILE_NAME, EventType.ALARM_INVALIDATED.value)
    assert alert["behavior"]["name"] == PORTS.name
    assert "metricValue" not in alert
    silent = engine_account.item("silent")
    assert silent is not None
    assert STATE_ALARMED not in silent
    assert silent["behaviors"] == {}
    still = engine_account.item("still-alarmed")
    assert still is not None
    assert still["behaviors"][PORTS.name]["alarm"] is True
    # The sparse index: one page of alarmed keys, then only the matching item is read.
    assert call_log.calls[:2] == ["Scan", "BatchGetItem"]


def test_a_second_run_finds_nothing_more(
    engine_account: EngineAccount, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    report("silent", 0, sequence=1, ports=(4444,), context=lambda_context)
    engine_account.alerts()
    set_clock(monkeypatch, SWEEP_AT)
    engine_sweep.handler({}, lambda_context)

    again = engine_sweep.handler({}, lambda_context)

    assert again["candidates"] == 0
    assert len(engine_account.alerts()) == 1

"""Benchmark (not a test): can the fleetguard Detect engine keep up with a fleet, and what does its state cost?

1. Evaluation alone, state in memory: 100,000 device-side reports from 10,000 devices (one report per
   device every 5 minutes, 1% of devices with an unauthorized port or traffic burst) through
   ``evaluate``, one call per report (the worst case: no two reports of a device in one batch). Reports per
   second per process, for parsed reports and for the JSON text the stream delivers; state writes per
   report (``Evaluation.changed``); peak traced memory.
2. Steady-state writes: 100 devices reporting every 5 minutes for a day with nothing changing alarm state,
   so the only writes are each device's first sighting and the coarse last-seen heartbeat.
3. The whole stream handler (``functions.engine_handler.handler``: Kinesis records decoded, batched state
   reads, conditional writes, publication, Powertools batch response) with DynamoDB, SNS and SQS replaced
   by in-memory stand-ins that count requests: 100,000 reports over 10,000 devices in batches of 100
   records, after every device was first seen at some time in the previous 6 hours. Reports per second,
   DynamoDB requests and item reads/writes per report, peak traced memory; in steady state (no alarm
   changes), with 1% of devices alarming, and after a restart (an empty cache reading the table again).

    .venv/bin/python -m benchmarks.bench_engine [--reports 100000] [--devices 10000] [--no-write]

Prints Markdown tables and (unless --no-write) writes them into README.md between the engine benchmark
markers.
"""

from __future__ import annotations

import argparse
import base64
import functools
import ipaddress
import json
import logging
import operator
import os
import random
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.bench_response import machine_facts
from functions import engine_handler
from functions.contract_engine import STATE_DEVICE, EngineHandlerEnvironment
from functions.device_report import DeviceReport, parse_report
from functions.engine_behaviors import EngineBehavior, EngineProfile
from functions.engine_handler import EngineClients
from functions.engine_state import OUTBOX, VERSION, StateCache
from functions.evaluator import HEARTBEAT_MS, DeviceState, Observation, ObservationKind, evaluate
from tools.config_reference import replace_block

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_START = "<!-- bench-engine:start (written by `make bench`) -->"
README_END = "<!-- bench-engine:end -->"
T0 = 1_767_225_600_000
REPORT_INTERVAL_MS = 300_000
ANOMALOUS_SHARE = 0.01
SEED = 14
EVALUATION_TARGET_PER_S = 20_000
WRITES_PER_REPORT_TARGET = 0.05
DAY_MS = 24 * 3600 * 1000
PEERS = tuple(f"10.20.{subnet}.{host}" for subnet in range(4) for host in range(1, 51))
"""The fleet's back ends: 200 addresses its devices hold connections to."""
DAYS_PER_MONTH = 30.4
WRITE_PRICE_PER_MILLION = 0.625
"""USD per million DynamoDB on-demand write request units, us-east-1 (an item under 1 KB is one unit);
check the current price list for other regions."""

PROFILE = EngineProfile("fleetguard-engine", (), (
    EngineBehavior("AuthorizedListeningTcpPorts", "aws:listening-tcp-ports", "in-port-set", ports=(22, 53, 443)),
    EngineBehavior("AuthorizedListeningUdpPorts", "aws:listening-udp-ports", "in-port-set", ports=(53, 123)),
    EngineBehavior("EstablishedConnections", "aws:num-established-tcp-connections", "less-than-equals", count=20),
    EngineBehavior("KnownPeers", "aws:destination-ip-addresses", "in-cidr-set", cidrs=("10.0.0.0/8",)),
    EngineBehavior("BytesOut", "aws:all-bytes-out", "less-than-equals", count=5_000_000, duration_seconds=900,
                   datapoints_to_alarm=2),
    EngineBehavior("PacketsIn", "aws:all-packets-in", "less-than", count=100_000, duration_seconds=300),
))


def report_document(report_id: int, anomalous: bool, rng: random.Random) -> dict[str, Any]:
    """One report as a device publishes it (long names), with the stream's envelope fields."""
    tcp = [22, 443, 4444] if anomalous else [22, 443]
    peers = [f"{rng.choice(PEERS)}:{rng.randrange(32768, 61000)}" for _ in range(3)]
    return {
        "header": {"report_id": report_id, "version": "1.0"},
        "metrics": {
            "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": port} for port in tcp], "total": len(tcp)},
            "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 123}], "total": 1},
            "network_stats": {"bytes_in": rng.randrange(10**5), "bytes_out": 9_000_000 if anomalous else
                              rng.randrange(10**6), "packets_in": rng.randrange(1000), "packets_out": 900},
            "tcp_connections": {"established_connections": {
                "connections": [{"remote_addr": peer, "local_port": 50000 + index, "local_interface": "eth0"}
                                for index, peer in enumerate(peers)], "total": len(peers)}},
        },
        "fg_kind": "device-report",
    }


def fleet_stream(reports: int, devices: int) -> list[tuple[str, int, str]]:
    """(device, received ms, report JSON) in stream order: every device reports once per interval."""
    rng = random.Random(SEED)
    anomalous = set(rng.sample(range(devices), max(1, int(devices * ANOMALOUS_SHARE))))
    offsets = [rng.randrange(REPORT_INTERVAL_MS) for _ in range(devices)]
    stream = []
    for index in range(reports):
        round_number, device = divmod(index, devices)
        at_ms = T0 + round_number * REPORT_INTERVAL_MS + offsets[device]
        document = report_document(at_ms // 1000, device in anomalous and round_number >= 2, rng)
        stream.append((f"device-{device:06d}", at_ms, json.dumps(document)))
    stream.sort(key=lambda item: item[1])
    return stream


def run_evaluations(observations: Sequence[Observation]) -> tuple[float, int, int, dict[str, DeviceState]]:
    states: dict[str, DeviceState] = {}
    writes = events = 0
    started = time.perf_counter()
    for observation in observations:
        state = states.get(observation.device) or DeviceState(observation.device)
        evaluation = evaluate(PROFILE, state, (observation,))
        states[observation.device] = evaluation.state
        writes += evaluation.changed
        events += len(evaluation.events)
    return time.perf_counter() - started, writes, events, states


def bench_evaluation_alone(reports: int, devices: int) -> str:
    stream = fleet_stream(reports, devices)
    observations = [Observation(device, at_ms, ObservationKind.REPORT, report=parse_report(json.loads(text)))
                    for device, at_ms, text in stream]
    run_evaluations(observations[: min(2000, len(observations))])  # warm the compiled profile and caches
    wall, writes, events, states = run_evaluations(observations)

    started = time.perf_counter()
    parsed = [Observation(device, at_ms, ObservationKind.REPORT, report=parse_report(json.loads(text)))
              for device, at_ms, text in stream]
    parse_wall = time.perf_counter() - started
    tracemalloc.start()
    run_evaluations(parsed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    first_sightings = len(states)
    largest_item = max(len(json.dumps(state.to_item(), separators=(",", ":"))) for state in states.values())
    steady_writes = writes - first_sightings
    rate, full_rate = reports / wall, reports / (wall + parse_wall)
    met = "met" if rate >= EVALUATION_TARGET_PER_S else "NOT met"
    return "\n".join([
        f"#### 1. Evaluation alone, state in memory ({reports:,} reports over {devices:,} devices, "
        f"{len(PROFILE.behaviors)} behaviors, one call per report)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| reports/s per process, parsed reports | {rate:,.0f} |",
        f"| reports/s per process, JSON text to verdict | {full_rate:,.0f} |",
        f"| ViolationEvents raised | {events:,} |",
        f"| state writes per report, all | {writes / reports:.4f} |",
        f"| state writes per report, first sighting of each device excluded | {steady_writes / reports:.4f} |",
        f"| largest stored item, bytes of compact JSON (DynamoDB bills writes per KB) | {largest_item:,} |",
        f"| peak traced memory while evaluating ({devices:,} device states), MiB | {peak / 2**20:.1f} |",
        "",
        f"Target: at least {EVALUATION_TARGET_PER_S:,} parsed reports/s per process: {met}. "
        f"{ANOMALOUS_SHARE:.0%} of devices open TCP port 4444 and send 9 MB per report from their third "
        "report on; the other writes are first sightings.",
    ])


def bench_steady_state(devices: int = 100) -> str:
    reports_per_day = DAY_MS // REPORT_INTERVAL_MS
    rng = random.Random(SEED)
    writes = total = 0
    for device in range(devices):
        state = DeviceState(f"device-{device:06d}")
        offset = rng.randrange(REPORT_INTERVAL_MS)
        for index in range(reports_per_day):
            at_ms = T0 + offset + index * REPORT_INTERVAL_MS
            report = DeviceReport(at_ms // 1000, "1.0", tcp_ports=(22, 443), udp_ports=(123,), bytes_out=1000,
                                  packets_in=10, num_established=3,
                                  destination_ips=(ipaddress.ip_address("10.0.0.1"),))
            evaluation = evaluate(PROFILE, state, (Observation(state.device, at_ms, ObservationKind.REPORT,
                                                               report=report),))
            state, writes, total = evaluation.state, writes + evaluation.changed, total + 1
    per_report = writes / total
    per_device_month = writes / devices * DAYS_PER_MONTH
    cost_per_million_devices = per_device_month * WRITE_PRICE_PER_MILLION  # 10**6 devices x price per 10**6
    met = "met" if per_report <= WRITES_PER_REPORT_TARGET else "NOT met"
    return "\n".join([
        f"#### 2. Steady state: {devices} devices, one report per 5 minutes for a day, no alarm changes",
        "",
        "| reports | state writes | writes per report | heartbeat | target <= 0.05 | writes per device per month "
        "| state writes per month per million devices, USD |",
        "|---:|---:|---:|---|---|---:|---:|",
        f"| {total:,} | {writes:,} | {per_report:.4f} | every {HEARTBEAT_MS // 3_600_000} h | {met} "
        f"| {per_device_month:,.0f} | {cost_per_million_devices:,.0f} |",
        "",
        f"Writes are priced at {WRITE_PRICE_PER_MILLION} USD per million on-demand write request units "
        "(us-east-1; one unit per item under 1 KB). A device that changes no alarm costs one write per "
        "heartbeat (the first of the day is its first sighting here); reads (batched) are the handler's figure.",
    ])


# --- 3. the whole stream handler, AWS stubbed ----------------------------------------------------------


class _ConditionalCheckFailedError(Exception):
    pass


class _Exceptions:
    ConditionalCheckFailedException = _ConditionalCheckFailedError


@dataclass
class FakeDynamoDB:
    """The state table in memory, answering the requests the handler makes in DynamoDB's wire shapes."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    item_reads: int = 0
    item_writes: int = 0
    exceptions: type[_Exceptions] = _Exceptions

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - the API's name
        self.requests["BatchGetItem"] += 1
        (table, request), = RequestItems.items()
        found = [self.items[key[STATE_DEVICE]["S"]] for key in request["Keys"] if key[STATE_DEVICE]["S"] in self.items]
        self.item_reads += len(request["Keys"])
        return {"Responses": {table: found}, "UnprocessedKeys": {}}

    def get_item(self, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.requests["GetItem"] += 1
        self.item_reads += 1
        item = self.items.get(Key[STATE_DEVICE]["S"])
        return {"Item": item} if item else {}

    def put_item(self, Item: dict[str, Any], ConditionExpression: str, **request: Any) -> None:  # noqa: N803
        self.requests["PutItem"] += 1
        device = Item[STATE_DEVICE]["S"]
        current = self.items.get(device)
        if ConditionExpression.startswith("attribute_not_exists"):
            allowed = current is None
        else:
            expected = request["ExpressionAttributeValues"][":expected"]
            allowed = current is not None and current[VERSION] == expected
        if not allowed:
            raise _ConditionalCheckFailedError(device)
        self.items[device] = Item
        self.item_writes += 1

    def update_item(self, Key: dict[str, Any], ExpressionAttributeValues: dict[str, Any], **_: Any) -> None:  # noqa: N803
        self.requests["UpdateItem"] += 1
        current = self.items.get(Key[STATE_DEVICE]["S"])
        if current is None or current[VERSION] != ExpressionAttributeValues[":version"]:
            raise _ConditionalCheckFailedError(Key)
        current.pop(OUTBOX, None)
        self.item_writes += 1


@dataclass
class FakeTopicAndQueue:
    """SNS PublishBatch and SQS SendMessageBatch, accepted and counted."""

    published: int = 0
    dead_lettered: int = 0

    def publish_batch(self, PublishBatchRequestEntries: list[Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.published += len(PublishBatchRequestEntries)
        return {"Successful": [], "Failed": []}

    def send_message_batch(self, Entries: list[Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.dead_lettered += len(Entries)
        return {"Successful": [], "Failed": []}


@dataclass(frozen=True)
class _Context:
    function_name: str = "fleetguard-engine"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-engine"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/fleetguard-engine"
    log_stream_name: str = "bench"


HANDLER_BATCH = 100
"""Records per invocation: the Kinesis event source mapping's default batch size."""
READ_PRICE_PER_MILLION = 0.125
"""USD per million on-demand read request units, us-east-1; an eventually consistent read of an item up to
4 KB is half a unit."""
REPORTS_PER_DEVICE_MONTH = DAYS_PER_MONTH * DAY_MS / REPORT_INTERVAL_MS


Batch = tuple[dict[str, Any], int]
"""A Kinesis event and the receive time of its last record (the clock when it is handled)."""


def _kinesis_batches(stream: Sequence[tuple[str, int, str]], first_sequence: int) -> list[Batch]:
    records = []
    for offset, (device, _, text) in enumerate(stream):
        sequence_number = str(first_sequence + offset)
        records.append({"kinesis": {"partitionKey": device, "sequenceNumber": sequence_number,
                                    "data": base64.b64encode(text.encode()).decode()},
                        "eventSource": "aws:kinesis", "eventID": f"shardId-000000000000:{sequence_number}"})
    return [({"Records": records[start:start + HANDLER_BATCH]}, stream[min(start + HANDLER_BATCH, len(stream)) - 1][1])
            for start in range(0, len(records), HANDLER_BATCH)]


def _enveloped(device: int, at_ms: int, document: dict[str, Any]) -> tuple[str, int, str]:
    """The report with the envelope the Basic Ingest rule adds: thing name, client id, receive time."""
    name = f"device-{device:06d}"
    return name, at_ms, json.dumps(document | {"fg_device": name, "fg_client": name, "fg_received_ms": at_ms})


def _handler_stream(reports: int, devices: int, anomalous_share: float) -> tuple[list[Batch], list[Batch]]:
    """A first sighting of every device within the 6 hours before T0, then ``reports`` reports from T0."""
    rng = random.Random(SEED)
    anomalous = set(rng.sample(range(devices), int(devices * anomalous_share)))
    offsets = [rng.randrange(REPORT_INTERVAL_MS) for _ in range(devices)]
    warm_up = []
    for device in range(devices):
        at_ms = T0 - rng.randrange(1, HEARTBEAT_MS)
        warm_up.append(_enveloped(device, at_ms, report_document(at_ms // 1000, False, rng)))
    measured = []
    for index in range(reports):
        round_number, device = divmod(index, devices)
        at_ms = T0 + round_number * REPORT_INTERVAL_MS + offsets[device]
        measured.append(_enveloped(device, at_ms, report_document(at_ms // 1000, device in anomalous, rng)))
    warm_up.sort(key=lambda item: item[1])
    measured.sort(key=lambda item: item[1])
    return _kinesis_batches(warm_up, 10**20), _kinesis_batches(measured, 10**21)


def _run_handler(batches: Sequence[Batch]) -> tuple[float, int]:
    """Wall time and failed records of running the batches through the handler, the clock following the
    stream."""
    failed = 0
    context: Any = _Context()
    started = time.perf_counter()
    for event, now_ms in batches:
        engine_handler.CLOCK = functools.partial(operator.truediv, now_ms, 1000)
        failed += len(engine_handler.handler(event, context)["batchItemFailures"])
    return time.perf_counter() - started, failed


def _stubbed_clients(table: FakeDynamoDB, topic: FakeTopicAndQueue) -> EngineClients:
    return EngineClients(dynamodb=lambda: table, sns=lambda: topic, sqs=lambda: topic, iot=lambda: None)


def _handler_run(streams: tuple[list[Batch], list[Batch]], *, restart: bool,
                 ) -> tuple[FakeDynamoDB, FakeTopicAndQueue, float, int]:
    """First sightings, then the measured reports timed; the stand-ins (counting only the timed part), the
    wall time and the failed records."""
    warm_up, measured = streams
    table, topic = FakeDynamoDB(), FakeTopicAndQueue()
    engine_handler.CLIENTS = _stubbed_clients(table, topic)
    engine_handler.CACHE = StateCache()
    _run_handler(warm_up)
    if restart:
        engine_handler.CACHE = StateCache()
    table.requests.clear()
    table.item_reads = table.item_writes = 0
    wall, failed = _run_handler(measured)
    return table, topic, wall, failed


def bench_handler(reports: int, devices: int) -> str:
    os.environ.update(EngineHandlerEnvironment(
        "fleetguard-engine-state", "arn:aws:sns:us-east-1:123456789012:fleetguard-alerts",
        "https://sqs.us-east-1.amazonaws.com/123456789012/fleetguard-engine-dead-letters").to_environment())
    engine_handler.logger.setLevel(logging.WARNING)
    engine_handler.PROFILE = PROFILE
    rows = []
    day_devices = 200
    runs = (("steady state, no alarm changes", reports, devices, 0.0, False),
            (f"{ANOMALOUS_SHARE:.0%} of devices alarming", reports, devices, ANOMALOUS_SHARE, False),
            ("steady state after a restart (cache empty)", reports, devices, 0.0, True),
            (f"a day of steady state, {day_devices} devices", day_devices * DAY_MS // REPORT_INTERVAL_MS,
             day_devices, 0.0, False))
    for label, count, fleet, share, restart in runs:
        table, topic, wall, failed = _handler_run(_handler_stream(count, fleet, share), restart=restart)
        requests = sum(table.requests.values())
        reads, writes = table.item_reads / count, table.item_writes / count
        # Per device per month; times a million devices and divided by the per-million price, the same number.
        cost = REPORTS_PER_DEVICE_MONTH * (reads * 0.5 * READ_PRICE_PER_MILLION + writes * WRITE_PRICE_PER_MILLION)
        rows.append(f"| {label} | {count:,} | {count / wall:,.0f} | {requests / count:.4f} | {reads:.4f} "
                    f"| {writes:.4f} | {topic.published:,} | {failed} | {cost:,.0f} |")
    # Memory apart: tracing slows the run down several times. From the first sighting on, so the cached
    # states (what a process holds) are counted, and the in-memory table with them.
    streams = _handler_stream(reports, devices, 0.0)
    tracemalloc.start()
    _handler_run(streams, restart=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine_handler.CLIENTS, engine_handler.CACHE, engine_handler.PROFILE = EngineClients(), StateCache(), None
    engine_handler.CLOCK = time.time
    return "\n".join([
        f"#### 3. The whole stream handler, AWS stubbed ({reports:,} reports over {devices:,} devices, "
        f"batches of {HANDLER_BATCH} records, one process)",
        "",
        "| run | reports | reports/s | DynamoDB requests per report | item reads per report "
        "| item writes per report | events published | failed records "
        "| state cost per month per million devices at this rate, USD |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Peak traced memory of the steady-state run, {devices:,} devices' cached states and the in-memory table "
        f"included: {peak / 2**20:.1f} MiB.",
        "",
        "Every device was first seen at a random time in the 6 hours before the measured reports (so its "
        "heartbeat falls due at a random time too), by the same process except in the restart run. Item "
        "writes include the outbox clearing after each publication. The state cost is the measured reads (half "
        f"a unit each, {READ_PRICE_PER_MILLION} USD per million) and writes ({WRITE_PRICE_PER_MILLION} USD per "
        f"million) at one report per device every 5 minutes, {REPORTS_PER_DEVICE_MONTH:,.0f} a month, "
        "on-demand, us-east-1; storage (about 0.5 KB a device) is extra. The first three runs span under an "
        "hour, shorter than the 6-hour heartbeat, so they hold only the heartbeats falling due in that hour; "
        "the day's run is the rate a fleet pays (a refresh read per device per hour, a heartbeat write per 6 "
        "hours).",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not write {README.name}")
    args = parser.parse_args(argv)
    sections: list[Callable[[], str]] = [lambda: bench_evaluation_alone(args.reports, args.devices),
                                         bench_steady_state, lambda: bench_handler(args.reports, args.devices)]
    parts = [machine_facts(), "", "Command: `python -m benchmarks.bench_engine`"]
    for section in sections:
        parts += ["", section()]
        print(f"{parts[-1]}\n", flush=True)
    report = "\n".join(parts)
    if not args.no_write:
        text = README.read_text()
        if README_START in text:
            README.write_text(replace_block(text, README_START, README_END, report))
            print(f"\nwritten to {README.relative_to(REPO)}")
        else:
            print(f"\n{README.relative_to(REPO)} has no engine benchmark markers; not written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

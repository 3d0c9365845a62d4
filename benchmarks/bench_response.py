"""Benchmark (not a test): does the incident response hold at fleet scale?

1. Containing one device (``contain_thing``) against moto's server on 127.0.0.1: API calls per device
   and p50/p99 latency, first containment and repeated.
2. An alert storm of 10,000 in-alarm violations through the intake handler, in batches of 1,000 (the
   event source mapping's largest batch in the intake contract): AWS API calls by operation, incidents
   opened, wall time, peak traced memory; with Incident Manager on and off, and with storm handling
   off (threshold above the batch size) for comparison.
3. Cold import time of each Lambda handler module, in fresh interpreters.
4. The test suite's wall time.

moto implements neither Incident Manager nor StartDetectMitigationActionsTask, so those two clients
are botocore Stubbers (their request shape asserted, their responses queued); SNS is moto in-process.
Incident Manager returns one incident per clientToken, so "incidents opened" counts distinct tokens.
Intake logs are formatted as in Lambda and written to /dev/null.

    .venv/bin/python -m benchmarks.bench_response [--storm 10000] [--devices 200] [--skip-suite] [--no-write]

Prints Markdown tables and (unless --no-write) writes them with the machine facts into README.md,
between the benchmark markers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from functions.contract import EnvVar, IntakeEnvironment, create_notice_table_request
from harness.environment import environment_set
from harness.lambda_context import lambda_context
from settings.facts import IOT_LOG_GROUP
from tools.config_reference import replace_block

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_START = "<!-- bench:start (written by `make bench`) -->"
README_END = "<!-- bench:end -->"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PLAN_ARN = f"arn:aws:ssm-incidents::{ACCOUNT}:response-plan/fleetguard-device"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-responders"
NOTICE_TABLE = "fleetguard-intake-notices"
GROUP = "fleetguard-quarantine"
ACTION = "fleetguard-add-to-quarantine"
BATCH_SIZE = 1000
STORM_THRESHOLD = 50
HANDLER_MODULES = ("functions.intake", "functions.contain", "functions.release")
IMPORT_RUNS = 7
CONTAIN_CALL_TARGET = 3
TASK_CALL_TARGET_PER_10000 = 400
IMPORT_TARGET_MS = 300
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class CallCounter:
    """API calls made through the clients it watches, by operation (retries are not extra calls)."""

    calls: Counter[str] = field(default_factory=Counter)
    start_incident_tokens: set[str] = field(default_factory=set)

    def watch(self, *clients: Any) -> None:
        for client in clients:
            # before-parameter-build fires once per call for every handler, Stubber or not.
            client.meta.events.register("before-parameter-build.*.*", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "StartIncident":
            self.start_incident_tokens.add(params["clientToken"])


def set_env(values: dict[str, str]) -> None:
    os.environ.update(values)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- 1. containing one device against moto's server ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bench_contain(devices: int) -> str:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only this benchmark starts a server

    from functions.aws_clients import MAX_ATTEMPTS  # noqa: PLC0415
    from functions.containment import contain_thing  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "region_name": REGION,
            "config": Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}),
        }
        iot, iot_data = boto3.client("iot", **options), boto3.client("iot-data", **options)
        iot.create_thing_group(thingGroupName=GROUP)
        things = [f"bench-device-{index:04d}" for index in range(devices)]
        for thing in things:
            iot.create_thing(thingName=thing)
        rows = []
        for label in ("first containment", "already contained"):
            counter = CallCounter()
            counter.watch(iot, iot_data)
            latencies = []
            for thing in things:
                started = time.perf_counter()
                contain_thing(iot, iot_data, thing, group_name=GROUP, reason="benchmark")
                latencies.append((time.perf_counter() - started) * 1000)
            per_device = sum(counter.calls.values()) / devices
            by_operation = ", ".join(f"{name} {count / devices:g}" for name, count in sorted(counter.calls.items()))
            met = "met" if per_device <= CONTAIN_CALL_TARGET else "NOT met"
            rows.append(
                f"| {label} | {devices} | {per_device:g} ({by_operation}) | {percentile(latencies, 0.5):.1f} | "
                f"{percentile(latencies, 0.99):.1f} | {met} |"
            )
    finally:
        server.stop()
    return "\n".join([
        "### 1. Containing one device (contain_thing against moto's server on 127.0.0.1)",
        "",
        "| path | devices | API calls per device | p50 ms | p99 ms | target <= 3 calls |",
        "|---|---:|---|---:|---:|---|",
        *rows,
    ])


# --- 2. an alert storm through the intake -------------------------------------------------------------


def storm_batches(size: int) -> list[dict[str, Any]]:
    """``size`` in-alarm violations of one behavior, one device each, as SQS batches of SNS envelopes."""
    batches = []
    for start in range(0, size, BATCH_SIZE):
        records = []
        for index in range(start, min(size, start + BATCH_SIZE)):
            message = {
                "violationEventTime": 1573786800000 + index,
                "thingName": f"device-{index:05d}",
                "behavior": {
                    "criteria": {"comparisonOperator": "less-than", "value": {"count": 10}, "durationSeconds": 300,
                                 "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1},
                    "name": "MessagesPub",
                    "metric": "aws:num-messages-sent",
                },
                "violationEventType": "in-alarm",
                "metricValue": {"count": 54},
                "violationId": f"{index:032x}",
                "securityProfileName": "fleetguard-prod-rules",
            }
            envelope = {"Type": "Notification", "MessageId": f"sns-{index}", "Message": json.dumps(message),
                        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts"}
            records.append({
                "messageId": f"m-{index}", "receiptHandle": f"r-{index}", "body": json.dumps(envelope),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:fleetguard-intake",
                "awsRegion": REGION,
            })
        batches.append({"Records": records})
    return batches


@dataclass(frozen=True)
class Scenario:
    label: str
    incident_manager: bool
    threshold: int


def queue_stub_responses(scenario: Scenario, size: int, incidents: Stubber, mitigation: Stubber) -> None:
    """Responses for every call the scenario makes, each with the request shape it must have."""
    from functions.storm import DEVICES_LISTED_PER_BATCH, MAX_VIOLATIONS_PER_TASK  # noqa: PLC0415

    task = {"taskId": ANY, "target": {"violationIds": ANY}, "actions": [ACTION],
            "includeOnlyActiveViolations": False, "clientRequestToken": ANY}
    per_device_incident = {"responsePlanArn": PLAN_ARN, "clientToken": ANY, "title": ANY, "impact": ANY,
                           "relatedItems": ANY, "triggerDetails": ANY}
    for start in range(0, size, BATCH_SIZE):
        in_batch = min(BATCH_SIZE, size - start)
        storm = in_batch >= scenario.threshold
        if storm:
            for _ in range(-(-in_batch // MAX_VIOLATIONS_PER_TASK)):
                mitigation.add_response("start_detect_mitigation_actions_task", {"taskId": "t"}, task)
        if not scenario.incident_manager:
            continue
        arn = f"arn:aws:ssm-incidents::{ACCOUNT}:incident-record/fleetguard-device/"
        if not storm:
            for index in range(in_batch):
                incidents.add_response("start_incident", {"incidentRecordArn": f"{arn}d{start + index}"},
                                       per_device_incident)
            continue
        incidents.add_response("start_incident", {"incidentRecordArn": f"{arn}fleet"}, per_device_incident)
        for _ in range(min(DEVICES_LISTED_PER_BATCH, in_batch)):
            incidents.add_response(
                "update_related_items", {},
                {"incidentRecordArn": f"{arn}fleet", "clientToken": ANY, "relatedItemsUpdate": ANY},
            )
        incidents.add_response(
            "create_timeline_event", {"incidentRecordArn": f"{arn}fleet", "eventId": "e"},
            {"incidentRecordArn": f"{arn}fleet", "clientToken": ANY, "eventTime": ANY, "eventType": "Custom Event",
             "eventData": ANY},
        )


def run_storm(scenario: Scenario, batches: list[dict[str, Any]], size: int, *, traced: bool) -> dict[str, Any]:
    from moto import mock_aws  # noqa: PLC0415

    from functions import aws_clients, intake  # noqa: PLC0415

    env = IntakeEnvironment(
        quarantine_group_name=GROUP,
        incident_manager_enabled=scenario.incident_manager,
        response_plan_arn=PLAN_ARN if scenario.incident_manager else None,
        responders_topic_arn=TOPIC_ARN,
        impact_rules=json.dumps({"default": 3}),
        audit_routing=json.dumps({"incidentChecks": []}),
        iot_log_group=IOT_LOG_GROUP,
        storm_threshold=scenario.threshold,
        add_to_quarantine_action_name=ACTION,
        notice_ledger_table=NOTICE_TABLE,
    ).to_environment()
    with environment_set(env), mock_aws():
        aws_clients.client.cache_clear()
        sns = aws_clients.client("sns")
        sns.create_topic(Name="fleetguard-responders")
        aws_clients.client("dynamodb").create_table(**create_notice_table_request(NOTICE_TABLE))
        incidents_client = boto3.client("ssm-incidents", region_name=REGION)
        mitigation_client = boto3.client("iot", region_name=REGION)
        counter = CallCounter()
        counter.watch(sns, incidents_client, mitigation_client)
        intake.CLIENTS = intake.AwsClients(
            mitigation=lambda: mitigation_client, incidents=lambda: incidents_client, sns=lambda: sns
        )
        with Stubber(incidents_client) as incidents, Stubber(mitigation_client) as mitigation:
            queue_stub_responses(scenario, size, incidents, mitigation)
            if traced:
                tracemalloc.start()
            context = lambda_context("fleetguard-intake", region=REGION, account_id=ACCOUNT, memory_mb=512,
                                     log_stream="bench")
            failures = 0
            started = time.perf_counter()
            for batch in batches:
                failures += len(intake.handler(batch, context)["batchItemFailures"])
            wall = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1] if traced else 0
            if traced:
                tracemalloc.stop()
            incidents.assert_no_pending_responses()
            mitigation.assert_no_pending_responses()
        intake.CLIENTS = intake.AwsClients()
        aws_clients.client.cache_clear()
    if failures:
        raise RuntimeError(f"{scenario.label}: {failures} record(s) failed")
    return {"calls": counter.calls, "incidents": len(counter.start_incident_tokens), "wall": wall, "peak": peak}


def bench_storm(size: int) -> str:
    set_env({EnvVar.POWERTOOLS_SERVICE_NAME: "fleetguard-intake", EnvVar.POWERTOOLS_LOG_LEVEL: "INFO"})
    from functions import intake  # noqa: PLC0415

    handler = intake.logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - open for the rest of the process
    batches = storm_batches(size)
    scenarios = [
        Scenario("storm handling, Incident Manager on", True, STORM_THRESHOLD),
        Scenario("storm handling, Incident Manager off", False, STORM_THRESHOLD),
        Scenario("per-device path (threshold above the batch), Incident Manager on", True, BATCH_SIZE + 1),
    ]
    operations = ("StartDetectMitigationActionsTask", "StartIncident", "UpdateRelatedItems", "CreateTimelineEvent",
                  "Publish")
    rows = []
    verdicts = []
    for scenario in scenarios:
        timed = run_storm(scenario, batches, size, traced=False)
        traced = run_storm(scenario, batches, size, traced=True)
        calls = timed["calls"]
        counts = " | ".join(str(calls.get(name, 0)) for name in operations)
        rows.append(
            f"| {scenario.label} | {counts} | {sum(calls.values())} | {timed['incidents']} | {timed['wall']:.2f} | "
            f"{traced['peak'] / 2**20:.1f} |"
        )
        if scenario.threshold == STORM_THRESHOLD:
            task_budget = TASK_CALL_TARGET_PER_10000 * size / 10_000
            tasks_ok = calls.get("StartDetectMitigationActionsTask", 0) <= task_budget
            incidents_ok = timed["incidents"] <= (1 if scenario.incident_manager else 0)
            verdicts.append(f"{scenario.label}: {'met' if tasks_ok and incidents_ok else 'NOT met'}")
    return "\n".join([
        f"### 2. Alert storm: {size:,} in-alarm violations through the intake ({len(batches)} batches of "
        f"{BATCH_SIZE:,}, storm threshold {STORM_THRESHOLD})",
        "",
        "| scenario | " + " | ".join(operations) + " | total calls | incidents opened | wall s | peak MiB (traced) |",
        "|---|" + "---:|" * (len(operations) + 4),
        *rows,
        "",
        f"Target: at most {TASK_CALL_TARGET_PER_10000} mitigation-task calls per 10,000 devices and one incident. "
        + "; ".join(verdicts) + ". Incident Manager and StartDetectMitigationActionsTask are answered by "
        "botocore Stubbers and SNS by moto in-process, so wall time is the intake's own work without network "
        "latency; incidents opened = distinct StartIncident clientTokens.",
    ])


# --- 3. cold import -------------------------------------------------------------------------------------


def bench_imports() -> str:
    rows = []
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for module in HANDLER_MODULES:
        program = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
        # The first run compiles the module's bytecode; a deployment package should ship it compiled.
        samples = [
            float(subprocess.run([sys.executable, "-c", program], cwd=REPO, env=env, check=True,
                                 capture_output=True, text=True).stdout)
            for _ in range(IMPORT_RUNS + 1)
        ][1:]
        median = statistics.median(samples)
        met = "met" if median < IMPORT_TARGET_MS else "NOT met"
        rows.append(f"| {module} | {median:.0f} | {max(samples):.0f} | {met} |")
    return "\n".join([
        f"### 3. Cold import of each handler module (fresh interpreter, bytecode compiled, {IMPORT_RUNS} runs)",
        "",
        f"| module | median ms | max ms | target: median < {IMPORT_TARGET_MS} ms |",
        "|---|---:|---:|---|",
        *rows,
    ])


# --- 4. the test suite ----------------------------------------------------------------------------------


def bench_suite() -> str:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    summary = next((line for line in reversed(result.stdout.splitlines()) if line.strip()), "no output")
    return "\n".join([
        "### 4. Test suite",
        "",
        "| command | wall s | result |",
        "|---|---:|---|",
        f"| pytest -q | {wall:.1f} | {summary.strip('= ')} |",
    ])


# --- report ------------------------------------------------------------------------------------------------


def machine_facts() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    return (f"Machine: {cpu}, {os.cpu_count()} CPUs (nproc), Python {platform.python_version()} on "
            f"{platform.system()} {platform.release()}; run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--storm", type=int, default=10_000, help="in-alarm violations in the storm")
    parser.add_argument("--devices", type=int, default=200, help="devices contained one by one in benchmark 1")
    parser.add_argument("--skip-suite", action="store_true", help="do not time the test suite")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not write {README.name}")
    args = parser.parse_args(argv)
    set_env({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
    sections: list[Callable[[], str]] = [
        lambda: bench_contain(args.devices), lambda: bench_storm(args.storm), bench_imports,
    ]
    if not args.skip_suite:
        sections.append(bench_suite)
    parts = [machine_facts(), "", "Command: `python -m benchmarks.bench_response`"]
    for section in sections:
        parts += ["", section()]
        print(f"{parts[-1]}\n", flush=True)
    report = "\n".join(parts) + "\n"
    if not args.no_write:
        README.write_text(replace_block(README.read_text(), README_START, README_END, report.rstrip("\n")))
        print(f"\nwritten to {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

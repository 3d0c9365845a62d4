"""Benchmark (not a test): how fast the policy pack judges a large stack over gRPC.

Builds a synthetic 5,000-resource fleetguard stack (IoT and IAM policies, thing groups, security
profiles, topics, queues, keys, log groups, ... in the proportions a large deployment would have),
boots the pack as the engine does, configures it with the prod policy config (two policies at the
remediate level, so every resource also goes through Remediate, as the engine always does) and runs a
full preview: Remediate and Analyze per resource, then AnalyzeStack with all of them. Prints resources
per second and where the time went.

    .venv/bin/python -m benchmarks.bench_policies [--resources 5000] [--rounds 3] [--config none]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.analyzer import POLICY_CONFIG_DIR, AnalyzerResource, PolicyPackProcess, PreviewReport, urn_for
from tests.policies.stack_builders import (
    audit_configuration,
    compliant_stack,
    contact,
    device_policy,
    kms_key,
    log_group,
    quarantine_group,
    queue,
    resource,
    scheduled_audit,
    security_profile,
    topic,
    work_and_dead_letter_queues,
)

GOAL_PER_SECOND = 1000

DEAD_LETTER_ARN = "arn:aws:sqs:us-east-1:123456789012:fleetguard-events-dlq"
PUBLISH_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["sns:Publish"], "Resource": "arn:aws:sns:us-east-1:123456789012:fleetguard-alerts",
}]})


def work_queue(name: str) -> AnalyzerResource:
    return queue(name, redrivePolicy=json.dumps({"deadLetterTargetArn": DEAD_LETTER_ARN, "maxReceiveCount": 5}))


def role_policy(name: str) -> AnalyzerResource:
    return resource("aws:iam/rolePolicy:RolePolicy", name, {"role": f"{name}-role", "policy": PUBLISH_ONLY})


def component(name: str) -> AnalyzerResource:
    return resource("fleetguard:fleet:Fleet", name, {})


# What repeats in a large stack, one factory per kind (the name makes each copy unique).
TEMPLATES: tuple[Callable[[str], AnalyzerResource], ...] = (
    lambda name: device_policy(name=name),
    lambda name: quarantine_group(f"fleet-{name}"),
    security_profile,
    lambda name: topic(name=name),
    work_queue,
    lambda name: kms_key(description=name),
    lambda _name: log_group(),
    lambda name: scheduled_audit(name=name),
    lambda name: contact(name, "PERSONAL"),
    role_policy,
    component,
)


def synthetic_stack(size: int) -> list[AnalyzerResource]:
    """A compliant core (so every stack policy has real work) padded with copies of the templates."""
    core = [*compliant_stack(), audit_configuration(), *work_and_dead_letter_queues()]
    core = list({item.urn: item for item in core}.values())
    padding: list[AnalyzerResource] = []
    for index in range(size - len(core)):
        template = TEMPLATES[index % len(TEMPLATES)](f"bench-{index}")
        urn = urn_for("bench", "fleetguard", template.type, f"{template.name}-{index}")
        padding.append(dataclasses.replace(template, urn=urn, name=f"{template.name}-{index}"))
    return core + padding


def run(resources: Sequence[AnalyzerResource], rounds: int, config: Path | None) -> list[tuple[PreviewReport, float]]:
    """Each round's preview report and the CPU seconds the pack process spent on it."""
    with PolicyPackProcess() as pack:
        pack.configure(config)
        pack.configure_stack("bench", "fleetguard")
        pack.preview(resources[:200])  # warm up both processes
        rounds_done: list[tuple[PreviewReport, float]] = []
        for _ in range(rounds):
            before = pack.cpu_seconds()
            report = pack.preview(resources)
            rounds_done.append((report, pack.cpu_seconds() - before))
        return rounds_done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", type=Path, default=POLICY_CONFIG_DIR / "prod.json",
                        help="policy config file; 'none' for the pack defaults (all mandatory, no Remediate calls)")
    args = parser.parse_args(argv)
    config = None if str(args.config) == "none" else args.config
    resources = synthetic_stack(args.resources)
    measured = run(resources, args.rounds, config)
    reports = [report for report, _ in measured]
    pack_cpu = statistics.median(cpu for _, cpu in measured)
    totals = [sum(report.seconds.values()) for report in reports]
    median = statistics.median(totals)
    typical = reports[totals.index(sorted(totals)[len(totals) // 2])]
    phases = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in typical.seconds.items())
    print(f"{len(resources)} resources, config {config or 'pack defaults'}, {len(os.sched_getaffinity(0))} CPU(s), "
          f"{args.rounds} round(s); "
          f"{len(typical.diagnostics)} violation(s), {len(typical.remediations)} remediation(s)")
    print(f"median preview {median:.2f} s ({phases}): {len(resources) / median:,.0f} resources/s; "
          f"best {len(resources) / min(totals):,.0f} resources/s; goal {GOAL_PER_SECOND:,}/s")
    print(f"pack process CPU per preview (median): {pack_cpu:.2f} s, i.e. {len(resources) / pack_cpu:,.0f} "
          "resources per CPU-second of the pack alone (the rest of the wall time is the Python client that plays "
          "the engine, sharing the same cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

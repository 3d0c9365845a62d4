"""Benchmark (not a test): how fast the policy pack judges a large stack over gRPC, against its floor.

Builds a synthetic 5,000-resource stack that passes the pack (IoT and IAM policies, thing groups, security
profiles, topics, queues, keys, log groups, and a device team's topic rules, role aliases, provisioning
and job templates, OTA updates and CAs, in the proportions a large deployment would have),
boots the pack as the engine does and runs full previews: Remediate (when a policy is at the remediate
level) and Analyze per resource, then AnalyzeStack with all of them. Five packs judge the same stack:

1. fleetguard with the prod policy config (two policies at remediate, so every resource is remediated too);
2. fleetguard at its defaults (every policy mandatory, no Remediate calls);
3. the floor: a throwaway pack of as many resource and stack policies as fleetguard's, each doing nothing,
   so its time is pulumi-policy's and gRPC's alone (fleetguard over it is what the rules cost);
4. and 5. fleetguard and the floor with the decode-once prototype (``benchmarks/decode_once.py``).

Prints a Markdown table, the ratio to the floor and the pack process's CPU per resource, and (unless
--no-write) writes them into README.md and policies/README.md between the policy benchmark markers.

    .venv/bin/python -m benchmarks.bench_policies [--resources 5000] [--rounds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_response import machine_facts
from benchmarks.throwaway_packs import fleetguard_decode_once_pack, noop_pack
from harness.analyzer import (
    POLICY_CONFIG_DIR,
    POLICY_PACK_DIR,
    AnalyzerResource,
    PackInfo,
    PolicyPackProcess,
    PreviewReport,
    urn_for,
)
from tests.policies.stack_builders import (
    TAGS,
    audit_configuration,
    ca_certificate,
    changed,
    compliant_stack,
    contact,
    device_fleet_resources,
    device_policy,
    job_template,
    kms_key,
    log_group,
    ota_update,
    provisioning_template,
    quarantine_group,
    queue,
    resource,
    role_alias,
    scheduled_audit,
    security_profile,
    topic,
    topic_rule,
    work_and_dead_letter_queues,
)
from tools.config_reference import replace_block

FLOOR_RATIO_GOAL = 1.25
"""fleetguard's preview may take at most this much longer than a pack of as many no-op policies."""
REPO = Path(__file__).resolve().parent.parent
READMES = (REPO / "README.md", POLICY_PACK_DIR / "README.md")
README_START = "<!-- bench-policies:start (written by `make bench`) -->"
README_END = "<!-- bench-policies:end -->"

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
    # Thing groups of the fleet; the one quarantine group is in the core.
    lambda name: quarantine_group(f"fleet-{name}", marked=False),
    security_profile,
    lambda name: topic(name=name),
    work_queue,
    lambda name: kms_key(description=name),
    lambda _name: log_group(),
    lambda name: scheduled_audit(name=name),
    lambda name: contact(name, "PERSONAL"),
    role_policy,
    component,
    # What a device team's stack adds, so the rules for other teams' IoT resources have work too.
    lambda _name: topic_rule(),
    lambda _name: role_alias(),
    lambda _name: provisioning_template(),
    lambda _name: job_template(),
    lambda _name: ota_update(),
    lambda _name: ca_certificate(),
)


UNTAGGED_BY_BUILDERS = frozenset({"aws:iam/role:Role", "aws:lambda/function:Function"})


def synthetic_stack(size: int) -> list[AnalyzerResource]:
    """A compliant core (so every stack policy has real work) padded with copies of the templates."""
    # The device fleet builders leave roles and functions untagged; a real stack tags them.
    device_fleet = [changed(item, tags=dict(TAGS)) if item.type in UNTAGGED_BY_BUILDERS else item
                    for item in device_fleet_resources()]
    core = [*compliant_stack(), audit_configuration(), *work_and_dead_letter_queues(), *device_fleet]
    core = list({item.urn: item for item in core}.values())
    padding: list[AnalyzerResource] = []
    for index in range(size - len(core)):
        template = TEMPLATES[index % len(TEMPLATES)](f"bench-{index}")
        urn = urn_for("bench", "fleetguard", template.type, f"{template.name}-{index}")
        padding.append(dataclasses.replace(template, urn=urn, name=f"{template.name}-{index}"))
    return core + padding


@dataclass(frozen=True)
class Measurement:
    """One pack's preview of the stack, over several rounds."""

    label: str
    policies: str
    resources: int
    median_seconds: float
    best_seconds: float
    phases: str
    pack_cpu_seconds: float
    violations: int

    @property
    def per_second(self) -> float:
        return self.resources / self.median_seconds

    @property
    def cpu_ms_per_resource(self) -> float:
        return 1000 * self.pack_cpu_seconds / self.resources

    def row(self) -> str:
        return (f"| {self.label} | {self.policies} | {self.median_seconds:.2f} s | {self.per_second:,.0f}/s "
                f"(best {self.resources / self.best_seconds:,.0f}) | {self.phases} | {self.pack_cpu_seconds:.2f} s "
                f"({self.cpu_ms_per_resource:.2f} ms per resource) | {self.violations} |")


def run(resources: Sequence[AnalyzerResource], rounds: int, config: Path | None,
        pack_dir: Path = POLICY_PACK_DIR) -> tuple[PackInfo, list[tuple[PreviewReport, float]]]:
    """The pack's metadata, and each round's preview report with the CPU seconds the pack process spent on it."""
    with PolicyPackProcess(pack_dir) as pack:
        pack.configure(config)
        pack.configure_stack("bench", "fleetguard")
        pack.preview(resources[:200])  # warm up both processes
        rounds_done: list[tuple[PreviewReport, float]] = []
        for _ in range(rounds):
            before = pack.cpu_seconds()
            report = pack.preview(resources)
            rounds_done.append((report, pack.cpu_seconds() - before))
        return pack.info(), rounds_done


def policy_counts(info: PackInfo) -> tuple[int, int]:
    """Resource and stack policies of a pack."""
    kinds = [policy.policy_type for policy in info.policies]
    return kinds.count("resource"), kinds.count("stack")


def measure(label: str, resources: Sequence[AnalyzerResource], rounds: int, config: Path | None,
            pack_dir: Path = POLICY_PACK_DIR) -> tuple[Measurement, PackInfo]:
    info, measured = run(resources, rounds, config, pack_dir)
    reports = [report for report, _ in measured]
    totals = [sum(report.seconds.values()) for report in reports]
    typical = reports[totals.index(sorted(totals)[len(totals) // 2])]
    resource_policies, stack_policies = policy_counts(info)
    measurement = Measurement(
        label=label, policies=f"{resource_policies} resource + {stack_policies} stack", resources=len(resources),
        median_seconds=statistics.median(totals), best_seconds=min(totals),
        phases=", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in typical.seconds.items()),
        pack_cpu_seconds=statistics.median(cpu for _, cpu in measured), violations=len(typical.diagnostics),
    )
    print(measurement.row(), flush=True)
    return measurement, info


def verdict(ratio: float) -> str:
    return "met" if ratio <= FLOOR_RATIO_GOAL else "not met"


def report(measurements: dict[str, Measurement], rounds: int) -> str:
    ours, floor = measurements["ours"], measurements["floor"]
    fast_ours, fast_floor = measurements["ours-once"], measurements["floor-once"]
    wall_ratio = ours.median_seconds / floor.median_seconds
    cpu_ratio = ours.pack_cpu_seconds / floor.pack_cpu_seconds
    fast_wall_ratio = fast_ours.median_seconds / fast_floor.median_seconds
    lines = [
        machine_facts().replace("Machine", f"{ours.resources:,} resources, {rounds} round(s) each; machine", 1),
        "",
        "Command: `python -m benchmarks.bench_policies`",
        "",
        "| pack | policies | median preview | throughput | phases (median round) | pack process CPU per preview "
        "| violations |",
        "|---|---|---:|---:|---|---:|---:|",
        *(measurement.row() for measurement in measurements.values()),
        "",
        f"fleetguard over its floor (same policy counts, pack defaults): wall time {wall_ratio:.2f}x, pack CPU "
        f"{cpu_ratio:.2f}x ({ours.cpu_ms_per_resource - floor.cpu_ms_per_resource:.2f} ms of CPU per resource is "
        f"the rules'); goal at most {FLOOR_RATIO_GOAL:.2f}x: {verdict(wall_ratio)}.",
        "",
        f"With the SDK decoding each request once (prototype): fleetguard {fast_ours.median_seconds:.2f} s "
        f"({ours.median_seconds / fast_ours.median_seconds:.2f}x faster), floor {fast_floor.median_seconds:.2f} s "
        f"({floor.median_seconds / fast_floor.median_seconds:.2f}x faster); fleetguard over that floor "
        f"{fast_wall_ratio:.2f}x.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", type=Path, default=POLICY_CONFIG_DIR / "prod.json",
                        help="policy config of the first measurement (the others use the pack defaults)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write the READMEs")
    args = parser.parse_args(argv)
    resources = synthetic_stack(args.resources)
    measurements: dict[str, Measurement] = {}
    measurements["prod"], _ = measure(f"fleetguard, `{args.config.name}`", resources, args.rounds, args.config)
    # The comparisons run every pack at its defaults (every policy mandatory), so each gets the same calls.
    measurements["ours"], info = measure("fleetguard, pack defaults", resources, args.rounds, None)
    resource_policies, stack_policies = policy_counts(info)
    with tempfile.TemporaryDirectory(prefix="fleetguard-bench-") as scratch:
        floor = noop_pack(Path(scratch) / "floor", resource_policies, stack_policies)
        measurements["floor"], _ = measure("no-op floor", resources, args.rounds, None, floor)
        patched = fleetguard_decode_once_pack(Path(scratch) / "ours-once")
        measurements["ours-once"], _ = measure("fleetguard, decode-once prototype", resources, args.rounds, None,
                                               patched)
        floor_once = noop_pack(Path(scratch) / "floor-once", resource_policies, stack_policies, decode_once=True)
        measurements["floor-once"], _ = measure("no-op floor, decode-once prototype", resources, args.rounds, None,
                                                floor_once)
    if measurements["ours-once"].violations != measurements["ours"].violations:
        print("the decode-once prototype changed what fleetguard reports; its figures mean nothing", file=sys.stderr)
        return 1
    text = report(measurements, args.rounds)
    print(f"\n{text}")
    if not args.no_write:
        for readme in READMES:
            readme.write_text(replace_block(readme.read_text(), README_START, README_END, text))
            print(f"written to {readme.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

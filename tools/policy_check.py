"""``make policy-check STACK=<stack>``: judge a stack with the fleetguard policy pack, without the CLI.

``pulumi up --policy-pack policies`` runs the pack twice: over the preview, where every value a provider
computes is still unknown, and, when the preview has no mandatory violation, over the update, where every
value is known. This command does the same for a new stack: it runs the program under Pulumi mocks once
per phase (``harness.mockstack.Phase``), boots the pack for each phase as the engine does, sends every
registered resource through Remediate and Analyze and the whole stack through AnalyzeStack, and prints
each phase's violations the way the CLI would. It exits 1 when either phase has a mandatory violation
(2 when the policy config itself is invalid).

    python -m tools.policy_check --stack dev
    python -m tools.policy_check --stack dev --config policies/config/prod.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    AnalyzerResource,
    PolicyConfigError,
    PolicyPackProcess,
    PreviewReport,
    from_registrations,
    iter_lines,
    pack_version,
)
from harness.mockstack import Phase, run_stack

EXIT_OK = 0
EXIT_MANDATORY_VIOLATION = 1
EXIT_BAD_CONFIG = 2

# What the CLI prints before each run of ``pulumi up``.
PHASE_HEADINGS = {Phase.PREVIEW: "Previewing update", Phase.UPDATE: "Updating"}


@dataclass(frozen=True)
class PhaseReport:
    """The pack's verdict on one run of ``pulumi up``."""

    phase: Phase
    report: PreviewReport


def default_config(stack: str) -> Path | None:
    """``policies/config/<stack>.json`` when it exists: the file the stack's CI passes to the CLI."""
    candidate = POLICY_CONFIG_DIR / f"{stack}.json"
    return candidate if candidate.is_file() else None


def check_stack(
    stack: str,
    config: Path | None,
    packs: Mapping[Phase, PolicyPackProcess] | None = None,
    pack_python: str = sys.executable,
) -> tuple[list[PhaseReport], str]:
    """Both phases' reports, preview first, and the pack's label (``name@vX.Y.Z (local: policies)``). Boots
    a pack per phase with ``pack_python`` unless running ones are given (tests share one per phase)."""
    reports: list[PhaseReport] = []
    label = ""
    for phase in Phase:
        run = run_stack(stack, phase=phase)
        resources = from_registrations(run.resources)
        if packs is None:
            with PolicyPackProcess(python=pack_python, dry_run=phase.dry_run) as booted:
                report, label = _judge(booted, stack, run.project, resources, config)
        else:
            report, label = _judge(packs[phase], stack, run.project, resources, config)
        reports.append(PhaseReport(phase, report))
    return reports, label


def _judge(pack: PolicyPackProcess, stack: str, project: str, resources: list[AnalyzerResource],
           config: Path | None) -> tuple[PreviewReport, str]:
    pack.configure(config)
    pack.configure_stack(stack, project)
    label = f"{pack.info().name}@v{pack_version(pack.pack_dir)} (local: {pack.pack_dir.name})"
    return pack.preview(resources), label


def summary(report: PreviewReport, config: Path | None) -> str:
    mandatory = len(report.mandatory)
    return (
        f"{report.resource_count} resources analyzed with config {config or '(pack defaults: all mandatory)'}: "
        f"{len(report.diagnostics)} violation(s), {mandatory} mandatory, {len(report.remediations)} remediation(s)"
    )


def phase_lines(stack: str, reports: Sequence[PhaseReport], pack_label: str, config: Path | None) -> Iterator[str]:
    """Each phase under the heading the CLI gives it, its violations and a one-line summary."""
    for position, phase_report in enumerate(reports):
        yield f"{PHASE_HEADINGS[phase_report.phase]} ({stack}):"
        yield from iter_lines(phase_report.report, pack_label)
        yield summary(phase_report.report, config)
        stops_here = phase_report.report.mandatory and position + 1 < len(reports)
        if stops_here:
            yield "pulumi up stops here: the preview has mandatory violations (the next phase shows what it would find)"
        yield ""


def main(argv: Sequence[str] | None = None, packs: Mapping[Phase, PolicyPackProcess] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.policy_check", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--config", type=Path, default=None,
        help="--policy-pack-config file (default: policies/config/<stack>.json when it exists)",
    )
    parser.add_argument(
        "--pack-python", default=sys.executable,
        help="interpreter that runs the pack, e.g. policies/.venv/bin/python as the engine would (default: this one)",
    )
    args = parser.parse_args(argv)
    config: Path | None = args.config if args.config is not None else default_config(args.stack)
    if config is not None and not config.is_file():
        print(f"policy config file {config} does not exist", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        # The pack runs in its own directory: a relative interpreter path is relative to here.
        pack_python = str(Path(args.pack_python).absolute()) if os.sep in args.pack_python else args.pack_python
        reports, pack_label = check_stack(args.stack, config, packs, pack_python)
    except PolicyConfigError as error:
        print(f"policy config {config}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    for line in phase_lines(args.stack, reports, pack_label, config):
        print(line)
    return EXIT_MANDATORY_VIOLATION if any(item.report.mandatory for item in reports) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

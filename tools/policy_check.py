"""``make policy-check STACK=<stack>``: judge a stack with the fleetguard policy pack, without the CLI.

Runs the program for the stack under Pulumi mocks (as a preview), boots the policy pack, sends every
registered resource through Remediate and Analyze and the whole stack through AnalyzeStack, prints each
violation the way ``pulumi preview --policy-pack policies`` would, and exits 1 when a mandatory policy is
violated (2 when the policy config itself is invalid).

    python -m tools.policy_check --stack dev
    python -m tools.policy_check --stack dev --config policies/config/prod.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.analyzer_client import (
    POLICY_CONFIG_DIR,
    PolicyConfigError,
    PolicyPackProcess,
    PreviewReport,
    from_registrations,
    iter_lines,
    pack_version,
)
from tools.mockstack import RegisteredResource, run_stack

EXIT_OK = 0
EXIT_MANDATORY_VIOLATION = 1
EXIT_BAD_CONFIG = 2


def default_config(stack: str) -> Path | None:
    """``policies/config/<stack>.json`` when it exists: the file the stack's CI passes to the CLI."""
    candidate = POLICY_CONFIG_DIR / f"{stack}.json"
    return candidate if candidate.is_file() else None


def check_stack(
    stack: str, config: Path | None, pack: PolicyPackProcess | None = None, pack_python: str = sys.executable,
) -> tuple[PreviewReport, str]:
    """The preview report and the pack's label (``name@vX.Y.Z (local: policies)``). Boots the pack with
    ``pack_python`` unless a running one is given (tests share one per session)."""
    run = run_stack(stack, preview=True)
    if pack is None:
        with PolicyPackProcess(python=pack_python) as booted:
            return _judge(booted, stack, run.project, run.resources, config)
    return _judge(pack, stack, run.project, run.resources, config)


def _judge(pack: PolicyPackProcess, stack: str, project: str, resources: list[RegisteredResource],
           config: Path | None) -> tuple[PreviewReport, str]:
    pack.configure(config)
    pack.configure_stack(stack, project)
    label = f"{pack.info().name}@v{pack_version(pack.pack_dir)} (local: {pack.pack_dir.name})"
    return pack.preview(from_registrations(resources)), label


def summary(report: PreviewReport, config: Path | None) -> str:
    mandatory = len(report.mandatory)
    return (
        f"{report.resource_count} resources analyzed with config {config or '(pack defaults: all mandatory)'}: "
        f"{len(report.diagnostics)} violation(s), {mandatory} mandatory, {len(report.remediations)} remediation(s)"
    )


def main(argv: Sequence[str] | None = None, pack: PolicyPackProcess | None = None) -> int:
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
        report, pack_label = check_stack(args.stack, config, pack, pack_python)
    except PolicyConfigError as error:
        print(f"policy config {config}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    for line in iter_lines(report, pack_label):
        print(line)
    print(summary(report, config))
    return EXIT_MANDATORY_VIOLATION if report.mandatory else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

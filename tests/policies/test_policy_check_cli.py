"""``make policy-check``: the whole path (program under mocks, a pack per phase over gRPC), its output per
phase and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analyzer import POLICY_CONFIG_DIR, PolicyPackProcess
from harness.mockstack import Phase
from tools.policy_check import EXIT_BAD_CONFIG, EXIT_MANDATORY_VIOLATION, EXIT_OK, main

Packs = dict[Phase, PolicyPackProcess]


def phase_section(out: str, heading: str) -> list[str]:
    """The lines the command printed under one phase's heading, up to the blank line that ends it."""
    lines = out.splitlines()
    start = lines.index(heading)
    end = lines.index("", start)
    return lines[start + 1:end]


def test_the_dev_stack_passes_its_own_config_in_both_phases(packs: Packs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev"], packs) == EXIT_OK

    out = capsys.readouterr().out
    preview = phase_section(out, "Previewing update (dev):")
    update = phase_section(out, "Updating (dev):")
    assert "dev.json" in preview[-1]
    # The preview reports what it cannot verify yet, as advisories only; the update finds nothing.
    assert "0 mandatory" in preview[-1]
    assert update[-1].endswith("0 violation(s), 0 mandatory, 0 remediation(s)")


def test_the_prod_stack_passes_its_own_config_in_both_phases(packs: Packs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "prod"], packs) == EXIT_OK

    out = capsys.readouterr().out
    preview = phase_section(out, "Previewing update (prod):")
    assert any(line.strip().startswith("- [advisory]") for line in preview)
    assert not any("[mandatory]" in line for line in preview)
    assert phase_section(out, "Updating (prod):")[-1].endswith("0 violation(s), 0 mandatory, 0 remediation(s)")


def test_mandatory_violations_are_printed_like_the_cli_and_fail(
    packs: Packs, capsys: pytest.CaptureFixture[str],
) -> None:
    # Dev runs without ML Detect, which the prod config requires.
    prod_config = str(POLICY_CONFIG_DIR / "prod.json")
    assert main(["--stack", "dev", "--config", prod_config], packs) == EXIT_MANDATORY_VIOLATION

    out = capsys.readouterr().out
    for heading in ("Previewing update (dev):", "Updating (dev):"):
        lines = phase_section(out, heading)
        assert lines[:2] == ["Policies:", "    fleetguard@v0.1.0 (local: policies)"]
        header = lines.index("        - [mandatory]  [severity: medium]  detect-ml-profile-present  (stack)")
        assert lines[header + 1].strip().startswith("Where the environment requires it")
        assert "requires ML Detect" in lines[header + 2]
    assert "pulumi up stops here" in out


def test_a_resource_violation_names_the_resource_type_and_name(
    packs: Packs, capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--stack", "dev", "--config", str(POLICY_CONFIG_DIR / "prod.json")], packs)

    out = capsys.readouterr().out
    assert "  (aws:cloudwatch/logGroup:LogGroup: " in out  # dev keeps logs shorter than prod's 365 days


def test_an_invalid_config_file_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], packs: Packs,
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"all": "mandatory", "log-group-retention": {"minimumRetentionDays": -1}}))

    assert main(["--stack", "dev", "--config", str(config)], packs) == EXIT_BAD_CONFIG

    assert "log-group-retention: minimumRetentionDays" in capsys.readouterr().err


def test_a_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev", "--config", str(tmp_path / "nope.json")]) == EXIT_BAD_CONFIG

    assert "does not exist" in capsys.readouterr().err

"""``make policy-check``: the whole path (program under mocks, pack over gRPC) and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.analyzer_client import POLICY_CONFIG_DIR, PolicyPackProcess
from tools.policy_check import EXIT_BAD_CONFIG, EXIT_MANDATORY_VIOLATION, EXIT_OK, main


def test_the_dev_stack_passes_its_own_config(pack: PolicyPackProcess, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev"], pack) == EXIT_OK

    out = capsys.readouterr().out
    assert "with config" in out
    assert "dev.json" in out
    assert "0 violation(s), 0 mandatory" in out


def test_mandatory_violations_are_printed_like_a_preview_and_fail(
    pack: PolicyPackProcess, capsys: pytest.CaptureFixture[str],
) -> None:
    # Dev runs without ML Detect, which the prod config requires.
    prod_config = str(POLICY_CONFIG_DIR / "prod.json")
    assert main(["--stack", "dev", "--config", prod_config], pack) == EXIT_MANDATORY_VIOLATION

    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Policies:", "    fleetguard@v0.1.0 (local: policies)"]
    header = lines.index("        - [mandatory]  [severity: medium]  detect-ml-profile-present  (stack)")
    assert lines[header + 1].strip().startswith("Where the environment requires it")
    assert "requires ML Detect" in lines[header + 2]


def test_a_resource_violation_names_the_resource_type_and_name(
    pack: PolicyPackProcess, capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--stack", "dev", "--config", str(POLICY_CONFIG_DIR / "prod.json")], pack)

    out = capsys.readouterr().out
    assert "  (aws:cloudwatch/logGroup:LogGroup: " in out  # dev keeps logs shorter than prod's 365 days


def test_an_invalid_config_file_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pack: PolicyPackProcess,
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"all": "mandatory", "log-group-retention": {"minimumRetentionDays": -1}}))

    assert main(["--stack", "dev", "--config", str(config)], pack) == EXIT_BAD_CONFIG

    assert "log-group-retention: minimumRetentionDays" in capsys.readouterr().err


def test_a_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev", "--config", str(tmp_path / "nope.json")]) == EXIT_BAD_CONFIG

    assert "does not exist" in capsys.readouterr().err

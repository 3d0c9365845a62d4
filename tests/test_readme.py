"""README.md promises that must stay true."""

from __future__ import annotations

from tools.config_reference import render_into
from tools.mockstack import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_configuration_reference_matches_the_config_model() -> None:
    assert render_into(README) == README, "README configuration reference is stale: run `make config-reference`"


def test_newcomer_commands_come_first() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make drill" in first_block
    assert "make test" in first_block


def test_real_deployment_commands_are_documented() -> None:
    for command in ("pulumi login --local", "pulumi stack init dev", "pulumi up",
                    "pulumi preview --policy-pack policies --policy-pack-config"):
        assert command in README

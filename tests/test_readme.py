"""README.md promises that must stay true."""

from __future__ import annotations

import re

from harness.mockstack import REPO_ROOT, StackRun, run_stack
from tests.test_stack_outputs import SIDE_BY_SIDE
from tools.config_reference import render_into

README = (REPO_ROOT / "README.md").read_text()


def test_configuration_reference_matches_the_config_model() -> None:
    assert render_into(README) == README, (
        "README configuration reference or outputs table is stale: run `make config-reference`"
    )


def test_newcomer_commands_come_first() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make drill" in first_block
    assert "make test" in first_block


def test_real_deployment_commands_are_documented() -> None:
    for command in ("pulumi login --local", "pulumi stack init dev", "pulumi up",
                    "pulumi preview --policy-pack policies --policy-pack-config"):
        assert command in README


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_function_environment_variable_is_documented(dev_stack: StackRun, prod_stack: StackRun) -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section("Functions"), re.MULTILINE))
    engine_stack = run_stack("prod", SIDE_BY_SIDE)
    used = {
        variable
        for stack in (dev_stack, prod_stack, engine_stack)
        for function in stack.of_type("aws:lambda/function:Function")
        for variable in function.inputs["environment"]["variables"]
    }
    assert used, "no Lambda function registered"
    assert documented == used


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    named = set(re.findall(r"(?:`|^)make ([a-z-]+)", README, re.MULTILINE))
    assert named
    assert named <= targets, named - targets

"""Shared fixtures: the shipped dev and prod stacks run once per session under Pulumi mocks."""

from __future__ import annotations

import pytest

from tools.mockstack import StackRun, run_stack


@pytest.fixture(scope="session")
def dev_stack() -> StackRun:
    return run_stack("dev")


@pytest.fixture(scope="session")
def prod_stack() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def any_stack(request: pytest.FixtureRequest, dev_stack: StackRun, prod_stack: StackRun) -> StackRun:
    return dev_stack if request.param == "dev" else prod_stack

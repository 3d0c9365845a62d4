"""Shared fixtures: the shipped dev and prod stacks run once per session under Pulumi mocks; the
hypothesis profile for CI."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from harness.mockstack import StackRun, run_stack

# CI runs the property tests on a fixed seed, so a landing never fails on a newly drawn example; local runs
# keep exploring (and hypothesis replays any failure they find from its database).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def dev_stack() -> StackRun:
    return run_stack("dev")


@pytest.fixture(scope="session")
def prod_stack() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def any_stack(request: pytest.FixtureRequest, dev_stack: StackRun, prod_stack: StackRun) -> StackRun:
    return dev_stack if request.param == "dev" else prod_stack

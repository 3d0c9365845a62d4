"""Shared fixtures: the shipped dev and prod stacks run once per session under Pulumi mocks; the
hypothesis profile for CI."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import settings

from harness.mockstack import StackRun, load_stack_config, run_stack

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


def prod_ops_center_overrides(**ops_center: Any) -> dict[str, Any]:
    """Prod as an account without Incident Manager would run it: OpsCenter incidents with two escalation
    stages (a topic the stack creates, then an existing one), plus ``ops_center`` keys."""
    section = json.loads(load_stack_config("prod")["fleetguard:incidentResponse"])
    section["incidentManager"] = {"enabled": False}
    section["opsCenter"] = {
        "escalation": [
            {"name": "oncall", "minutes": 5, "notify": {"email": ["iot-oncall@example.com"], "sms": ["+15555550100"]}},
            {"name": "lead", "minutes": 15,
             "notify": {"topicArn": "arn:aws:sns:us-east-1:123456789012:security-leads"}},
        ],
        **ops_center,
    }
    return {"incidentResponse": section}


def prod_quarantine_without_tunnel() -> dict[str, Any]:
    """Prod's quarantine section with online forensics off: the tunnel is a runbook step, so a variant without
    Incident Manager and OpsCenter must turn it off."""
    section: dict[str, Any] = json.loads(load_stack_config("prod")["fleetguard:quarantine"])
    section["tunnel"] = {"enabled": False}
    return section


@pytest.fixture(scope="session")
def prod_ops_center_stack() -> StackRun:
    return run_stack("prod", prod_ops_center_overrides())

"""The example's two Lambda functions: the custom authorizer and the pre-provisioning hook."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from harness.mockstack import REPO_ROOT

LAMBDAS = REPO_ROOT / "examples" / "device_fleet" / "lambdas"
CONTEXT = SimpleNamespace(invoked_function_arn="arn:aws:lambda:eu-west-1:210987654321:function:authorizer")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"device_fleet_{name}", LAMBDAS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


authorizer = load("authorizer")
hook = load("pre_provisioning_hook")


def authorize(**event: Any) -> dict[str, Any]:
    result: dict[str, Any] = authorizer.handler(event, CONTEXT)
    return result


def test_a_signed_token_connects_as_its_thing_and_publishes_its_own_telemetry_only() -> None:
    result = authorize(token="pump-0042", signatureVerified=True)

    assert result["isAuthenticated"] is True
    assert result["principalId"] == "pump0042"
    [document] = [json.loads(text) for text in result["policyDocuments"]]
    granted = {(action, resource) for statement in document["Statement"] for action in statement["Action"]
               for resource in statement["Resource"]}
    assert ("iot:Connect", "arn:aws:iot:eu-west-1:210987654321:client/pump-0042") in granted
    assert ("iot:Publish", "arn:aws:iot:eu-west-1:210987654321:topic/fleet/pump-0042/telemetry") in granted
    assert all("pump-0042" in resource and "*" not in resource for _, resource in granted)


@pytest.mark.parametrize("event", [
    {"token": "pump-0042"},
    {"token": "pump-0042", "signatureVerified": False},
    {"token": "pump/#", "signatureVerified": True},
    {"token": "", "signatureVerified": True},
    {"signatureVerified": True},
])
def test_an_unverified_or_malformed_token_is_denied(event: dict[str, Any]) -> None:
    result = authorize(**event)

    assert result["isAuthenticated"] is False
    assert result["policyDocuments"] == []


@pytest.mark.parametrize(("parameters", "allowed"), [
    ({"SerialNumber": "AB12CD34"}, True),
    ({"SerialNumber": "ab12cd34"}, False),
    ({"SerialNumber": "AB12"}, False),
    ({"SerialNumber": "AB12CD34/../x"}, False),
    ({}, False),
    (None, False),
])
def test_the_hook_provisions_only_factory_serial_numbers(parameters: Any, allowed: bool) -> None:
    assert hook.handler({"parameters": parameters, "certificateId": "c0ffee"}, None) == {"allowProvisioning": allowed}

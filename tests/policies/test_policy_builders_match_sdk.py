"""The synthetic resources the rule tests use are real: every type token exists in the installed
pulumi-aws / pulumi-aws-native SDK and every input name is one of its wire (camelCase) property names.
A rule tested against a misspelled property would pass its tests and miss real stacks."""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from typing import Any

import pytest

from harness.analyzer import AnalyzerResource
from tests.policies.stack_builders import compliant_stack, device_fleet_resources, log_group
from tests.policies.test_policy_tagging import TAGGABLE


def sdk_file(type_token: str) -> Path:
    package, module, name = type_token.split(":")
    module = module.split("/")[0]
    if keyword.iskeyword(module):
        module += "_"  # pulumi_aws.lambda_
    root = "pulumi_aws" if package == "aws" else "pulumi_aws_native"
    spec = importlib.util.find_spec(root)
    assert spec is not None
    assert spec.origin is not None
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return Path(spec.origin).parent / module / f"{snake}.py"


def wire_names(path: Path) -> set[str]:
    """Property names as the engine sends them: explicit getter names, else the Python name itself."""
    source = path.read_text()
    named = set(re.findall(r'pulumi\.getter\(name="([A-Za-z0-9]+)"\)', source))
    plain = set(re.findall(r"@pulumi\.getter\n    def ([a-z0-9]+)\(self\)", source))
    return named | plain


# Map-typed inputs: their keys are data (tag keys, the "SNS" alert target), not property names.
MAP_PROPERTIES = frozenset({"tags", "alertTargets", "tokenSigningPublicKeys"})


def nested_keys(value: Any, *, keys_are_data: bool = False) -> set[str]:
    """Property names used below the top level of an input value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if not keys_are_data:
                found.add(key)
            found |= nested_keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= nested_keys(item)
    return found


@pytest.mark.parametrize("built", [*compliant_stack(), log_group(), *device_fleet_resources()],
                         ids=lambda item: f"{item.type}:{item.name}")
def test_builder_types_and_inputs_exist_in_the_sdk(built: AnalyzerResource) -> None:
    path = sdk_file(built.type)

    assert path.is_file(), f"no SDK module for {built.type}"
    assert f"'{built.type}'" in path.read_text()
    assert set(built.inputs) <= wire_names(path), set(built.inputs) - wire_names(path)
    nested: set[str] = set()
    for key, value in built.inputs.items():
        if key != "tags":
            nested |= nested_keys(value, keys_are_data=key in MAP_PROPERTIES)
    types_module = path.parent / "_inputs.py"
    known = wire_names(types_module) if types_module.is_file() else set()
    assert nested <= known, nested - known


@pytest.mark.parametrize("type_token", TAGGABLE)
def test_the_taggable_types_accept_tags(type_token: str) -> None:
    path = sdk_file(type_token)

    assert f"'{type_token}'" in path.read_text()
    assert "tags" in wire_names(path)

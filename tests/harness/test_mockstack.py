"""The mocked engine's two phases: a first preview knows only what the program passed in; the update knows
everything. These are the properties the policy pack's preview/update behaviour rests on."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown

from harness.mockstack import Phase, StackRun, run_stack


@pytest.fixture(scope="module")
def prod() -> dict[Phase, StackRun]:
    return {phase: run_stack("prod", phase=phase) for phase in Phase}


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_unknown(item) for item in value)
    return False


def test_both_phases_register_the_same_resources(prod: dict[Phase, StackRun]) -> None:
    # In the order the program happens to register them, which differs from run to run.
    assert sorted(item.urn for item in prod[Phase.PREVIEW].resources) == sorted(
        item.urn for item in prod[Phase.UPDATE].resources)


def test_at_preview_computed_outputs_and_ids_are_unknown(prod: dict[Phase, StackRun]) -> None:
    topic = prod[Phase.PREVIEW].by_name("fleetguard-prod-alerts-topic")

    assert isinstance(topic.outputs["arn"], Unknown)
    assert topic.id is None
    # What the program passed in stays known.
    assert topic.outputs["name"] == topic.inputs["name"]


def test_at_preview_inputs_built_from_computed_outputs_are_unknown(prod: dict[Phase, StackRun]) -> None:
    policy = prod[Phase.PREVIEW].by_name("fleetguard-prod-intake-queue-policy")

    # Output.json_dumps over an ARN: the whole document is one unknown, as the engine sends it.
    assert isinstance(policy.inputs["policy"], Unknown)


def test_the_update_knows_every_value(prod: dict[Phase, StackRun]) -> None:
    assert not [item.name for item in prod[Phase.UPDATE].resources if contains_unknown(item.inputs)]
    topic = prod[Phase.UPDATE].by_name("fleetguard-prod-alerts-topic")
    assert topic.outputs["arn"].startswith("arn:aws:sns:")
    assert topic.id


def test_values_built_only_from_data_sources_are_known_at_preview(prod: dict[Phase, StackRun]) -> None:
    # Data sources (the caller's account, the region, the partition) are read at preview too, so the alert
    # key's policy, built from them alone, is judged at preview.
    key = prod[Phase.PREVIEW].one("aws:kms/key:Key")

    assert isinstance(key.inputs["policy"], str)
    assert "arn:aws:iam::123456789012:root" in key.inputs["policy"]
    assert not prod[Phase.PREVIEW].outputs["alertTopicArn"]

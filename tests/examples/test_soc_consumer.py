"""The example consumer reads fleetguard's outputs through a StackReference, under mocks."""

from __future__ import annotations

import ast

import pytest

import stack_outputs
from harness.mockstack import REPO_ROOT, StackRun, run_stack

CONSUMER = REPO_ROOT / "examples" / "soc_consumer"


def outputs_read_by_consumer() -> set[str]:
    tree = ast.parse((CONSUMER / "__main__.py").read_text())
    return {
        str(node.args[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"require_output", "get_output"}
        and isinstance(node.args[0], ast.Constant)
    }


def run_consumer(outputs: dict[str, object]) -> StackRun:
    return run_stack("example", root=CONSUMER, project="fleetguard-soc-consumer",
                     stack_references={"acme/fleetguard/prod": outputs})


def test_consumer_reads_only_published_output_names() -> None:
    published = set(stack_outputs.CONTRACT)
    read = outputs_read_by_consumer()
    assert read
    assert read <= published


def test_consumer_subscribes_the_siem_to_the_prod_responders_topic(prod_stack: StackRun) -> None:
    run = run_consumer(prod_stack.outputs)
    subscription = run.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["topic"] == prod_stack.outputs[stack_outputs.RESPONDERS_TOPIC_ARN]
    assert subscription.inputs["protocol"] == "https"
    assert run.outputs["subscribedTopicArn"] == prod_stack.outputs[stack_outputs.RESPONDERS_TOPIC_ARN]


def test_consumer_fails_when_an_output_disappears(prod_stack: StackRun) -> None:
    renamed = {("respondersTopic" if k == stack_outputs.RESPONDERS_TOPIC_ARN else k): v
               for k, v in prod_stack.outputs.items()}
    with pytest.raises(Exception, match="respondersTopicArn"):
        run_consumer(renamed)

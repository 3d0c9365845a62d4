"""What the dev and prod stacks register, checked against AWS's own schemas and API models.

Mocks accept any input; AWS does not. Every aws-native resource must satisfy its CloudFormation
resource schema, and every IAM/IoT policy document may name only real actions and no wildcards, each
granted on every resource type the Service Authorization Reference authorises it against.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.mockstack import StackRun, run_stack
from tests.conftest import prod_ops_center_overrides
from tests.support.aws_actions import unknown_actions, wildcard_actions
from tests.support.aws_schemas import DEFAULT_REGION, unwrap_secrets, validate_native_resource
from tests.support.iam_reference import authorisation_gaps, reference_version
from tests.test_stack_outputs import ALL_OFF, SIDE_BY_SIDE

# Pulumi type -> input properties that hold one policy document (JSON text in the classic provider).
POLICY_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:iot/policy:Policy": ("policy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:kms/key:Key": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
}


def stack_region(run: StackRun) -> str:
    return run.config.get("aws-native:region") or run.config.get("aws:region") or DEFAULT_REGION


def policy_documents(run: StackRun) -> Iterator[tuple[str, Any]]:
    """(where, document) for every policy document the stack writes."""
    for resource in run.resources:
        inputs = unwrap_secrets(resource.inputs)
        for key in POLICY_INPUTS.get(resource.type, ()):
            if key in inputs:
                yield f"{resource.type} {resource.name} {key}", inputs[key]
        if resource.type == "aws:iam/role:Role":
            for index, inline in enumerate(inputs.get("inlinePolicies") or []):
                if inline.get("policy"):
                    yield f"{resource.type} {resource.name} inlinePolicies[{index}]", inline["policy"]


def test_every_aws_native_resource_matches_its_cloudformation_schema(any_stack: StackRun) -> None:
    native = [resource for resource in any_stack.resources if resource.type.startswith("aws-native:")]
    assert native, f"{any_stack.stack} registers no aws-native resources; nothing was checked"

    findings = [
        f"{resource.name}: {finding}"
        for resource in native
        for finding in validate_native_resource(resource.type, resource.inputs, stack_region(any_stack))
    ]

    assert findings == []


def test_every_policy_document_names_only_real_actions_and_no_wildcards(any_stack: StackRun) -> None:
    documents = list(policy_documents(any_stack))
    assert documents, f"{any_stack.stack} writes no policy documents; nothing was checked"

    findings = [
        f"{where}: {finding}"
        for where, document in documents
        for finding in [*unknown_actions(document), *wildcard_actions(document)]
    ]

    assert findings == []


@pytest.fixture(scope="module")
def all_off_stack() -> StackRun:
    return run_stack("prod", ALL_OFF)


@pytest.fixture(scope="module")
def ops_center_chat_stack() -> StackRun:
    """Prod without Incident Manager, with a Slack channel: every OpsCenter resource the stack can declare."""
    return run_stack("prod", prod_ops_center_overrides(chat={
        "enabled": True, "slack": {"workspaceId": "T07EA123LEP", "channelId": "C07EZ1ABC23"},
    }))


@pytest.fixture(scope="module")
def engine_stack() -> StackRun:
    return run_stack("prod", SIDE_BY_SIDE)


@pytest.fixture(params=["dev", "prod", "all-off", "ops-center", "engine"])
def every_variant(request: pytest.FixtureRequest) -> StackRun:
    fixture = {"dev": "dev_stack", "prod": "prod_stack", "all-off": "all_off_stack",
               "ops-center": "ops_center_chat_stack", "engine": "engine_stack"}[request.param]
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def test_the_engine_variant_names_only_real_actions_and_no_wildcards(engine_stack: StackRun) -> None:
    findings = [
        f"{where}: {finding}"
        for where, document in policy_documents(engine_stack)
        for finding in [*unknown_actions(document), *wildcard_actions(document)]
    ]
    assert findings == []


def test_every_statement_grants_its_actions_on_each_resource_type_aws_checks(every_variant: StackRun) -> None:
    # A statement that misses a required resource type deploys fine and is denied at run time: the
    # containment runbook and the storm path depend on these grants.
    documents = list(policy_documents(every_variant))
    assert documents, f"{every_variant.stack} writes no policy documents; nothing was checked"

    findings = [f"{where}: {finding}" for where, document in documents for finding in authorisation_gaps(document)]

    assert not findings, f"Service Authorization Reference {reference_version()}:\n" + "\n".join(findings)


def test_every_allow_on_every_resource_is_held_to_a_condition(every_variant: StackRun) -> None:
    # "*" is written only for actions that support no resource type; a condition (the stack's region, or
    # the service's own keys such as OpenTunnel's thing group) is then what keeps the grant narrow.
    unbounded = [
        f"{where}: {sorted(entry['Action']) if isinstance(entry['Action'], list) else entry['Action']}"
        for where, document in policy_documents(every_variant)
        if not where.endswith("assumeRolePolicy")
        for entry in (json.loads(document) if isinstance(document, str) else document)["Statement"]
        if entry.get("Effect") == "Allow" and entry.get("Resource") in ("*", ["*"]) and not entry.get("Condition")
        and not str(entry.get("Principal", "")).startswith("{")
    ]
    assert unbounded == []

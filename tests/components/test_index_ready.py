"""The ``IndexReady`` dynamic provider: what create, diff, update and delete do against a stubbed IoT
client, and that the provider survives the trip through the stack state Pulumi gives it."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from pulumi.dynamic.dynamic import serialize_provider

from components.index_ready import IndexReadyProvider
from components.index_wait import IndexWaitError
from harness.mockstack import REPO_ROOT

REGION = "eu-west-1"
PROPS: dict[str, Any] = {
    "indexName": "AWS_Things",
    "region": REGION,
    "timeoutSeconds": 1800.0,  # numbers reach a dynamic provider as floats
    "indexingFingerprint": "1818cb3d9fb8b7a3",
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, list[str], IndexReadyProvider]]:
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    regions: list[str] = []

    def factory(region: str) -> Any:
        regions.append(region)
        return client

    with Stubber(client) as stubber:
        yield stubber, regions, IndexReadyProvider(client_factory=factory)
        stubber.assert_no_pending_responses()


def index_is(stubber: Stubber, status: str) -> None:
    stubber.add_response("describe_index", {"indexName": "AWS_Things", "indexStatus": status},
                         {"indexName": "AWS_Things"})


def test_create_returns_once_the_index_is_active_in_the_given_region(
    stubbed: tuple[Stubber, list[str], IndexReadyProvider],
) -> None:
    stubber, regions, provider = stubbed
    index_is(stubber, "ACTIVE")
    result = provider.create(dict(PROPS))
    assert regions == [REGION]
    assert result.id == f"{REGION}/AWS_Things"
    assert result.outs == {**PROPS, "indexStatus": "ACTIVE"}


def test_create_fails_the_deploy_when_the_index_is_not_ready_in_time(
    stubbed: tuple[Stubber, list[str], IndexReadyProvider],
) -> None:
    stubber, _, provider = stubbed
    index_is(stubber, "BUILDING")
    with pytest.raises(IndexWaitError, match=r"AWS_Things in eu-west-1 is BUILDING after waiting 0 s"):
        provider.create({**PROPS, "timeoutSeconds": 0.0})


@pytest.mark.parametrize(("change", "rewait"), [
    ({}, False),
    ({"indexingFingerprint": "0000000000000000"}, True),
    ({"region": "us-east-1"}, True),
    ({"indexName": "AWS_ThingGroups"}, True),
    ({"timeoutSeconds": 3600.0}, False),
])
def test_diff_waits_again_only_when_the_index_may_be_rebuilding(change: dict[str, Any], rewait: bool) -> None:
    olds = {**PROPS, "indexStatus": "ACTIVE", "__provider": "serialised"}
    diff = IndexReadyProvider().diff(f"{REGION}/AWS_Things", olds, {**PROPS, **change, "__provider": "serialised"})
    assert diff.changes is rewait
    assert diff.replaces == []


def test_update_waits_for_the_rebuilt_index(stubbed: tuple[Stubber, list[str], IndexReadyProvider]) -> None:
    stubber, _, provider = stubbed
    index_is(stubber, "ACTIVE")
    news = {**PROPS, "indexingFingerprint": "0000000000000000"}
    result = provider.update(f"{REGION}/AWS_Things", {**PROPS, "indexStatus": "ACTIVE"}, news)
    assert result.outs == {**news, "indexStatus": "ACTIVE"}


def test_delete_calls_nothing() -> None:
    def no_client(region: str) -> Any:
        raise AssertionError(f"delete must not call AWS ({region})")

    IndexReadyProvider(client_factory=no_client).delete(f"{REGION}/AWS_Things", {**PROPS, "indexStatus": "ACTIVE"})


@pytest.mark.slow
def test_the_stored_provider_loads_in_a_fresh_interpreter_without_registering_anything() -> None:
    # The engine's dynamic provider host runs in the project directory and unpickles the provider from the
    # state; a client or a resource created at import time would break that.
    serialised = serialize_provider(IndexReadyProvider())
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "print(type(provider).__module__, type(provider).__name__, vars(provider))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], input=serialised, capture_output=True, text=True, cwd=REPO_ROOT,
        check=True, timeout=120,
    )
    assert loaded.stdout.strip() == "components.index_ready IndexReadyProvider {'_client_factory': None}"
    assert b"botocore" not in base64.b64decode(serialised)

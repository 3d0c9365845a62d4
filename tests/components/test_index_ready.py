"""The ``IndexReady`` dynamic provider: what create, diff, update and delete do against a stubbed IoT
client, and that the provider survives the trip through the stack state Pulumi gives it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from components.index_ready import IndexReadyProvider
from components.index_wait import IndexWaitError
from tests.components.dynamic_support import REGION, loaded_from_state, stubbed_provider

PROPS: dict[str, Any] = {
    "indexName": "AWS_Things",
    "region": REGION,
    "timeoutSeconds": 1800.0,  # numbers reach a dynamic provider as floats
    "indexingFingerprint": "1818cb3d9fb8b7a3",
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, list[str], IndexReadyProvider]]:
    yield from stubbed_provider(lambda factory: IndexReadyProvider(client_factory=factory))


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
    assert loaded_from_state(IndexReadyProvider()) == (
        "components.index_ready IndexReadyProvider {'_client_factory': None}")

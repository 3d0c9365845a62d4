"""Waiting for the fleet index, against a stubbed IoT client: DescribeIndex answers as AWS would while
the index builds, and the clock only moves when the wait sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from botocore.stub import Stubber  # type: ignore[import-untyped]

from components.index_wait import IndexWaitError, wait_for_index
from settings.fleet import INDEX_READY_TIMEOUT_KEY

INDEX = "AWS_Things"
REGION = "eu-west-1"


class FakeTime:
    """A clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def iot() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def index_is(stubber: Stubber, status: str) -> None:
    stubber.add_response(
        "describe_index", {"indexName": INDEX, "indexStatus": status, "schema": "REGISTRY"}, {"indexName": INDEX}
    )


def test_a_building_index_is_polled_until_active(iot: tuple[object, Stubber]) -> None:
    client, stubber = iot
    for status in ("BUILDING", "BUILDING", "REBUILDING", "ACTIVE"):
        index_is(stubber, status)
    time = FakeTime()
    status = wait_for_index(client, INDEX, timeout_seconds=300, poll_seconds=15, sleep=time.sleep, clock=time.clock)
    assert status == "ACTIVE"
    assert time.sleeps == [15, 15, 15]


def test_an_active_index_costs_one_call_and_no_wait(iot: tuple[object, Stubber]) -> None:
    client, stubber = iot
    index_is(stubber, "ACTIVE")
    time = FakeTime()
    assert wait_for_index(client, INDEX, timeout_seconds=60, poll_seconds=15, sleep=time.sleep, clock=time.clock)
    assert time.sleeps == []


def test_an_index_that_never_gets_ready_fails_naming_index_status_and_waited_time(
    iot: tuple[object, Stubber],
) -> None:
    client, stubber = iot
    # 60 s at a 25 s poll: checks at 0, 25, 50 and (a last, shortened sleep) 60.
    for _ in range(4):
        index_is(stubber, "BUILDING")
    time = FakeTime()
    with pytest.raises(IndexWaitError) as caught:
        wait_for_index(client, INDEX, timeout_seconds=60, poll_seconds=25, sleep=time.sleep, clock=time.clock)
    assert time.sleeps == [25, 25, 10]
    error = caught.value
    assert (error.index_name, error.region, error.status, error.waited_seconds) == (INDEX, REGION, "BUILDING", 60)
    message = str(error)
    assert f"fleet index {INDEX} in {REGION} is BUILDING after waiting 60 s" in message
    assert INDEX_READY_TIMEOUT_KEY in message


def test_rebuilding_is_not_ready(iot: tuple[object, Stubber]) -> None:
    client, stubber = iot
    index_is(stubber, "REBUILDING")
    index_is(stubber, "REBUILDING")
    time = FakeTime()
    with pytest.raises(IndexWaitError, match="is REBUILDING after waiting 30 s"):
        wait_for_index(client, INDEX, timeout_seconds=30, poll_seconds=30, sleep=time.sleep, clock=time.clock)


def test_indexing_switched_off_is_a_clear_error_not_a_wait(iot: tuple[object, Stubber]) -> None:
    client, stubber = iot
    stubber.add_client_error(
        "describe_index", "ResourceNotFoundException", "Index AWS_Things not found", 404, {"indexName": INDEX}
    )
    time = FakeTime()
    with pytest.raises(IndexWaitError) as caught:
        wait_for_index(client, INDEX, timeout_seconds=600, poll_seconds=15, sleep=time.sleep, clock=time.clock)
    assert time.sleeps == []
    assert caught.value.status == "missing"
    assert "fleetguard:fleet.indexing.manage" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)


def test_other_errors_are_not_disguised(iot: tuple[object, Stubber]) -> None:
    client, stubber = iot
    stubber.add_client_error("describe_index", "UnauthorizedException", "not allowed", 401, {"indexName": INDEX})
    time = FakeTime()
    with pytest.raises(ClientError, match="UnauthorizedException"):
        wait_for_index(client, INDEX, timeout_seconds=600, poll_seconds=15, sleep=time.sleep, clock=time.clock)

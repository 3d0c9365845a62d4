"""The Detect engine's state table on a stubbed DynamoDB client (every request's parameters asserted):
batched reads with unprocessed keys retried, conditional writes, the outbox, items that read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from functions.contract_engine import STATE_ALARMED, STATE_DEVICE, STATE_EXPIRES_AT
from functions.engine_state import (
    BATCH_GET_KEYS,
    OUTBOX,
    READ_ATTEMPTS,
    RETENTION_MS,
    StateCache,
    StateTable,
    Stored,
    deserialize_item,
    serialize_item,
    stored_from_item,
)
from functions.evaluator import BehaviorState, DeviceState

TABLE = "fleetguard-engine-state"
NOW = 1_795_165_200_000


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[StateTable, Stubber]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield StateTable(client, TABLE, sleep=lambda _: None), stubber
        stubber.assert_no_pending_responses()


def key(device: str) -> dict[str, Any]:
    return {STATE_DEVICE: {"S": device}}


def alarmed_state(device: str = "dev-1", version: int = 3) -> DeviceState:
    return DeviceState(device, last_report_id=7, last_seen_ms=NOW, groups=("sensors",), groups_expire_ms=NOW,
                       behaviors={"Ports": BehaviorState(in_alarm=True, violation_id="ab12", alarm_started_ms=NOW)},
                       version=version)


def test_reads_go_in_batches_of_100_and_missing_devices_start_fresh(
    stubbed: tuple[StateTable, Stubber]
) -> None:
    table, stubber = stubbed
    devices = [f"dev-{index}" for index in range(BATCH_GET_KEYS + 20)]
    stored_item = serialize_item(alarmed_state("dev-5").to_item())
    stubber.add_response("batch_get_item", {"Responses": {TABLE: [stored_item]}},
                         {"RequestItems": {TABLE: {"Keys": [key(device) for device in devices[:BATCH_GET_KEYS]]}}})
    stubber.add_response("batch_get_item", {"Responses": {TABLE: []}},
                         {"RequestItems": {TABLE: {"Keys": [key(device) for device in devices[BATCH_GET_KEYS:]]}}})

    found, unread = table.read(devices, NOW)

    assert unread == set()
    assert set(found) == set(devices)
    assert found["dev-5"].state.behaviors["Ports"].in_alarm is True
    assert found["dev-5"].state.version == 3
    assert found["dev-6"].state == DeviceState("dev-6")


def test_unprocessed_keys_are_retried_then_reported_unread(stubbed: tuple[StateTable, Stubber]) -> None:
    table, stubber = stubbed
    requests = [[key("dev-1"), key("dev-2"), key("dev-3")], [key("dev-1"), key("dev-2")]]
    requests += [[key("dev-2")]] * (READ_ATTEMPTS - len(requests))
    unprocessed = [*requests[1:], [key("dev-2")]]
    for keys, left in zip(requests, unprocessed, strict=True):
        stubber.add_response("batch_get_item",
                             {"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": left}}},
                             {"RequestItems": {TABLE: {"Keys": keys}}})

    found, unread = table.read(["dev-1", "dev-2", "dev-3"], NOW)

    assert unread == {"dev-2"}
    assert set(found) == {"dev-1", "dev-3"}


def test_a_first_write_requires_that_no_item_exists(stubbed: tuple[StateTable, Stubber]) -> None:
    table, stubber = stubbed
    state = DeviceState("dev-1", last_seen_ms=NOW, version=0)
    expected_item = {**state.to_item(), "version": 1, STATE_EXPIRES_AT: (NOW + RETENTION_MS) // 1000}
    stubber.add_response("put_item", {}, {
        "TableName": TABLE, "Item": serialize_item(expected_item),
        "ConditionExpression": "attribute_not_exists(#device)", "ExpressionAttributeNames": {"#device": "device"},
    })

    written = table.write(state, (), NOW)

    assert written is not None
    assert written.state.version == 1


def test_a_write_is_conditioned_on_the_version_read_and_carries_its_outbox(
    stubbed: tuple[StateTable, Stubber]
) -> None:
    table, stubber = stubbed
    state = alarmed_state(version=3)
    expected_item = {**state.to_item(), "version": 4, STATE_EXPIRES_AT: (NOW + RETENTION_MS) // 1000,
                     STATE_ALARMED: NOW, OUTBOX: ['{"violationId":"ab12"}']}
    stubber.add_response("put_item", {}, {
        "TableName": TABLE, "Item": serialize_item(expected_item), "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": "version"}, "ExpressionAttributeValues": {":expected": {"N": "3"}},
    })
    stubber.add_client_error("put_item", "ConditionalCheckFailedException", http_status_code=400)

    written = table.write(state, ('{"violationId":"ab12"}',), NOW)
    assert written is not None
    assert written.outbox == ('{"violationId":"ab12"}',)
    assert table.write(state, (), NOW) is None


def test_clearing_an_outbox_another_write_replaced_is_harmless(stubbed: tuple[StateTable, Stubber]) -> None:
    table, stubber = stubbed
    stubber.add_client_error("update_item", "ConditionalCheckFailedException", http_status_code=400,
                             expected_params={
                                 "TableName": TABLE, "Key": key("dev-1"), "UpdateExpression": "REMOVE #outbox",
                                 "ConditionExpression": "#version = :version",
                                 "ExpressionAttributeNames": {"#outbox": OUTBOX, "#version": "version"},
                                 "ExpressionAttributeValues": {":version": {"N": "4"}},
                             })

    table.clear_outbox("dev-1", 4)


def test_a_stored_item_reads_back_as_the_state_it_was() -> None:
    state = alarmed_state()
    item = serialize_item({**state.to_item(), OUTBOX: ["{}"]})

    stored = stored_from_item(item, NOW)

    assert stored.outbox == ("{}",)
    assert stored.state.to_item() == state.to_item()
    assert deserialize_item(serialize_item({"a": [1, True, {"b": "c"}]})) == {"a": [1, True, {"b": "c"}]}


def test_the_cache_keeps_its_own_state_while_the_item_has_not_moved() -> None:
    cache = StateCache(limit=2)
    mine = Stored(alarmed_state(version=3), (), NOW)
    cache.put(mine)

    assert cache.fresh("dev-1", NOW + 1) is mine
    same_version = cache.reconcile(Stored(alarmed_state(version=3), (), NOW + 5))
    assert same_version is mine
    assert mine.checked_ms == NOW + 5
    moved = Stored(alarmed_state(version=4), (), NOW + 6)
    assert cache.reconcile(moved) is moved

    cache.put(Stored(DeviceState("dev-2"), (), NOW))
    cache.put(Stored(DeviceState("dev-3"), (), NOW))
    assert len(cache) == 2
    assert cache.fresh("dev-1", NOW) is None, "the least recently used is dropped"

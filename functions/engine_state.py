"""The Detect engine's device state in DynamoDB: one item per device, read in batches, written on condition.

Reads: BatchGetItem, 100 keys a request, unprocessed keys retried with backoff; a key still unprocessed
after that is reported back, and the handler retries that device's records later.

Writes: PutItem of the whole item, on the condition that its ``version`` is still the one read (or that no
item exists for a device never stored), storing the version plus one. A failed condition means another
invocation moved the state meanwhile (the log subscription's records reach a different shard than the
device's own; the sweep runs beside the stream): the caller re-reads and re-evaluates. Only states the
evaluator marks changed are written (see ``functions.evaluator`` for what that leaves in memory).

The outbox: the ViolationEvents a write raised are stored in the same write, published after it, and
removed by a conditional UpdateItem once published. A process that stops between the write and the
publication leaves them in the item, and whichever process reads the item next publishes them: events are
published at least once and never lost, and a repeat carries the same violation id, which the intake
folds. The removal is a second write, but only for a state change, never in steady state.

The cache: the handler keeps each device's working state in memory between invocations (a shard's records
keep coming to the same execution environment), which is what carries window sums and the last report id
without writes. A cached state is trusted for :data:`CACHE_REFRESH_MS`; then the item is read again and the
cached state kept only if the stored version is still its own.

Items expire (TTL on ``STATE_EXPIRES_AT``) :data:`RETENTION_MS` after the device was last seen; a device
that keeps reporting is written at least once per heartbeat, which moves the expiry on. While a behavior is
in alarm the item carries ``STATE_ALARMED`` so the sweep finds it through a sparse index.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.aws_clients import Client
from functions.contract_engine import STATE_ALARMED, STATE_DEVICE, STATE_EXPIRES_AT
from functions.evaluator import DeviceState

BATCH_GET_KEYS: Final = 100
"""BatchGetItem's limit of keys per request."""
READ_ATTEMPTS: Final = 5
"""Tries of a batch's unprocessed keys before they are given up for this invocation."""
BACKOFF_SECONDS: Final = 0.05
RETENTION_MS: Final = 30 * 24 * 3600 * 1000
CACHE_REFRESH_MS: Final = 3600 * 1000
"""How long a cached state is trusted without reading its item: at one report per 5 minutes, one item
read per 12 reports, and another writer's change is seen within the hour (sooner when a write conflicts)."""
CACHE_LIMIT: Final = 200_000
"""Devices kept in memory per execution environment; the least recently used beyond that are dropped
(their unwritten window sums with them, which the evaluator treats as a restart)."""
OUTBOX: Final = "outbox"
"""Attribute holding the JSON text of the ViolationEvents of the last write until they are published."""
VERSION: Final = "version"


@dataclass
class Stored:
    """A device's state and the events its last write raised that are not known to be published."""

    state: DeviceState
    outbox: tuple[str, ...] = ()
    checked_ms: int = 0
    """When the state was last read from (or written to) the table."""


class StateTable:
    """The state table, through a DynamoDB client."""

    def __init__(self, client: Client, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    def read(self, devices: Iterable[str], now_ms: int) -> tuple[dict[str, Stored], set[str]]:
        """The stored state of each device (a fresh one when it has no item), and the devices that could
        not be read (their keys stayed unprocessed)."""
        wanted = list(dict.fromkeys(devices))
        found: dict[str, Stored] = {}
        unread: set[str] = set()
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            chunk = wanted[start:start + BATCH_GET_KEYS]
            keys: list[dict[str, Any]] = [{STATE_DEVICE: {"S": device}} for device in chunk]
            for attempt in range(READ_ATTEMPTS):
                if attempt:
                    self._sleep(BACKOFF_SECONDS * 2 ** attempt)
                response = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
                for item in response.get("Responses", {}).get(self._table, []):
                    stored = stored_from_item(item, now_ms)
                    found[stored.state.device] = stored
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not keys:
                    break
            unread.update(key[STATE_DEVICE]["S"] for key in keys)
        for device in wanted:
            if device not in found and device not in unread:
                found[device] = Stored(DeviceState(device), (), now_ms)
        return found, unread

    def read_one(self, device: str, now_ms: int) -> Stored:
        """A strongly consistent read, after a write found the state moved."""
        response = self._client.get_item(TableName=self._table, Key={STATE_DEVICE: {"S": device}},
                                         ConsistentRead=True)
        item = response.get("Item")
        return stored_from_item(item, now_ms) if item else Stored(DeviceState(device), (), now_ms)

    def write(self, state: DeviceState, outbox: tuple[str, ...], now_ms: int) -> Stored | None:
        """Store ``state`` if its item still has the version it was read with; the stored result (version
        plus one), or None when another writer got there first."""
        written = state.copy()
        written.version = state.version + 1
        item = written.to_item()
        if written.last_seen_ms is not None:
            item[STATE_EXPIRES_AT] = (written.last_seen_ms + RETENTION_MS) // 1000
            if any(behavior.in_alarm for behavior in written.behaviors.values()):
                item[STATE_ALARMED] = written.last_seen_ms
        if outbox:
            item[OUTBOX] = list(outbox)
        request: dict[str, Any] = {"TableName": self._table, "Item": serialize_item(item)}
        if state.version == 0:
            request["ConditionExpression"] = "attribute_not_exists(#device)"
            request["ExpressionAttributeNames"] = {"#device": STATE_DEVICE}
        else:
            request["ConditionExpression"] = "#version = :expected"
            request["ExpressionAttributeNames"] = {"#version": VERSION}
            request["ExpressionAttributeValues"] = {":expected": {"N": str(state.version)}}
        try:
            self._client.put_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        return Stored(written, outbox, now_ms)

    def clear_outbox(self, device: str, version: int) -> None:
        """Forget published events, unless a newer write has replaced them with its own."""
        # A failed condition means a newer write owns the outbox now.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table, Key={STATE_DEVICE: {"S": device}}, UpdateExpression="REMOVE #outbox",
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#outbox": OUTBOX, "#version": VERSION},
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )


def stored_from_item(item: Mapping[str, Any], now_ms: int) -> Stored:
    plain = deserialize_item(item)
    outbox = plain.get(OUTBOX) or []
    return Stored(DeviceState.from_item(plain), tuple(str(text) for text in outbox), now_ms)


class StateCache:
    """Working states kept between invocations of one execution environment (least recently used out)."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self._limit = limit
        self._entries: dict[str, Stored] = {}

    def fresh(self, device: str, now_ms: int) -> Stored | None:
        """The cached state, if it was confirmed against the table recently enough to trust."""
        entry = self._entries.get(device)
        if entry is None or now_ms - entry.checked_ms >= CACHE_REFRESH_MS:
            return None
        return entry

    def reconcile(self, stored: Stored) -> Stored:
        """The state to work from after reading an item: the cached one while the item is still its own
        version (it has what the item lacks: window sums, the last report id), else the stored one."""
        cached = self._entries.get(stored.state.device)
        if cached is not None and cached.state.version == stored.state.version:
            cached.checked_ms = stored.checked_ms
            cached.outbox = stored.outbox
            return cached
        return stored

    def put(self, stored: Stored) -> None:
        device = stored.state.device
        self._entries.pop(device, None)
        self._entries[device] = stored
        while len(self._entries) > self._limit:
            del self._entries[next(iter(self._entries))]

    def drop(self, device: str) -> None:
        self._entries.pop(device, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# --- DynamoDB's typed attribute values for the plain types a state item holds ----------------------------
# A small hand-written mapping rather than boto3's TypeSerializer: state items hold only strings, integers,
# booleans, lists and maps, and the handler converts every item of every batch.


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serialize(value) for key, value in item.items() if value is not None}


def _serialize(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [_serialize(element) for element in value]}
    if isinstance(value, Mapping):
        return {"M": serialize_item(value)}
    raise TypeError(f"state item value of type {type(value).__name__} has no DynamoDB mapping here")


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deserialize(value) for key, value in item.items()}


def _deserialize(value: Mapping[str, Any]) -> Any:
    (kind, content), = value.items()
    if kind in {"S", "BOOL"}:
        return content
    if kind == "N":
        return int(content)
    if kind == "L":
        return [_deserialize(element) for element in content]
    if kind == "M":
        return deserialize_item(content)
    if kind == "NULL":
        return None
    raise ValueError(f"state item: unexpected DynamoDB type {kind}")

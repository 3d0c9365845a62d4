"""Decode the Detect engine's stream records into observations of devices.

Every source writes into one Kinesis data stream; the IoT rules merge an envelope into the payload at top
level, its fields prefixed ``fg_`` so they never collide with the payload's own:

* ``device-report``: a device's Device Defender metrics report (long or short field names), with the thing
  name from the Basic Ingest topic (``fg_device``), the connection's client id (``fg_client``) and the time
  AWS IoT received it (``fg_received_ms``).
* ``presence``: an AWS IoT lifecycle event as AWS publishes it (``clientId``, ``eventType``, ``timestamp`` in
  epoch milliseconds, ``ipAddress``...). ``connected`` is a connection attempt from an address;
  ``disconnected`` a disconnect; ``connect_failed`` a connection attempt that failed, and also an
  authorization failure when its reason is one.
* ``message``: a message a device sent on a topic filter the stack watches, with its payload size
  (``fg_bytes``).
* CloudWatch Logs subscription payloads (gzip, no envelope) of the ``AWSIotLogsV2`` group: each log line with
  status ``Failure`` and reason ``AUTHORIZATION_FAILURE`` is an authorization failure of its client id.
  Connect failures are left out there because the lifecycle ``connect_failed`` event already counts them,
  and Device Defender counts an attempt once. ``CONTROL_MESSAGE`` payloads carry nothing.

Records of the first three kinds are partitioned by device, so their sequence numbers order one device's
records and let the evaluator skip what it has applied already. A record gives at most two observations,
so an observation's position is its record's sequence number times two plus its index in the record: the
order of records is kept and each observation has a position of its own. Log records are partitioned by CloudWatch,
not by device: their observations carry no sequence, because numbers from another shard do not compare.
So when Lambda retries such a record (after a failure of a record at or before it), its failures count again:
an overcount bounded by the retries, which the handler keeps rare by failing only what it must.

A record that cannot be decoded raises nothing: it comes back as a :class:`Decoded` with the reason, for
the handler to keep in the dead-letter queue while the rest of the batch goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.device_report import ReportError, parse_report
from functions.evaluator import Observation, ObservationKind
from functions.messages import DEVICE_NAME_PATTERN

KIND: Final = "fg_kind"
DEVICE: Final = "fg_device"
CLIENT: Final = "fg_client"
RECEIVED_MS: Final = "fg_received_ms"
MESSAGE_BYTES: Final = "fg_bytes"
"""The envelope fields the stack's IoT rules add (see the module notes)."""
DEVICE_REPORT: Final = "device-report"
PRESENCE: Final = "presence"
MESSAGE: Final = "message"
"""The values of ``fg_kind``."""

PRESENCE_CONNECTED: Final = "connected"
PRESENCE_DISCONNECTED: Final = "disconnected"
PRESENCE_CONNECT_FAILED: Final = "connect_failed"
CONNECT_FAILURE_REASON: Final = "connectFailureReason"
AUTHORIZATION_FAILED: Final = "AUTHORIZATION_FAILED"
"""The lifecycle event types the engine reads, and the connect failure reason that is an authorization
failure."""

LOG_STATUS: Final = "status"
"""The v2 log entry's outcome field (AWS's name; it only looks like the contract's result key)."""
LOG_FAILURE_STATUS: Final = "Failure"
LOG_AUTHORIZATION_FAILURE: Final = "AUTHORIZATION_FAILURE"
LOG_CONNECT: Final = "Connect"
LOG_DATA_MESSAGE: Final = "DATA_MESSAGE"
LOG_CONTROL_MESSAGE: Final = "CONTROL_MESSAGE"
_GZIP_MAGIC: Final = b"\x1f\x8b"
MAX_RECORD_BYTES: Final = 1024 * 1024
"""Kinesis's limit on one record's data; a log payload inflating past a few times that is not a log."""
_MAX_INFLATED_BYTES: Final = 16 * MAX_RECORD_BYTES
OBSERVATIONS_PER_RECORD: Final = 2
"""A connect failure for authorization is an attempt and a failure; no record gives more."""


@dataclass(frozen=True)
class Decoded:
    """One stream record, decoded: its observations (possibly none), or why it could not be."""

    sequence_number: str
    """The record's Kinesis sequence number (how Lambda names it in a batch item failure)."""
    observations: tuple[Observation, ...] = ()
    error: str | None = None
    """Set when the record, or a part of it, is malformed; the record is then dead-lettered."""
    data: str = ""
    """The record's data as delivered (base64), kept for the dead-letter queue."""


def decode_record(record: Mapping[str, Any]) -> Decoded:
    """Decode one record of a Lambda Kinesis event; never raises for a malformed one."""
    kinesis = record.get("kinesis")
    kinesis = kinesis if isinstance(kinesis, Mapping) else {}
    sequence_number = kinesis.get("sequenceNumber")
    if not isinstance(sequence_number, str) or not sequence_number.isdigit():
        return Decoded(str(sequence_number), error="kinesis.sequenceNumber: expected a string of digits")
    data = kinesis.get("data")
    if not isinstance(data, str):
        return Decoded(sequence_number, error="kinesis.data: expected base64 text")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return Decoded(sequence_number, error="kinesis.data: not valid base64", data=data)
    partition_key = kinesis.get("partitionKey")
    try:
        if raw.startswith(_GZIP_MAGIC):
            observations = _log_failures(_inflate(raw))
        else:
            observations = _enveloped(_json_object(raw, "record"), int(sequence_number), partition_key)
    except RecordError as error:
        return Decoded(sequence_number, error=str(error), data=data)
    return Decoded(sequence_number, observations, data=data)


class RecordError(ValueError):
    """The record is malformed; the text names the field."""


def _json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"{what}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RecordError(f"{what}: expected a JSON object, got {type(document).__name__}")
    return document


def _device(value: object, field: str) -> str:
    if not isinstance(value, str) or not DEVICE_NAME_PATTERN.fullmatch(value):
        raise RecordError(f"{field}: expected a thing name or client id of 1-128 characters, got {value!r}")
    return value


def _time_ms(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RecordError(f"{field}: expected epoch milliseconds, got {value!r}")
    return value


def _enveloped(document: dict[str, Any], sequence: int, partition_key: object) -> tuple[Observation, ...]:
    kind = document.get(KIND)
    if kind == DEVICE_REPORT:
        return (_device_report(document, sequence, partition_key),)
    if kind == PRESENCE:
        return _presence(document, sequence, partition_key)
    if kind == MESSAGE:
        device = _device(document.get(DEVICE), DEVICE)
        size = document.get(MESSAGE_BYTES)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RecordError(f"{MESSAGE_BYTES}: expected a byte count, got {size!r}")
        return (Observation(device, _time_ms(document.get(RECEIVED_MS), RECEIVED_MS), ObservationKind.MESSAGE,
                            message_bytes=size, sequence=_ordered(sequence, device, partition_key)),)
    raise RecordError(f"{KIND}: expected one of {DEVICE_REPORT}, {PRESENCE}, {MESSAGE}, got {kind!r}")


def _ordered(sequence: int, device: str, partition_key: object, index: int = 0) -> int | None:
    """The observation's position, when the record was partitioned by its device (so the position orders
    that device's observations)."""
    return sequence * OBSERVATIONS_PER_RECORD + index if partition_key == device else None


def _device_report(document: dict[str, Any], sequence: int, partition_key: object) -> Observation:
    device = _device(document.get(DEVICE), DEVICE)
    client = document.get(CLIENT)
    # The rule only forwards a report whose topic names the connection's own client id; checked again here
    # so a rule edited by hand cannot let one device report for another.
    if client != device:
        raise RecordError(f"{CLIENT}: the report's thing name {device!r} is not the publishing client {client!r}")
    received_ms = _time_ms(document.get(RECEIVED_MS), RECEIVED_MS)
    try:
        report = parse_report(document)
    except ReportError as error:
        raise RecordError(str(error)) from None
    return Observation(device, received_ms, ObservationKind.REPORT, report=report,
                       sequence=_ordered(sequence, device, partition_key))


def _presence(document: dict[str, Any], sequence: int, partition_key: object) -> tuple[Observation, ...]:
    device = _device(document.get("clientId"), "clientId")
    at_ms = _time_ms(document.get("timestamp"), "timestamp")
    event_type = document.get("eventType")
    if event_type == PRESENCE_DISCONNECTED:
        return (Observation(device, at_ms, ObservationKind.DISCONNECT,
                            sequence=_ordered(sequence, device, partition_key)),)
    if event_type not in (PRESENCE_CONNECTED, PRESENCE_CONNECT_FAILED):
        raise RecordError(f"eventType: expected one of {PRESENCE_CONNECTED}, {PRESENCE_DISCONNECTED}, "
                          f"{PRESENCE_CONNECT_FAILED}, got {event_type!r}")
    address = document.get("ipAddress", document.get("sourceIp"))
    attempt = Observation(device, at_ms, ObservationKind.CONNECT,
                          source_ip=address if isinstance(address, str) else None,
                          sequence=_ordered(sequence, device, partition_key))
    if event_type == PRESENCE_CONNECT_FAILED and document.get(CONNECT_FAILURE_REASON) == AUTHORIZATION_FAILED:
        return attempt, Observation(device, at_ms, ObservationKind.AUTH_FAILURE,
                                    sequence=_ordered(sequence, device, partition_key, index=1))
    return (attempt,)


def _inflate(raw: bytes) -> dict[str, Any]:
    try:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        text = decompressor.decompress(raw, _MAX_INFLATED_BYTES)
        if decompressor.unconsumed_tail:
            raise RecordError(f"log payload: inflates past {_MAX_INFLATED_BYTES} bytes")
        if not decompressor.eof:
            raise RecordError("log payload: gzip data is truncated")
    except zlib.error as error:
        raise RecordError(f"log payload: not valid gzip ({error})") from None
    return _json_object(text, "log payload")


def _log_failures(payload: dict[str, Any]) -> tuple[Observation, ...]:
    message_type = payload.get("messageType")
    if message_type == LOG_CONTROL_MESSAGE:
        return ()
    if message_type != LOG_DATA_MESSAGE:
        raise RecordError(f"log payload.messageType: expected {LOG_DATA_MESSAGE} or {LOG_CONTROL_MESSAGE}, "
                          f"got {message_type!r}")
    events = payload.get("logEvents")
    if not isinstance(events, list):
        raise RecordError("log payload.logEvents: expected an array")
    observations = []
    for index, event in enumerate(events):
        field = f"log payload.logEvents[{index}]"
        if not isinstance(event, dict) or not isinstance(event.get("message"), str):
            raise RecordError(f"{field}.message: expected the log line as text")
        line = _json_object(event["message"], f"{field}.message")
        if line.get(LOG_STATUS) != LOG_FAILURE_STATUS or line.get("reason") != LOG_AUTHORIZATION_FAILURE:
            continue
        if line.get("eventType") == LOG_CONNECT:
            continue  # counted from the lifecycle connect_failed event (see the module notes)
        # CloudWatch's event timestamp is the log line's time in epoch milliseconds; the line's own text
        # timestamp says the same with less precision.
        at_ms = _time_ms(event.get("timestamp"), f"{field}.timestamp")
        device = _device(line.get("clientId"), f"{field}.message.clientId")
        observations.append(Observation(device, at_ms, ObservationKind.AUTH_FAILURE))
    return tuple(observations)

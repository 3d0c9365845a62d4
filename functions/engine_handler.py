"""The Detect engine's stream handler: decode a Kinesis batch, evaluate each device, store, publish.

One invocation handles one shard's batch:

1. Decode every record (``functions.engine_records``). A malformed one goes to the dead-letter queue with
   its reason and counts as handled; only when the queue refuses it is the record failed, so it is retried
   rather than lost.
2. Group the observations by device, in stream order.
3. Load each device's state: from this environment's cache while it is fresh, else from the table in
   batches (``functions.engine_state``).
4. When the profile targets thing groups, look up the groups of devices whose cached membership expired
   (ListThingGroupsForThing). Membership rides along with the next write instead of forcing one.
5. Evaluate (``functions.evaluator``), and write only a state that changed, on the condition that no one
   else wrote it meanwhile; on a conflict, re-read and re-evaluate, a few times at most.
6. Publish the ViolationEvents each write raised to the alert topic, after the write succeeded (they are
   kept in the item's outbox until published: see ``functions.engine_state``).

Authorization failures from the v2 log arrive on whichever shard CloudWatch Logs chose, so another
execution environment may hold the same device: the two meet through the version condition (a write by one
makes the other's next write re-read), but window sums held in memory are not merged. A window whose
failures are split between the two is judged on each part, so it can be undercounted until a part alone
settles it; records re-put to the stream with the device as partition key would remove the split.

A device whose state could not be read, written or published has its records reported as batch item
failures: Lambda retries the batch from the first of them, and the records already applied are skipped by
their sequence numbers (or, for reports, their report ids). Nothing fails the whole batch for one record.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.aws_clients import Client
from functions.contract_engine import EngineHandlerEnvironment
from functions.engine_behaviors import EngineProfile, load_profile
from functions.engine_records import Decoded, decode_record
from functions.engine_state import StateCache, StateTable, Stored
from functions.evaluator import Evaluation, Observation, evaluate
from functions.messages import is_thing_name

logger = Logger()

GROUPS_TTL_MS: Final = 6 * 3600 * 1000
"""How long a device's thing groups are trusted. ListThingGroupsForThing is a per-device call against a
shared account quota: a million devices looked up every 6 hours is about 46 calls a second. A device moved
into or out of a targeted group is seen within that time."""
WRITE_ATTEMPTS: Final = 3
"""Conditional writes of one device per invocation; past that its records are retried later."""
PUBLISH_BATCH: Final = 10
"""SNS PublishBatch's limit of entries per request."""
DEAD_LETTER_BATCH: Final = 10
"""SQS SendMessageBatch's limit of entries per request."""
MAX_DEAD_LETTER_DATA: Final = 200 * 1024
"""Record data kept in a dead-letter message (base64 characters); more is cut, under SQS's message size."""


@dataclass(frozen=True)
class EngineClients:
    """Where the handler gets its clients (tests swap one for a stubbed client)."""

    dynamodb: Callable[[], Client] = field(default=lambda: aws_clients.client("dynamodb"))
    sns: Callable[[], Client] = field(default=lambda: aws_clients.client("sns"))
    sqs: Callable[[], Client] = field(default=lambda: aws_clients.client("sqs"))
    iot: Callable[[], Client] = aws_clients.iot


CLIENTS = EngineClients()
CACHE = StateCache()
"""The working states of this execution environment (see ``functions.engine_state``)."""
PROFILE: EngineProfile | None = None
"""The packaged profile, read on first use."""
CLOCK: Callable[[], float] = time.time


class RecordFailedError(Exception):
    """The record was not handled; Lambda delivers it again."""


@dataclass
class BatchReport:
    """What one batch did, for the log and the benchmarks."""

    records: int = 0
    observations: int = 0
    devices: int = 0
    dead_lettered: int = 0
    writes: int = 0
    conflicts: int = 0
    events: int = 0
    failed_devices: set[str] = field(default_factory=set)
    failed_records: set[str] = field(default_factory=set)


class Engine:
    """One batch's work; the state table, topic and queue come from the configuration."""

    def __init__(self, profile: EngineProfile, config: EngineHandlerEnvironment[str], clients: EngineClients,
                 cache: StateCache, clock: Callable[[], float] = time.time) -> None:
        self.profile = profile
        self.config = config
        self.clients = clients
        self.cache = cache
        self.now_ms = int(clock() * 1000)
        self.table = StateTable(clients.dynamodb(), config.state_table)

    def run(self, decoded: Sequence[Decoded]) -> BatchReport:
        report = BatchReport(records=len(decoded))
        report.failed_records.update(self._dead_letter([record for record in decoded if record.error]))
        report.dead_lettered = sum(1 for record in decoded if record.error) - len(report.failed_records)
        observations: dict[str, list[Observation]] = defaultdict(list)
        records_of: dict[str, set[str]] = defaultdict(set)
        for record in decoded:
            for observation in record.observations:
                observations[observation.device].append(observation)
                records_of[observation.device].add(record.sequence_number)
        report.observations = sum(len(found) for found in observations.values())
        report.devices = len(observations)
        states = self._load(list(observations), report)
        publish: dict[str, Stored] = {}
        for device, stored in states.items():
            try:
                committed = self._commit(stored, observations[device], report)
            except Exception:  # one device's AWS error must not fail the others
                logger.exception("device state not stored", extra={"device": device})
                committed = None
            if committed is None:
                report.failed_devices.add(device)
                self.cache.drop(device)
            elif committed.outbox:
                publish[device] = committed
        report.failed_devices.update(self._publish(publish, report))
        for device in report.failed_devices:
            report.failed_records.update(records_of[device])
        return report

    # --- dead letters -----------------------------------------------------------------------------------

    def _dead_letter(self, malformed: Sequence[Decoded]) -> set[str]:
        """Send malformed records to the dead-letter queue; the sequence numbers the queue did not take."""
        refused: set[str] = set()
        if not malformed:
            return refused
        sqs = self.clients.sqs()
        for start in range(0, len(malformed), DEAD_LETTER_BATCH):
            chunk = malformed[start:start + DEAD_LETTER_BATCH]
            entries = []
            for index, record in enumerate(chunk):
                logger.warning("stream record dead-lettered",
                               extra={"sequence_number": record.sequence_number, "reason": record.error})
                body = {"reason": record.error, "sequenceNumber": record.sequence_number,
                        "data": record.data[:MAX_DEAD_LETTER_DATA],
                        "dataTruncated": len(record.data) > MAX_DEAD_LETTER_DATA}
                entries.append({"Id": str(index), "MessageBody": json.dumps(body)})
            try:
                response = sqs.send_message_batch(QueueUrl=self.config.dead_letter_queue_url, Entries=entries)
            except Exception:  # the records are retried instead of lost
                logger.exception("dead-letter queue refused a batch")
                refused.update(record.sequence_number for record in chunk)
                continue
            refused.update(chunk[int(failure["Id"])].sequence_number for failure in response.get("Failed", []))
        return refused

    # --- state ------------------------------------------------------------------------------------------

    def _load(self, devices: Sequence[str], report: BatchReport) -> dict[str, Stored]:
        states: dict[str, Stored] = {}
        stale = []
        for device in devices:
            cached = self.cache.fresh(device, self.now_ms)
            if cached is None:
                stale.append(device)
            else:
                states[device] = cached
        if stale:
            try:
                read, unread = self.table.read(stale, self.now_ms)
            except Exception:  # these devices are retried; the cached ones go on
                logger.exception("device states not read", extra={"devices": len(stale)})
                read, unread = {}, set(stale)
            for device, stored in read.items():
                states[device] = self.cache.reconcile(stored)
            report.failed_devices.update(unread)
        return {device: states[device] for device in devices if device in states}

    def _commit(self, stored: Stored, observations: Sequence[Observation], report: BatchReport) -> Stored | None:
        """Evaluate and store one device; the stored state (with the outbox to publish), or None when the
        state kept moving under other writers."""
        for _ in range(WRITE_ATTEMPTS):
            self._ensure_groups(stored)
            evaluation: Evaluation = evaluate(self.profile, stored.state, observations)
            if not evaluation.changed:
                kept = Stored(evaluation.state, stored.outbox, stored.checked_ms)
                self.cache.put(kept)
                return kept
            new_events = tuple(json.dumps(event, separators=(",", ":")) for event in evaluation.events)
            written = self.table.write(evaluation.state, stored.outbox + new_events, self.now_ms)
            report.writes += 1
            if written is not None:
                self.cache.put(written)
                return written
            report.conflicts += 1
            groups = (stored.state.groups, stored.state.groups_expire_ms)
            stored = self.table.read_one(stored.state.device, self.now_ms)
            if stored.state.groups is None:
                stored.state.groups, stored.state.groups_expire_ms = groups
        logger.warning("device state kept moving; its records are retried",
                       extra={"device": stored.state.device, "attempts": WRITE_ATTEMPTS})
        return None

    def _ensure_groups(self, stored: Stored) -> None:
        state = stored.state
        if not self.profile.target_groups:
            return
        if state.groups is not None and state.groups_expire_ms is not None and state.groups_expire_ms > self.now_ms:
            return
        state.groups = thing_groups(self.clients.iot(), state.device)
        state.groups_expire_ms = self.now_ms + GROUPS_TTL_MS

    # --- events -----------------------------------------------------------------------------------------

    def _publish(self, pending: Mapping[str, Stored], report: BatchReport) -> set[str]:
        """Publish each device's outbox, then clear it; the devices whose events were not all published."""
        entries = [(device, index, text) for device, stored in pending.items()
                   for index, text in enumerate(stored.outbox)]
        unpublished: set[str] = set()
        if not entries:
            return unpublished
        sns = self.clients.sns()
        for start in range(0, len(entries), PUBLISH_BATCH):
            chunk = entries[start:start + PUBLISH_BATCH]
            batch = [{"Id": f"e{position}", "Message": text} for position, (_, _, text) in enumerate(chunk)]
            try:
                response = sns.publish_batch(TopicArn=self.config.alert_topic_arn, PublishBatchRequestEntries=batch)
            except Exception:  # kept in the outbox, published on the retry
                logger.exception("violation events not published")
                unpublished.update(device for device, _, _ in chunk)
                continue
            for failure in response.get("Failed", []):
                unpublished.add(chunk[int(failure["Id"][1:])][0])
        for device, stored in pending.items():
            if device in unpublished:
                continue
            report.events += len(stored.outbox)
            try:
                self.table.clear_outbox(device, stored.state.version)
            except Exception:  # published; a leftover outbox is published again, folded by id
                logger.exception("outbox not cleared", extra={"device": device})
                continue
            stored.outbox = ()
        return unpublished


def thing_groups(iot: Client, device: str) -> tuple[str, ...]:
    """The thing groups a device belongs to, sorted; none for a client id no thing can have, or a thing
    that is not registered."""
    if not is_thing_name(device):
        return ()
    names: list[str] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {"thingName": device, "maxResults": 250}
        if token:
            request["nextToken"] = token
        try:
            response = iot.list_thing_groups_for_thing(**request)
        except iot.exceptions.ResourceNotFoundException:
            return ()
        names.extend(group["groupName"] for group in response.get("thingGroups", []))
        token = response.get("nextToken")
        if not token:
            return tuple(sorted(names))


def current_profile() -> EngineProfile:
    global PROFILE  # noqa: PLW0603 - read once per execution environment
    if PROFILE is None:
        PROFILE = load_profile()
    return PROFILE


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = EngineHandlerEnvironment.from_environment(os.environ)
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ValueError("event.Records: expected an array of Kinesis records")
    report = Engine(current_profile(), config, CLIENTS, CACHE, CLOCK).run([decode_record(record) for record in records])
    logger.info("batch evaluated", extra={
        "records": report.records, "observations": report.observations, "devices": report.devices,
        "dead_lettered": report.dead_lettered, "writes": report.writes, "conflicts": report.conflicts,
        "events": report.events, "failed_records": len(report.failed_records),
    })
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)

    def record_handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.sequence_number in report.failed_records:
            raise RecordFailedError("its device's state or events could not be stored or published")

    response = process_partial_response(event=dict(event), record_handler=record_handler, processor=processor,
                                        context=context)
    return dict(response)

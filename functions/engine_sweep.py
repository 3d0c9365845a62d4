"""The Detect engine's scheduled sweep: invalidate the alarms of devices that have gone silent.

Device Defender marks a violation ``alarm-invalidated`` when the device has reported nothing for two days.
The stream handler cannot notice silence (silent devices send no records), so this function, run on a
schedule, does.

Finding them at fleet scale: only items with a behavior in alarm carry ``STATE_ALARMED`` (their last-seen
time), so the index on it is sparse and holds alarmed devices only. The sweep scans that index (keys only)
with a filter on the last-seen time, reads the matching items in batches, lets the evaluator decide
(``invalidate_silent``: it allows for the coarse heartbeat), and writes each verdict on the same version
condition as the handler, then publishes the alarm-invalidated events through the item's outbox.

Cost at a million devices with 1% in alarm: the scan reads 10,000 index entries of about 130 bytes (key,
last-seen time, DynamoDB's 100-byte per-item overhead), 1.3 MB or about 160 read units at eventual
consistency's 8 KB a unit, so an hourly run costs some 115,000 read units a month; the full table is never
read. The index costs a write of its own only when an alarmed device's item is written.

A conflict (the device reported meanwhile, or the stream handler wrote) is left alone: the device is not
silent, or the next run sees it again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.contract_engine import STATE_ALARMED, STATE_ALARMED_INDEX, STATE_DEVICE, EngineSweepEnvironment
from functions.engine_behaviors import EngineProfile
from functions.engine_handler import CLIENTS, PUBLISH_BATCH, EngineClients, current_profile
from functions.engine_state import StateTable, Stored
from functions.evaluator import HEARTBEAT_MS, SILENCE_MS, invalidate_silent

logger = Logger()

CLOCK: Callable[[], float] = time.time
SCAN_PAGE: Final = 1000
"""Index entries per scan page (each page is one request)."""


@dataclass
class SweepReport:
    candidates: int = 0
    invalidated: int = 0
    events: int = 0
    conflicts: int = 0
    unpublished: int = 0


def sweep(profile: EngineProfile, config: EngineSweepEnvironment[str], clients: EngineClients,
          now_ms: int) -> SweepReport:
    dynamodb = clients.dynamodb()
    table = StateTable(dynamodb, config.state_table)
    report = SweepReport()
    # The evaluator counts a device silent only once the heartbeat's margin has passed too.
    cutoff = now_ms - SILENCE_MS - HEARTBEAT_MS
    candidates: list[str] = []
    request: dict[str, Any] = {
        "TableName": config.state_table, "IndexName": STATE_ALARMED_INDEX, "Limit": SCAN_PAGE,
        "FilterExpression": "#alarmed <= :cutoff", "ExpressionAttributeNames": {"#alarmed": STATE_ALARMED},
        "ExpressionAttributeValues": {":cutoff": {"N": str(cutoff)}},
    }
    while True:
        page = dynamodb.scan(**request)
        candidates.extend(item[STATE_DEVICE]["S"] for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    report.candidates = len(candidates)
    states, unread = table.read(candidates, now_ms)
    if unread:
        logger.warning("alarmed device states not read; the next run sees them", extra={"devices": len(unread)})
    to_publish: list[Stored] = []
    for stored in states.values():
        verdict = invalidate_silent(profile, stored.state, now_ms)
        if not verdict.changed:
            continue
        outbox = stored.outbox + tuple(_text(event) for event in verdict.events)
        written = table.write(verdict.state, outbox, now_ms)
        if written is None:
            report.conflicts += 1
            continue
        report.invalidated += 1
        if written.outbox:
            to_publish.append(written)
    _publish(clients, config, table, to_publish, report)
    return report


def _text(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def _publish(clients: EngineClients, config: EngineSweepEnvironment[str], table: StateTable,
             written: list[Stored], report: SweepReport) -> None:
    """Publish each device's outbox, then clear it; a device whose events failed keeps them in its outbox,
    which the stream handler or the next run publishes."""
    if not written:
        return
    sns = clients.sns()
    for stored in written:
        failed = False
        for start in range(0, len(stored.outbox), PUBLISH_BATCH):
            chunk = stored.outbox[start:start + PUBLISH_BATCH]
            response = sns.publish_batch(
                TopicArn=config.alert_topic_arn,
                PublishBatchRequestEntries=[{"Id": f"e{index}", "Message": text} for index, text in enumerate(chunk)],
            )
            failed = failed or bool(response.get("Failed"))
        if failed:
            report.unpublished += 1
            continue
        report.events += len(stored.outbox)
        table.clear_outbox(stored.state.device, stored.state.version)


@logger.inject_lambda_context(clear_state=True)
def handler(_event: Mapping[str, Any], _context: LambdaContext) -> dict[str, int]:
    """Scheduled (EventBridge); the event carries nothing the sweep needs."""
    config = EngineSweepEnvironment.from_environment(os.environ)
    report = sweep(current_profile(), config, CLIENTS, int(CLOCK() * 1000))
    logger.info("sweep done", extra=report.__dict__)
    return dict(report.__dict__)

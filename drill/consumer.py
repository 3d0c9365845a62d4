"""The queue consumer: it plays the Lambda event source mapping between the intake queue and the intake.

It receives up to ``batch_size`` records, invokes the intake with the SQS event Lambda would build,
deletes exactly the records the intake did not report in ``batchItemFailures`` and leaves the others to
become visible again after the queue's visibility timeout, so the emulator's redrive policy moves them to
the dead-letter queue. The intake's per-record log lines become the timeline and the observed outcomes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from drill.emulator import SQS_RECEIVE_MAX, queue_counts
from drill.logs import HandlerLog
from drill.observed import Containment, Run
from drill.scenario import ACCOUNT_ID, INTAKE_QUEUE, REGION, Alert
from functions import intake
from functions.contract import IGNORED_OUTCOMES, Outcome, RecordOutcome
from harness.lambda_context import lambda_context

VISIBILITY_MARGIN_SECONDS: Final = 0.05


class DrillError(Exception):
    """The drill could not run to the end (the emulator or a handler broke); the text says where."""


def drain_intake(run: Run) -> None:
    """Invoke the intake until its queue is empty; failed records come back after the visibility timeout
    until the redrive policy moves them to the dead-letter queue."""
    sqs, scenario, plumbing = run.clients.sqs, run.scenario, run.plumbing
    # A failed record is received max_receive_count times, then redriven by the receive after that.
    waits_left = scenario.max_receive_count + 1
    while True:
        dead_before, _ = queue_counts(sqs, plumbing.dead_letter_queue_url)
        batch = _receive_batch(run)
        dead_after, _ = queue_counts(sqs, plumbing.dead_letter_queue_url)
        if dead_after > dead_before:
            run.timeline.add(
                f"  redrive: {dead_after - dead_before} record(s) moved to the dead-letter queue after "
                f"{scenario.max_receive_count} receives"
            )
        if batch:
            _invoke_intake(run, batch)
            continue
        visible, in_flight = queue_counts(sqs, plumbing.intake_queue_url)
        if visible == 0 and in_flight == 0:
            return
        if waits_left == 0:
            raise DrillError(
                f"intake queue {INTAKE_QUEUE} still holds {visible + in_flight} record(s) after "
                f"{scenario.max_receive_count + 1} visibility timeouts; the redrive policy did not empty it"
            )
        waits_left -= 1
        run.timeline.add(
            f"  {in_flight} failed record(s) in flight; waiting {scenario.visibility_timeout_seconds} s "
            "for the visibility timeout"
        )
        time.sleep(scenario.visibility_timeout_seconds + VISIBILITY_MARGIN_SECONDS)


def _receive_batch(run: Run) -> list[dict[str, Any]]:
    """Up to batch_size visible records, as the event source mapping collects them."""
    messages: list[dict[str, Any]] = []
    while len(messages) < run.scenario.batch_size:
        received = run.clients.sqs.receive_message(
            QueueUrl=run.plumbing.intake_queue_url,
            MaxNumberOfMessages=min(SQS_RECEIVE_MAX, run.scenario.batch_size - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            break
        messages.extend(received)
    return messages


def _lambda_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda builds from an SQS message for an SQS-triggered function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: attributes[name]
            for name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if name in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _invoke_intake(run: Run, messages: Sequence[Mapping[str, Any]]) -> None:
    run.invocations += 1
    batch_ids = {message["MessageId"] for message in messages}
    alerts = {message["MessageId"]: run.alert_of_body(message["Body"]) for message in messages}
    event = {"Records": [_lambda_record(message, run.plumbing.intake_queue_arn) for message in messages]}
    context = lambda_context("fleetguard-drill-intake", region=REGION, account_id=ACCOUNT_ID,
                             request_id=f"00000000-0000-4000-8000-{run.invocations:012d}", log_stream="drill")
    first_log = len(run.logs.records)
    started = run.timeline.now_ms()
    try:
        response = intake.handler(event, context)
    except Exception as error:  # as Lambda does: the whole batch returns to the queue
        run.timeline.add(
            f"intake invocation {run.invocations}: {len(messages)} record(s); the invocation raised "
            f"{type(error).__name__}: {error}; every record will be retried",
            at_ms=started,
        )
        for alert in alerts.values():
            label = alert.label if alert is not None else "unknown record"
            run.observed.failures.setdefault(label, []).append(f"invocation failed: {error}")
        return
    failed = _failed_ids(response, batch_ids)
    run.timeline.add(
        f"intake invocation {run.invocations}: {len(messages)} record(s), {len(messages) - len(failed)} handled, "
        f"{len(failed)} reported failed",
        at_ms=started,
    )
    logs = run.logs.records[first_log:]
    for log in logs:
        _record_outcome(run, log, alerts, logs)
    handled = [message for message in messages if message["MessageId"] not in failed]
    for start in range(0, len(handled), SQS_RECEIVE_MAX):
        chunk = handled[start : start + SQS_RECEIVE_MAX]
        result = run.clients.sqs.delete_message_batch(
            QueueUrl=run.plumbing.intake_queue_url,
            Entries=[{"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                     for number, message in enumerate(chunk)],
        )
        if result.get("Failed"):
            raise DrillError(f"deleting handled records from {INTAKE_QUEUE} failed: {result['Failed']}")


def _failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """The batchItemFailures of the intake's response, checked against the batch."""
    if not isinstance(response, Mapping) or not isinstance(response.get("batchItemFailures"), list):
        raise DrillError(f"intake response: expected {{'batchItemFailures': [...]}}, got {response!r}")
    failed = set()
    for index, failure in enumerate(response["batchItemFailures"]):
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if identifier not in batch_ids:
            raise DrillError(
                f"intake response.batchItemFailures[{index}].itemIdentifier: expected a message id of the batch, "
                f"got {identifier!r}"
            )
        failed.add(identifier)
    return failed


def _record_outcome(
    run: Run, log: HandlerLog, alerts: Mapping[str, Alert | None], invocation_logs: Sequence[HandlerLog]
) -> None:
    """Turn the intake's per-record log ("record handled" / "record failed") into timeline and tallies."""
    record_id = log.fields.get("record_id")
    if not isinstance(record_id, str) or record_id not in alerts:
        return
    alert = alerts[record_id]
    label = alert.label if alert is not None else f"unknown record {record_id}"
    thing = f" {alert.thing_name}" if alert is not None and alert.thing_name else ""
    outcome = log.fields.get("outcome")
    if isinstance(outcome, str):
        run.timeline.add(f"  {label}:{thing} {outcome}", at_ms=log.at_ms)
        if alert is None:
            return
        kind = RecordOutcome.parse(outcome).kind
        if kind is Outcome.CONTAINED and alert.thing_name:
            run.observed.containments.append(alert.thing_name)
            if alert.thing_name not in run.observed.contained:
                took = log.at_ms - run.published_at[alert.label]
                run.observed.contained[alert.thing_name] = Containment(took, "intake")
        if kind is Outcome.STORM_MEMBER and alert.thing_name:
            run.observed.bulk_contained[alert.thing_name] = outcome
        if kind in IGNORED_OUTCOMES:
            run.observed.ignored[label] = _ignore_reason(alert, outcome, invocation_logs)
        return
    reason = str(log.fields.get("reason", log.message))
    receive = log.fields.get("receive_count", "?")
    run.timeline.add(f"  {label}:{thing} FAILED (delivery {receive}): {reason}", at_ms=log.at_ms)
    run.observed.failures.setdefault(label, []).append(reason)


def _ignore_reason(alert: Alert, outcome: str, invocation_logs: Sequence[HandlerLog]) -> str:
    """The outcome, with what the intake logged about the alert's violation (same id and event type) or
    audit task in the same invocation."""
    message = json.loads(alert.message)
    identity = {
        "violation_id": message.get("violationId"),
        "event_type": message.get("violationEventType"),
        "task_id": message.get("taskId"),
    }
    for log in invocation_logs:
        matched = [key for key, value in identity.items() if value is not None and key in log.fields]
        if matched and all(log.fields[key] == identity[key] for key in matched):
            return f"{outcome} ({log.message})"
    return outcome

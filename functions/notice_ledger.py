"""Send each responders notice once, however often its alert is delivered.

The intake is otherwise stateless: Incident Manager folds repeated requests through client tokens, and
containment is idempotent. SNS has no such token for the standard topic that email and SMS need (FIFO
topics deduplicate but cannot deliver to email), and the intake cannot tell a redelivered alert from a
first one: a record that succeeded comes back when the invocation timed out or crashed after it, and SNS
and SQS may each deliver a message twice. So the notices are recorded in a small DynamoDB table, one item
per notice, keyed by what identifies it (a violation id, an audit task, a storm batch's violations):

1. claim: a conditional PutItem, state ``sending``, succeeds only if no item exists or an earlier claim's
   lease has run out (its invocation is gone);
2. publish the notice; if publishing fails, the claim is deleted so the redelivery publishes;
3. mark the item ``sent``.

A delivery that finds the notice ``sent`` publishes nothing. One that finds another invocation's live
claim fails its record (NoticeInFlightError), and the queue delivers it again after that invocation has
either sent the notice or given up. The one gap: an invocation that dies between publishing and marking
leaves a claim whose lease runs out, and a later delivery sends the notice a second time.

Items expire through the table's TTL after NOTICE_RETENTION, longer than a message can stay in the intake
queue, so the table holds at most a few weeks of notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from aws_lambda_powertools import Logger

from functions.aws_clients import Client
from functions.contract import EXPIRES_AT, NOTICE_ID

STATE: Final = "state"
CLAIMED_AT: Final = "claimedAt"
SENDING: Final = "sending"
SENT: Final = "sent"
CLAIM_LEASE: Final = timedelta(seconds=900)
"""Lambda's maximum run time: a claim older than this belongs to an invocation that has ended."""
NOTICE_RETENTION: Final = timedelta(days=15)
"""Longer than SQS keeps a message (at most 14 days), so no delivery of an alert outlives its item."""

logger = Logger(child=True)


class NoticeInFlightError(Exception):
    """Another invocation is sending this notice now; retry the record later."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NoticeLedger:
    dynamodb: Client
    table_name: str
    clock: Callable[[], datetime] = field(default=_now)

    def publish_once(self, notice_id: str, publish: Callable[[], object]) -> bool:
        """Call ``publish`` unless the notice ``notice_id`` was already sent; True when it was sent now.

        Raises NoticeInFlightError while another invocation holds the claim, and re-raises what
        ``publish`` raised after withdrawing the claim.
        """
        claimed_at = int(self.clock().timestamp())
        if not self._claim(notice_id, claimed_at):
            return False
        try:
            publish()
        except Exception:
            self._withdraw(notice_id, claimed_at)
            raise
        self._mark_sent(notice_id, claimed_at)
        return True

    def _claim(self, notice_id: str, claimed_at: int) -> bool:
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={
                    NOTICE_ID: {"S": notice_id},
                    STATE: {"S": SENDING},
                    CLAIMED_AT: {"N": str(claimed_at)},
                    EXPIRES_AT: {"N": str(claimed_at + int(NOTICE_RETENTION.total_seconds()))},
                },
                ConditionExpression="attribute_not_exists(#id) OR (#state = :sending AND #claimed < :stale)",
                ExpressionAttributeNames={"#id": NOTICE_ID, "#state": STATE, "#claimed": CLAIMED_AT},
                ExpressionAttributeValues={
                    ":sending": {"S": SENDING},
                    ":stale": {"N": str(claimed_at - int(CLAIM_LEASE.total_seconds()))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException as error:
            existing = error.response.get("Item", {})
            if existing.get(STATE, {}).get("S") == SENT:
                logger.info("notice already sent; not sent again", notice_id=notice_id)
                return False
            raise NoticeInFlightError(
                f"notice {notice_id} is being sent by another invocation (claimed at "
                f"{existing.get(CLAIMED_AT, {}).get('N', '?')}); retry later"
            ) from error
        return True

    def _withdraw(self, notice_id: str, claimed_at: int) -> None:
        """Delete our claim so a redelivery sends the notice. If this fails too, the claim's lease runs
        out and a later redelivery sends it."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table_name,
                Key={NOTICE_ID: {"S": notice_id}},
                ConditionExpression="#claimed = :mine",
                ExpressionAttributeNames={"#claimed": CLAIMED_AT},
                ExpressionAttributeValues={":mine": {"N": str(claimed_at)}},
            )
        except self.dynamodb.exceptions.ClientError as error:
            logger.warning("could not withdraw the notice claim", notice_id=notice_id, error=str(error))

    def _mark_sent(self, notice_id: str, claimed_at: int) -> None:
        """Record the notice as sent. The notice is out either way: a failure here is logged, not raised,
        because failing the record would only make its redelivery send it again once the lease ends."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={NOTICE_ID: {"S": notice_id}},
                UpdateExpression="SET #state = :sent",
                ConditionExpression="#claimed = :mine",
                ExpressionAttributeNames={"#state": STATE, "#claimed": CLAIMED_AT},
                ExpressionAttributeValues={":sent": {"S": SENT}, ":mine": {"N": str(claimed_at)}},
            )
        except self.dynamodb.exceptions.ClientError as error:
            logger.warning("notice sent but not recorded as sent", notice_id=notice_id, error=str(error))

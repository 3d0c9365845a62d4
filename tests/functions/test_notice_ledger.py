"""The notice ledger against moto's DynamoDB: a notice is published once across deliveries, a failed
publish is retried, and a live claim of another invocation holds its deliveries back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from functions.notice_ledger import CLAIM_LEASE, NOTICE_RETENTION, NoticeInFlightError, NoticeLedger
from tests.functions.intake_support import NOTICE_TABLE, REGION, create_notice_table

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def dynamodb(moto_aws: None) -> Any:
    create_notice_table()
    return boto3.client("dynamodb", region_name=REGION)


def ledger(dynamodb: Any, at: datetime = NOW) -> NoticeLedger:
    return NoticeLedger(dynamodb, NOTICE_TABLE, clock=lambda: at)


def item(dynamodb: Any, notice_id: str) -> dict[str, Any]:
    found: dict[str, Any] = dynamodb.get_item(
        TableName=NOTICE_TABLE, Key={"noticeId": {"S": notice_id}}, ConsistentRead=True
    ).get("Item", {})
    return found


def test_a_notice_is_published_once_and_recorded_until_it_expires(dynamodb: Any) -> None:
    sent: list[str] = []

    first = ledger(dynamodb).publish_once("violation/v1", lambda: sent.append("v1"))
    again = ledger(dynamodb, NOW + timedelta(days=3)).publish_once("violation/v1", lambda: sent.append("v1"))

    assert (first, again) == (True, False)
    assert sent == ["v1"]
    record = item(dynamodb, "violation/v1")
    assert record["state"] == {"S": "sent"}
    assert int(record["expiresAt"]["N"]) == int((NOW + NOTICE_RETENTION).timestamp())


def test_different_notices_are_each_published(dynamodb: Any) -> None:
    sent: list[str] = []

    for notice_id in ("violation/v1", "violation/v2", "audit/t1"):
        ledger(dynamodb).publish_once(notice_id, partial(sent.append, notice_id))

    assert sent == ["violation/v1", "violation/v2", "audit/t1"]


def test_a_failed_publish_withdraws_the_claim_so_the_redelivery_publishes(dynamodb: Any) -> None:
    def fail() -> None:
        raise RuntimeError("SNS throttled")

    with pytest.raises(RuntimeError, match="SNS throttled"):
        ledger(dynamodb).publish_once("violation/v1", fail)
    assert item(dynamodb, "violation/v1") == {}

    sent: list[str] = []
    assert ledger(dynamodb).publish_once("violation/v1", lambda: sent.append("v1")) is True
    assert sent == ["v1"]


def test_a_live_claim_of_another_invocation_fails_the_delivery_for_a_retry(dynamodb: Any) -> None:
    in_flight = ledger(dynamodb)
    # The other invocation has claimed the notice and not yet published it.
    assert in_flight._claim("violation/v1", int(NOW.timestamp())) is True

    sent: list[str] = []
    with pytest.raises(NoticeInFlightError, match="violation/v1 is being sent by another invocation"):
        ledger(dynamodb, NOW + CLAIM_LEASE).publish_once("violation/v1", lambda: sent.append("v1"))
    assert sent == []


def test_a_claim_whose_lease_ran_out_is_taken_over(dynamodb: Any) -> None:
    # An invocation claimed the notice, then timed out before publishing.
    assert ledger(dynamodb)._claim("violation/v1", int(NOW.timestamp())) is True

    sent: list[str] = []
    later = NOW + CLAIM_LEASE + timedelta(seconds=1)
    assert ledger(dynamodb, later).publish_once("violation/v1", lambda: sent.append("v1")) is True
    assert sent == ["v1"]
    assert item(dynamodb, "violation/v1")["state"] == {"S": "sent"}

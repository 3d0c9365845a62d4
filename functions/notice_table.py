"""The notice ledger table's schema: the intake component declares the table with these names and the
intake function writes items with them. Plain constants, importable by the Pulumi program without the
functions' run-time dependencies."""

from __future__ import annotations

from typing import Any, Final

NOTICE_ID: Final = "noticeId"
"""Partition key (string): what identifies a notice, e.g. ``violation/<violation id>``."""
EXPIRES_AT: Final = "expiresAt"
"""The TTL attribute (epoch seconds)."""


def create_table_request(table_name: str) -> dict[str, Any]:
    """CreateTable parameters for this schema, for emulated accounts (tests, the drill, benchmarks); the
    stack declares the same table, with its TTL, in the intake component."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": NOTICE_ID, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": NOTICE_ID, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }

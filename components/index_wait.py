"""Waiting for the fleet index to be usable, in plain boto3 (no Pulumi), so it can be tested on its own.

``UpdateIndexingConfiguration`` returns at once while AWS IoT builds the index in the background;
``CreateFleetMetric`` answers ``IndexNotReadyException`` until it is done, and the CloudFormation handler
behind ``AWS::IoT::FleetMetric`` turns that into a failed deploy. Dynamic thing groups query the same
index. ``DescribeIndex`` reports the index as BUILDING, REBUILDING or ACTIVE.

Only ACTIVE counts as ready. REBUILDING follows a change of the indexing configuration, typically the
one that adds the data source or custom field a new metric or group reads; AWS documents no guarantee
that a rebuilding index accepts fleet metrics on the new fields, so the wait is the safe side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from settings.fleet import INDEX_READY_TIMEOUT_KEY

READY_STATUS: Final = "ACTIVE"
"""The IndexStatus (ACTIVE | BUILDING | REBUILDING) in which fleet metrics and dynamic groups work."""
NOT_FOUND: Final = "ResourceNotFoundException"


class IndexWaitError(RuntimeError):
    """The index did not become ACTIVE (or does not exist); the message says which, where and for how long."""

    def __init__(self, index_name: str, region: str, status: str, waited_seconds: float, advice: str) -> None:
        self.index_name = index_name
        self.region = region
        self.status = status
        self.waited_seconds = waited_seconds
        super().__init__(
            f"fleet index {index_name} in {region} is {status} after waiting {waited_seconds:.0f} s; "
            f"fleet metrics and dynamic thing groups need it {READY_STATUS}. {advice}"
        )


def wait_for_index(
    client: Any,
    index_name: str,
    *,
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll ``DescribeIndex`` until ``index_name`` is ACTIVE and return that status; raise
    ``IndexWaitError`` when the index does not exist or is still not ready after ``timeout_seconds``.

    ``client`` is a boto3 IoT client; ``sleep`` and ``clock`` let tests run the wait without waiting.
    """
    region = str(client.meta.region_name)
    started = clock()
    while True:
        try:
            status = str(client.describe_index(indexName=index_name).get("indexStatus", "UNKNOWN"))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != NOT_FOUND:
                raise
            raise IndexWaitError(
                index_name, region, "missing", clock() - started,
                "Fleet indexing is off in this account and region: let this stack manage it "
                "(fleetguard:fleet.indexing.manage: true) or ask the stack that owns it to turn thing "
                "indexing on.",
            ) from error
        if status == READY_STATUS:
            return status
        waited = clock() - started
        if waited >= timeout_seconds:
            raise IndexWaitError(
                index_name, region, status, waited,
                f"Raise {INDEX_READY_TIMEOUT_KEY} or run the update again once "
                f"`aws iot describe-index --index-name {index_name}` reports {READY_STATUS}.",
            )
        sleep(min(poll_seconds, timeout_seconds - waited))

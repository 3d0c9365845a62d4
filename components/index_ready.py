"""``IndexReady``: a Pulumi dynamic resource that holds a deploy until the fleet index is ACTIVE, so the
fleet metrics and dynamic thing groups that depend on it are created against a usable index.

The provider runs inside the Pulumi program's process with boto3's default credential chain (not the
aws provider's configuration), so the region is an explicit input. Pulumi stores the provider in the
stack state by pickling it: it holds no client (one is made per operation) and, unless a test injects a
client factory, nothing but a ``None``.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic_clients import ClientFactory, iot_client
from components.index_wait import wait_for_index

POLL_SECONDS: Final = 15.0
"""DescribeIndex every 15 s: a build takes minutes, and the call is cheap but rate-limited."""
REWAIT_ON: Final = ("indexName", "region", "indexingFingerprint")
"""Inputs whose change means the index may be (re)building: an update waits again. A new timeout alone
does not (the index it was waiting for is already ACTIVE)."""


class IndexReadyArgs(TypedDict):
    index_name: str
    region: pulumi.Input[str]
    timeout_seconds: int
    indexing_fingerprint: str
    """Changes whenever the indexing configuration does, so an update waits for the rebuild."""


class IndexReadyProvider(ResourceProvider):
    """Create and update wait for the index; delete has nothing to remove."""

    serialize_as_secret_always = False

    def __init__(self, client_factory: ClientFactory | None = None) -> None:
        super().__init__()
        self._client_factory = client_factory

    def _wait(self, props: dict[str, Any]) -> dict[str, Any]:
        region = str(props["region"])
        index_name = str(props["indexName"])
        client = (self._client_factory or iot_client)(region)
        status = wait_for_index(
            client, index_name, timeout_seconds=float(props["timeoutSeconds"]), poll_seconds=POLL_SECONDS
        )
        return {
            "indexName": index_name,
            "region": region,
            "timeoutSeconds": props["timeoutSeconds"],
            "indexingFingerprint": props["indexingFingerprint"],
            "indexStatus": status,
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._wait(props)
        return CreateResult(f"{outs['region']}/{outs['indexName']}", outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in REWAIT_ON if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._wait(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing was created: the index belongs to the account (or to the indexing configuration)."""


class IndexReady(Resource, module="fleetguard", name="IndexReady"):
    """Ready once ``DescribeIndex`` reports the index ACTIVE; depend on it to use the index."""

    index_status: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: IndexReadyArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            IndexReadyProvider(),
            name,
            {
                "indexName": args["index_name"],
                "region": args["region"],
                "timeoutSeconds": args["timeout_seconds"],
                "indexingFingerprint": args["indexing_fingerprint"],
                "indexStatus": None,
            },
            opts,
        )

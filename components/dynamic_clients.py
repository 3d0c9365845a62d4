"""boto3 clients for the stack's dynamic resources (``pulumi.dynamic`` providers).

A dynamic provider runs inside the Pulumi program's process with boto3's default credential chain, not the
aws provider's configuration, so every provider takes its region as an explicit input and builds a client
per operation: Pulumi pickles the provider into the stack state, so it must hold no client itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ClientFactory = Callable[[str], Any]
"""Region -> boto3 client of one service; tests inject one that returns a stubbed client."""


def aws_client(service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region`` with standard retries."""
    # Imported here: only a real create, read, update or delete needs boto3, not every run of the program.
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    # Standard retry mode backs off on ThrottlingException instead of failing the operation.
    return boto3.client(service, region_name=region, config=Config(retries={"mode": "standard"}))


def iot_client(region: str) -> Any:
    """The IoT control-plane client the Device Defender and fleet providers use."""
    return aws_client("iot", region)

"""The boto3 clients the handlers use: built on first use, then reused for the life of the execution
environment, all with the same retry policy.

boto3 and botocore are imported inside the factories rather than at module import: importing them costs
a few hundred milliseconds, and keeping handler modules cheap to import keeps cold starts (and tests that
never touch AWS) fast.

Environment:
    AWS_RETRY_MODE      ``standard`` (default) or ``adaptive`` (client-side rate limiting, for bursts of
                        containment at fleet scale).
    IOT_DATA_ENDPOINT   The account's IoT data endpoint (host name or ``https://`` URL). When unset it is
                        resolved once with ``iot:DescribeEndpoint`` (endpoint type ``iot:Data-ATS``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Final

from functions.contract import EnvVar

Client = Any
"""A boto3 client; boto3 publishes no type information."""

RETRY_MODES: Final = ("standard", "adaptive")
MAX_ATTEMPTS: Final = 5
"""botocore's ``max_attempts``: retries after the first try (so up to 6 attempts) for throttling and
transient errors."""


def retry_mode() -> str:
    """The retry mode from AWS_RETRY_MODE, ``standard`` when unset."""
    mode = os.environ.get(EnvVar.AWS_RETRY_MODE, "standard")
    if mode not in RETRY_MODES:
        raise ValueError(f"{EnvVar.AWS_RETRY_MODE}: expected one of {', '.join(RETRY_MODES)}, got {mode!r}")
    return mode


@cache
def client(service: str) -> Client:
    """The shared client for ``service`` (a boto3 service name such as ``iot``)."""
    return _new_client(service)


def iot() -> Client:
    return client("iot")


def ssm_incidents() -> Client:
    return client("ssm-incidents")


@cache
def iot_data() -> Client:
    """The IoT data-plane client, bound to this account's data endpoint."""
    return _new_client("iot-data", endpoint_url=data_endpoint_url())


def data_endpoint_url() -> str:
    """``https://`` URL of the account's IoT data endpoint (from IOT_DATA_ENDPOINT or DescribeEndpoint)."""
    configured = os.environ.get(EnvVar.IOT_DATA_ENDPOINT, "").strip()
    if configured:
        if configured.startswith("https://"):
            return configured
        if "://" in configured:
            raise ValueError(f"{EnvVar.IOT_DATA_ENDPOINT}: expected a host name or an https:// URL, got {configured!r}")
        return f"https://{configured}"
    address: str = iot().describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return f"https://{address}"


def _new_client(service: str, endpoint_url: str | None = None) -> Client:
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - deferred: see the module docstring
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    config = Config(retries={"mode": retry_mode(), "max_attempts": MAX_ATTEMPTS})
    return boto3.client(service, endpoint_url=endpoint_url, config=config)

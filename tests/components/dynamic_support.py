"""What the dynamic provider tests share: a provider wired to a stubbed IoT client, and loading a provider
the way the engine's dynamic provider host does, from the stack state."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
from botocore.stub import Stubber  # type: ignore[import-untyped]
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider

from components.dynamic_clients import ClientFactory
from harness.mockstack import REPO_ROOT

REGION = "eu-west-1"
Provider = TypeVar("Provider", bound=ResourceProvider)


def stubbed_provider(make: Callable[[ClientFactory], Provider]) -> Iterator[tuple[Stubber, list[str], Provider]]:
    """A provider whose every client is one stubbed IoT client; yields the stubber, the regions the provider
    asked clients for, and the provider. Fails when a stubbed response was left unused."""
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    regions: list[str] = []

    def factory(region: str) -> Any:
        regions.append(region)
        return client

    with Stubber(client) as stubber:
        yield stubber, regions, make(factory)
        stubber.assert_no_pending_responses()


def loaded_from_state(provider: ResourceProvider) -> str:
    """Module, class and attributes of ``provider`` after the trip through the stack state, unpickled in a
    fresh interpreter in the project directory (where the engine's dynamic provider host runs); a client
    or a resource created at import time would break that."""
    serialised = serialize_provider(provider)
    assert b"botocore" not in base64.b64decode(serialised)
    script = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.stdin.read()))\n"
        "print(type(provider).__module__, type(provider).__name__, vars(provider))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], input=serialised, capture_output=True, text=True, cwd=REPO_ROOT,
        check=True, timeout=120,
    )
    return str(loaded.stdout).strip()

"""Fixtures for the Lambda function tests: fake AWS credentials, moto-backed IoT clients, a quarantine
group, sample events and an API call recorder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from functions import aws_clients
from functions.contract import EnvVar

# The intake tests' shared builders and fixtures are a helper module, not a test module: pytest rewrites
# their asserts only when told before any test module imports them.
pytest.register_assert_rewrite("tests.functions.intake_support", "tests.functions.engine_support")

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
QUARANTINE_GROUP = "fleetguard-quarantine"
# The generic data-plane host: moto routes it, while an account-specific "<id>-ats.iot..." host is not.
MOTO_IOT_DATA_ENDPOINT = f"data-ats.iot.{REGION}.amazonaws.com"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a fixed region so nothing can reach a real account."""
    for name in ("AWS_PROFILE", EnvVar.AWS_RETRY_MODE, EnvVar.IOT_DATA_ENDPOINT, "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    """The handler client caches start and end empty, so no client outlives its moto mock."""
    aws_clients.client.cache_clear()
    aws_clients.iot_data.cache_clear()
    yield
    aws_clients.client.cache_clear()
    aws_clients.iot_data.cache_clear()


@pytest.fixture
def moto_aws(aws_env: None, fresh_clients: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def iot(moto_aws: None) -> Any:
    return boto3.client("iot", region_name=REGION)


@pytest.fixture
def iot_data(moto_aws: None) -> Any:
    return boto3.client("iot-data", region_name=REGION)


@pytest.fixture
def quarantine_group(iot: Any) -> str:
    iot.create_thing_group(thingGroupName=QUARANTINE_GROUP)
    return QUARANTINE_GROUP


@dataclass
class CallLog:
    """Operation names of the API calls made through the clients it watches, in order."""

    calls: list[str]

    def watch(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def call_log() -> CallLog:
    return CallLog([])


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((EVENTS_DIR / name).read_text())

    return load


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools' inject_lambda_context reads."""

    function_name: str = "fleetguard-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:fleetguard-test"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/fleetguard-test"
    log_stream_name: str = "2026/11/22/[$LATEST]0000"
    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()

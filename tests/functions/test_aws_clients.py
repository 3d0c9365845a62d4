"""The shared boto3 client factories: retry configuration, caching and the IoT data endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions import aws_clients
from functions.contract import EnvVar

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean(aws_env: None, fresh_clients: None) -> None:
    """Fake credentials and empty client caches for every test."""


def test_standard_retries_by_default() -> None:
    retries = aws_clients.iot().meta.config.retries
    # botocore stores max_attempts (retries) as total_max_attempts, which counts the first try too.
    assert retries == {"mode": "standard", "total_max_attempts": aws_clients.MAX_ATTEMPTS + 1}


def test_adaptive_retries_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EnvVar.AWS_RETRY_MODE, "adaptive")
    assert aws_clients.ssm_incidents().meta.config.retries["mode"] == "adaptive"


def test_unsupported_retry_mode_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EnvVar.AWS_RETRY_MODE, "legacy")
    with pytest.raises(ValueError, match="AWS_RETRY_MODE: expected one of standard, adaptive, got 'legacy'"):
        aws_clients.iot()


def test_one_client_per_service_is_reused() -> None:
    assert aws_clients.iot() is aws_clients.iot()
    assert aws_clients.iot() is aws_clients.client("iot")
    assert aws_clients.iot() is not aws_clients.ssm_incidents()


@pytest.mark.parametrize(
    ("configured", "url"),
    [
        ("abc123-ats.iot.eu-west-1.amazonaws.com", "https://abc123-ats.iot.eu-west-1.amazonaws.com"),
        ("https://abc123-ats.iot.eu-west-1.amazonaws.com", "https://abc123-ats.iot.eu-west-1.amazonaws.com"),
    ],
)
def test_data_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch, configured: str, url: str) -> None:
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, configured)
    client = aws_clients.iot_data()
    assert client.meta.endpoint_url == url
    assert client.meta.config.retries["mode"] == "standard"


def test_data_endpoint_with_another_scheme_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EnvVar.IOT_DATA_ENDPOINT, "http://abc123-ats.iot.eu-west-1.amazonaws.com")
    with pytest.raises(ValueError, match="IOT_DATA_ENDPOINT: expected a host name or an https:// URL"):
        aws_clients.iot_data()


def test_data_endpoint_is_resolved_once_with_describe_endpoint(moto_aws: None, call_log: Any) -> None:
    addresses: list[str] = []
    iot = aws_clients.iot()
    call_log.watch(iot)
    iot.meta.events.register(
        "after-call.iot.DescribeEndpoint",
        lambda parsed, **_: addresses.append(parsed["endpointAddress"]),
    )

    first, second = aws_clients.iot_data(), aws_clients.iot_data()

    assert first is second
    assert call_log.calls == ["DescribeEndpoint"]
    assert addresses[0].endswith("-ats.iot.us-east-1.amazonaws.com")
    assert first.meta.endpoint_url == f"https://{addresses[0]}"


@pytest.mark.slow
@pytest.mark.parametrize("module", ["functions.contain", "functions.release"])
def test_importing_a_handler_does_not_import_boto3(module: str) -> None:
    """boto3 costs a few hundred milliseconds to import; it must wait for the first AWS call."""
    probe = f"import sys, {module}; print('boto3' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"

"""One policy pack process per test session, booted and spoken to exactly as the Pulumi engine does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.analyzer_client import PolicyPackProcess


@pytest.fixture(scope="session")
def pack_process() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess() as process:
        yield process


@pytest.fixture
def pack(pack_process: PolicyPackProcess) -> PolicyPackProcess:
    """The running pack, configured with its own defaults (every policy mandatory) for each test, so a
    test that configures it differently cannot leak into the next."""
    pack_process.configure(None)
    return pack_process

"""One policy pack process per phase of ``pulumi up`` per test session, booted and spoken to exactly as
the Pulumi engine does: ``pack`` serves the update (every value known), ``preview_pack`` the preview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.analyzer import PolicyPackProcess
from harness.mockstack import Phase

PACK_FIXTURES = frozenset({"pack_process", "preview_pack_process"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to a running pack (a subprocess) is slow, whichever fixture brings the pack in."""
    for item in items:
        if PACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pack_process() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess(dry_run=False) as process:
        yield process


@pytest.fixture(scope="session")
def preview_pack_process() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess(dry_run=True) as process:
        yield process


@pytest.fixture
def pack(pack_process: PolicyPackProcess) -> PolicyPackProcess:
    """The running update-phase pack, configured with its own defaults (every policy mandatory) for each
    test, so a test that configures it differently cannot leak into the next."""
    pack_process.configure(None)
    return pack_process


@pytest.fixture
def preview_pack(preview_pack_process: PolicyPackProcess) -> PolicyPackProcess:
    """The running preview-phase pack, reset to its defaults like ``pack``."""
    preview_pack_process.configure(None)
    return preview_pack_process


@pytest.fixture
def packs(pack: PolicyPackProcess, preview_pack: PolicyPackProcess) -> dict[Phase, PolicyPackProcess]:
    """Both phases' packs, as ``tools.policy_check`` takes them."""
    return {Phase.PREVIEW: preview_pack, Phase.UPDATE: pack}

"""The drill, run once per test session for every drill test module (a run takes seconds)."""

from __future__ import annotations

import io

import pytest

from drill.observed import DrillReport
from drill.runner import run_drill


@pytest.fixture(scope="session")
def drill() -> tuple[DrillReport, str]:
    """The default drill's report and what it printed."""
    out = io.StringIO()
    report = run_drill(out=out)
    return report, out.getvalue()

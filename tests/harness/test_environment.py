"""Setting the process environment for a run and putting it back afterwards."""

from __future__ import annotations

import os

import pytest

from harness.environment import environment_set


def test_values_are_set_for_the_block_and_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETGUARD_TEST_KEPT", "before")
    monkeypatch.delenv("FLEETGUARD_TEST_NEW", raising=False)

    with environment_set({"FLEETGUARD_TEST_KEPT": "during", "FLEETGUARD_TEST_NEW": "added"}):
        inside = (os.environ["FLEETGUARD_TEST_KEPT"], os.environ["FLEETGUARD_TEST_NEW"])

    assert inside == ("during", "added")
    assert os.environ["FLEETGUARD_TEST_KEPT"] == "before"
    assert "FLEETGUARD_TEST_NEW" not in os.environ


def test_cleared_names_are_unset_for_the_block_and_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETGUARD_TEST_CLEARED", "before")
    monkeypatch.delenv("FLEETGUARD_TEST_ABSENT", raising=False)

    with environment_set({}, cleared=("FLEETGUARD_TEST_CLEARED", "FLEETGUARD_TEST_ABSENT")):
        inside = {name for name in ("FLEETGUARD_TEST_CLEARED", "FLEETGUARD_TEST_ABSENT") if name in os.environ}

    assert inside == set()
    assert os.environ["FLEETGUARD_TEST_CLEARED"] == "before"
    assert "FLEETGUARD_TEST_ABSENT" not in os.environ


def test_the_environment_is_restored_when_the_block_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETGUARD_TEST_KEPT", "before")

    with pytest.raises(RuntimeError), environment_set({"FLEETGUARD_TEST_KEPT": "during"}):
        raise RuntimeError("the run failed")

    assert os.environ["FLEETGUARD_TEST_KEPT"] == "before"

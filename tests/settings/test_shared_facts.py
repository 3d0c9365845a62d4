"""The facts the program shares with the policy pack: one module inside the pack, which the program
loads without the pack's own dependencies."""

from __future__ import annotations

import importlib
import sys

import pytest

from settings import facts

SHARED_MODULE = "policies.fleetguard_policies.shared_facts"


def test_the_program_loads_the_shared_facts_without_pulumi_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The program's virtualenv has no pulumi-policy (requirements.txt); a None entry makes importing it fail.
    monkeypatch.setitem(sys.modules, "pulumi_policy", None)
    for name in [name for name in sys.modules if name == "policies" or name.startswith("policies.")]:
        monkeypatch.delitem(sys.modules, name)

    shared = importlib.import_module(SHARED_MODULE)

    assert shared.CRITICAL_AUDIT_CHECKS == facts.CRITICAL_AUDIT_CHECKS


def test_the_program_reads_the_pack_facts_themselves() -> None:
    shared = importlib.import_module(SHARED_MODULE)

    engine = importlib.import_module("functions.engine_behaviors")

    for name in facts.__all__:
        home = engine if name in facts.ENGINE_FACTS else shared
        assert getattr(facts, name) is getattr(home, name), name

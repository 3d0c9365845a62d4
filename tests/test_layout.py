"""The layout README.md's "Where things live" describes, held against the code: which folder may import
which, and no module of the program, the pack or the harness grows past 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500
OURS = ("settings", "components", "functions", "policies", "harness", "tools", "drill", "benchmarks", "tests",
        "stack_outputs", "examples")
# Folder -> the top-level packages of ours it must never import.
FORBIDDEN = {
    "functions": {"settings", "components", "policies", "harness", "tools", "drill", "benchmarks", "tests",
                  "stack_outputs", "pulumi", "pulumi_aws", "pulumi_aws_native"},
    "settings": {"components", "harness", "tools", "drill", "benchmarks", "tests", "pulumi_aws"},
    "components": {"harness", "tools", "drill", "benchmarks", "tests", "policies"},
    "policies": {"settings", "components", "functions", "harness", "tools", "drill", "benchmarks", "tests",
                 "stack_outputs"},
    "harness": {"tools", "drill", "benchmarks", "tests"},
    "tools": {"drill", "benchmarks", "tests"},
}


def modules(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if ".venv" not in path.parts)


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_each_folder_imports_only_what_the_layout_allows(folder: str) -> None:
    found = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[folder])
        for path in modules(folder)
    }

    assert modules(folder)
    assert not {path: roots for path, roots in found.items() if roots}


def test_settings_reach_the_pack_only_through_facts() -> None:
    reaching = [str(path.relative_to(ROOT)) for path in modules("settings") if "policies" in imported_roots(path)]

    assert reaching == ["settings/facts.py"]


def test_settings_reach_the_functions_only_through_facts_and_only_the_engine_behaviors() -> None:
    # What the Detect engine evaluates is the evaluator's own fact (standard library only); the settings
    # validate against it, so that config and evaluator cannot disagree.
    reaching = [str(path.relative_to(ROOT)) for path in modules("settings") if "functions" in imported_roots(path)]
    imported = {
        node.module for node in ast.walk(ast.parse((ROOT / "settings" / "facts.py").read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("functions")
    }

    assert reaching == ["settings/facts.py"]
    assert imported == {"functions.engine_behaviors"}


def test_no_module_outside_the_tests_is_longer_than_the_limit() -> None:
    folders = [folder for folder in OURS if folder not in {"tests", "stack_outputs"}]
    long_modules = {
        str(path.relative_to(ROOT)): lines
        for folder in folders for path in modules(folder)
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    long_modules.update({
        name: lines for name in ("__main__.py", "stack_outputs.py")
        if (lines := len((ROOT / name).read_text().splitlines())) > MAX_MODULE_LINES
    })

    assert not long_modules

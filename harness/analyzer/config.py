"""Policy config as the engine reconciles it before ``Configure``: schema defaults, then ``all``, then each
policy's own entry, validated against the policies' config schemas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jsonschema  # type: ignore[import-untyped]

from harness.analyzer.model import EnforcementLevel, PackInfo, PolicyConfig

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
POLICY_PACK_DIR: Final = REPO_ROOT / "policies"
POLICY_CONFIG_DIR: Final = POLICY_PACK_DIR / "config"


class PolicyConfigError(ValueError):
    """A policy config file (or dict) the engine would reject."""



def load_policy_config_file(path: Path) -> dict[str, Any]:
    """Read a ``--policy-pack-config`` JSON file (an object keyed by policy name or ``all``)."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from error
    if not isinstance(document, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object keyed by policy name or 'all'")
    return document


def _parse_level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(f"{where}: {value!r} is not an enforcement level (expected one of {allowed})") from None


def reconcile_policy_config(pack: PackInfo, given: Mapping[str, Any] | None) -> dict[str, PolicyConfig]:
    """The config the engine would send to ``Configure``: each policy's schema defaults and declared
    level, then ``all``'s level, then each policy's own entry; validated against the config schemas.
    Unlike the engine, a key naming no policy is an error (a typo would otherwise disable nothing)."""
    result = {
        policy.name: PolicyConfig(
            policy.enforcement_level,
            {key: schema["default"] for key, schema in policy.config_properties.items() if "default" in schema},
        )
        for policy in pack.policies
    }
    given = dict(given or {})
    known_names = {policy.name for policy in pack.policies}
    for key, value in given.items():
        if key != "all" and key not in known_names:
            raise PolicyConfigError(f"policy config key {key!r} names no policy in pack {pack.name}")
        if not isinstance(value, str | dict):
            raise PolicyConfigError(f"policy config {key!r}: expected an enforcement level or an object")
    if "all" in given:
        all_entry = given["all"]
        level_value = all_entry if isinstance(all_entry, str) else all_entry.get("enforcementLevel")
        if level_value is not None:
            level = _parse_level(level_value, "policy config 'all'")
            result = {name: PolicyConfig(level, config.properties) for name, config in result.items()}
    for name, entry in given.items():
        if name == "all":
            continue
        current = result[name]
        if isinstance(entry, str):
            result[name] = PolicyConfig(_parse_level(entry, f"policy config {name!r}"), current.properties)
            continue
        properties = {key: value for key, value in entry.items() if key != "enforcementLevel"}
        level = current.enforcement_level
        if "enforcementLevel" in entry:
            level = _parse_level(entry["enforcementLevel"], f"policy config {name!r}.enforcementLevel")
        result[name] = PolicyConfig(level, {**current.properties, **properties})
    _validate_config(pack, result)
    return result


def _validate_config(pack: PackInfo, config: Mapping[str, PolicyConfig]) -> None:
    problems: list[str] = []
    for policy in pack.policies:
        schema: dict[str, Any] = {"type": "object", "properties": policy.config_properties}
        if policy.config_required:
            schema["required"] = list(policy.config_required)
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(config[policy.name].properties), key=str):
            where = ".".join(str(part) for part in error.absolute_path) or "(config)"
            problems.append(f"{policy.name}: {where}: {error.message}")
    if problems:
        raise PolicyConfigError("invalid policy pack config:\n  " + "\n  ".join(problems))

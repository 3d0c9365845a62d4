"""IAM-style policy documents (IAM and IoT policies share the grammar): parsed into statements."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from .values import UNKNOWN, InvalidProperty, as_list, json_value, known


@dataclass(frozen=True)
class Statement:
    """One statement; action and resource lists may hold ``UNKNOWN`` elements."""

    position: int
    sid: str | None
    effect: Any
    actions: list[Any]
    not_actions: list[Any]
    resources: list[Any]
    not_resources: list[Any]
    condition: Any

    @property
    def label(self) -> str:
        return f"statement {self.sid!r}" if isinstance(self.sid, str) else f"statement #{self.position}"

    @property
    def allows(self) -> bool:
        return bool(known(self.effect, f"{self.label} Effect") == "Allow")

    @property
    def denies(self) -> bool:
        return bool(known(self.effect, f"{self.label} Effect") == "Deny")


def statements(value: Any, what: str) -> list[Statement]:
    """The statements of a policy document given as a JSON string or as structured data."""
    document = json_value(value, what)
    if not isinstance(document, dict) or "Statement" not in document:
        raise InvalidProperty(f"{what} must be a policy document object with a Statement")
    raw = known(document["Statement"], f"{what} Statement")
    parsed: list[Statement] = []
    for position, item in enumerate(as_list(raw), start=1):
        if not isinstance(item, dict):
            raise InvalidProperty(f"{what} statement #{position} must be an object")
        sid = item.get("Sid")
        parsed.append(Statement(
            position=position,
            sid=sid if isinstance(sid, str) else None,
            effect=item.get("Effect"),
            actions=_list(item, "Action"),
            not_actions=_list(item, "NotAction"),
            resources=_list(item, "Resource"),
            not_resources=_list(item, "NotResource"),
            condition=item.get("Condition"),
        ))
    return parsed


def _list(item: dict[str, Any], key: str) -> list[Any]:
    """An element list; a wholly unknown value becomes one unknown element, decided on by the checks."""
    value = item.get(key)
    return [UNKNOWN] if value is UNKNOWN else as_list(value)


def wildcard_actions(statement: Statement, what: str) -> list[str]:
    """The statement's actions that use a wildcard (``*``, ``iot:*``, ``iot:Get*``...)."""
    found: list[str] = []
    for action in statement.actions:
        text = known(action, f"{what} {statement.label} Action")
        if isinstance(text, str) and ("*" in text or "?" in text):
            found.append(text)
    return found


def grants(statement: Statement, action: str, what: str) -> bool:
    """Whether one of the statement's action patterns covers ``action``."""
    return _covers(statement.actions, action, f"{what} {statement.label} Action")


def excludes(statement: Statement, action: str, what: str) -> bool:
    """Whether the statement's NotAction patterns leave ``action`` out."""
    return _covers(statement.not_actions, action, f"{what} {statement.label} NotAction")


def _covers(patterns: list[Any], action: str, what: str) -> bool:
    # IAM action matching is case-insensitive.
    for pattern in patterns:
        text = known(pattern, what)
        if isinstance(text, str) and fnmatch.fnmatchcase(action.lower(), text.lower()):
            return True
    return False


def resource_texts(statement: Statement) -> list[str]:
    """The statement's resource strings; an unknown resource is an ARN some resource outputs, never a
    literal wildcard, so it is left out of wildcard checks."""
    return [resource for resource in statement.resources if resource is not UNKNOWN and isinstance(resource, str)]

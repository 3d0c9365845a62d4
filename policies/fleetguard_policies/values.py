"""Reading resource properties the way the engine presents them to a policy pack.

At preview, a property computed by another resource (an ARN, a key id) is *unknown*. pulumi-policy
hands rules a proxy that raises ``UnknownValueError`` when such a value is read, and in ``Remediate``
it hands over the raw sentinel strings instead. ``plain`` copies proxied properties into ordinary dicts
and lists with every unknown replaced by ``UNKNOWN``, so a rule judges everything it can and says
explicitly which value it could not decide on (``CannotVerify``); ``building`` turns that into an
advisory at preview and a violation at the update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

_UNKNOWN_SENTINELS: Final = frozenset({
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_STRING_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_OBJECT_VALUE,
})


class _Unknown:
    """A value the engine will only know after the resources it depends on are created."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = _Unknown()


class InvalidProperty(Exception):  # noqa: N818 (the rule reports it as a violation)
    """A property is present but malformed (a policy document that is not JSON, a number that is not)."""


class CannotVerify(Exception):  # noqa: N818 (reads as the rule's verdict, not an error kind)
    """A rule needs a value that is unknown, so it cannot decide: advisory at preview, where the update will
    know the value; a violation at the update, where nothing will."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def plain(value: Any) -> Any:
    """A copy of ``value`` as plain dicts, lists and scalars, with unknowns replaced by ``UNKNOWN``."""
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key in value:
            try:
                copied[key] = plain(value[key])
            except UnknownValueError:
                copied[key] = UNKNOWN
        return copied
    if isinstance(value, Sequence):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def to_engine(value: Any) -> Any:
    """Plain data back into what the engine accepts: ``UNKNOWN`` becomes the engine's unknown sentinel."""
    if value is UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {key: to_engine(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_engine(item) for item in value]
    return value


def path(value: Any, *keys: str | int) -> Any:
    """The value at ``keys`` inside plain data: ``None`` when any step is missing, ``UNKNOWN`` when a
    step is unknown."""
    current = value
    for key in keys:
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(key, str) and isinstance(current, dict):
            current = current.get(key)
        elif isinstance(key, int) and isinstance(current, list) and -len(current) <= key < len(current):
            current = current[key]
        else:
            return None
    return current


def known(value: Any, what: str) -> Any:
    """``value`` itself, or ``CannotVerify`` naming ``what`` when it is unknown."""
    if value is UNKNOWN:
        raise CannotVerify(f"{what} is unknown")
    return value


def has_value(value: Any) -> bool:
    """Set to something: an unknown counts (it will hold whatever the producing resource outputs),
    ``None`` and empty strings, lists and maps do not."""
    if value is UNKNOWN:
        return True
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def json_value(value: Any, what: str) -> Any:
    """A JSON-bearing property (a policy document, a redrive policy): parsed when it is a string,
    as-is when the program passed structured data. ``CannotVerify`` when it is unknown;
    ``InvalidProperty`` naming ``what`` when it is not valid JSON."""
    known(value, what)
    if isinstance(value, str):
        try:
            return plain(json.loads(value))
        except json.JSONDecodeError as error:
            raise InvalidProperty(f"{what} is not valid JSON ({error.msg} at line {error.lineno})") from error
    return value


def as_list(value: Any) -> list[Any]:
    """Policy-document fields allow one value or a list of values; always a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_number(value: Any, what: str) -> float:
    """A numeric property (the engine sends every number as a float); ``InvalidProperty`` naming
    ``what`` for anything else."""
    known(value, what)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidProperty(f"{what} must be a number, got {value!r}")
    return float(value)

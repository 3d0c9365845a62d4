"""A small validating reader over stack configuration values.

Every accessor records a problem (naming the full key path, the bad value and what is allowed) instead
of raising at once, so one ``pulumi up`` reports every mistake in the stack file together; ``ConfigError``
is raised by the loader before any resource is registered.

Each accessor also records the key it read, its type, default and allowed values in ``Problems.schema``;
``tools/config_reference.py`` turns that record into the README's configuration reference, so the
documentation is generated from the validation code itself and cannot drift from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` lists each mistake with its key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid fleetguard stack configuration ({len(self.problems)} problem(s)):\n{listing}")


@dataclass(frozen=True)
class KeySchema:
    """What the validator accepts at one key path (list elements as ``[]``, map entries as ``<NAME>``)."""

    kind: str
    default: Any = None
    allowed: str = ""


class Problems:
    """Collects configuration problems across the whole load, and the shape of every key read."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.schema: dict[str, KeySchema] = {}

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


_MISSING: Any = object()


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _choices(allowed: Sequence[Any]) -> str:
    return ", ".join(str(item) for item in allowed)


def _describe(allowed: Sequence[Any] | None = None, pattern: str | None = None) -> str:
    """What a string key accepts, for the configuration reference."""
    if allowed:
        return _choices(allowed)
    return f"matches {pattern}" if pattern else ""


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is None and maximum is None:
        return ""
    return f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"


class Node:
    """A config value at a key path (``fleetguard:detect.ruleBehaviors[2].operator``)."""

    def __init__(self, value: Any, path: str, problems: Problems, schema_path: str | None = None) -> None:
        self.value = value
        self.path = path
        self.problems = problems
        self.schema_path = schema_path or path

    def record(self, kind: str, default: Any = None, allowed: str = "") -> None:
        """Note this key's shape for the configuration reference (the first description wins)."""
        self.problems.schema.setdefault(self.schema_path, KeySchema(kind, default, allowed))

    @property
    def missing(self) -> bool:
        return self.value is _MISSING or self.value is None

    def fail(self, expected: str) -> None:
        """Record that this value is wrong, showing it and what was expected."""
        got = "missing" if self.missing else f"got {_show(self.value)}"
        self.problems.add(self.path, f"{expected} ({got})")

    def child(self, key: str) -> Node:
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return Node(value, f"{self.path}.{key}", self.problems, f"{self.schema_path}.{key}")

    def entry(self, key: str, placeholder: str) -> Node:
        """A child whose key is a name the user picks from a set (documented as ``<placeholder>``)."""
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return Node(value, f"{self.path}.{key}", self.problems, f"{self.schema_path}.<{placeholder}>")

    def with_value(self, value: Any) -> Node:
        """The same key path holding a default value (e.g. built-in behaviors when the key is absent)."""
        return Node(value, self.path, self.problems, self.schema_path)

    def check_keys(self, allowed: Sequence[str]) -> None:
        """Unknown keys are mistakes (usually typos), not something to ignore silently."""
        if isinstance(self.value, dict):
            for key in self.value:
                if key not in allowed:
                    self.problems.add(
                        f"{self.path}.{key}", f"unknown key; expected one of {_choices(sorted(allowed))}"
                    )

    def mapping(self, *, allowed_keys: Sequence[str] | None = None) -> Node:
        """Assert this is an object (a missing one reads as empty)."""
        self.record("object", allowed=", ".join(allowed_keys or ()))
        if self.missing:
            return self.with_value({})
        if not isinstance(self.value, dict):
            self.fail("expected an object")
            return self.with_value({})
        if allowed_keys is not None:
            self.check_keys(allowed_keys)
        return self

    def items(self, placeholder: str = "name") -> Iterator[tuple[str, Node]]:
        if isinstance(self.value, dict):
            for key in self.value:
                yield key, self.entry(key, placeholder)

    def elements(self) -> list[Node]:
        """Assert this is a list (a missing one reads as empty) and return its elements."""
        self.record("list")
        if self.missing:
            return []
        if not isinstance(self.value, list):
            self.fail("expected a list")
            return []
        return [
            Node(item, f"{self.path}[{index}]", self.problems, f"{self.schema_path}[]")
            for index, item in enumerate(self.value)
        ]

    def boolean(self, default: bool) -> bool:
        self.record("boolean", default)
        if self.missing:
            return default
        if isinstance(self.value, bool):
            return self.value
        self.fail("expected true or false")
        return default

    def integer(
        self,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        allowed: Sequence[int] | None = None,
    ) -> int | None:
        self.record("integer", default, _choices(allowed) if allowed else _bounds(minimum, maximum))
        if self.missing:
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.fail("expected a whole number")
            return default
        if allowed is not None and self.value not in allowed:
            self.fail(f"expected one of {_choices(allowed)}")
            return default
        if (minimum is not None and self.value < minimum) or (maximum is not None and self.value > maximum):
            low = "" if minimum is None else str(minimum)
            high = "" if maximum is None else str(maximum)
            self.fail(f"expected a whole number in {low}..{high}")
            return default
        return self.value

    def string(
        self,
        default: str | None = None,
        *,
        allowed: Sequence[str] | None = None,
        pattern: str | None = None,
        min_length: int = 0,
    ) -> str | None:
        self.record("string", default, _describe(allowed, pattern))
        if self.missing:
            return default
        if not isinstance(self.value, str):
            self.fail("expected a string")
            return default
        if allowed is not None and self.value not in allowed:
            self.fail(f"expected one of {_choices(allowed)}")
            return default
        if pattern is not None and not re.fullmatch(pattern, self.value):
            self.fail(f"expected a string matching {pattern}")
            return default
        if len(self.value) < min_length:
            self.fail(f"expected at least {min_length} characters")
            return default
        return self.value

    def bounded_integer(self, default: int, minimum: int, maximum: int) -> int:
        """A whole number in ``minimum..maximum`` that always has a value: ``default`` when it is missing
        or wrong (the problem is recorded). 0 stays 0 where the range allows it."""
        value = self.integer(default, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def required_integer(self, **bounds: Any) -> int:
        if self.missing:
            self.record("integer (required)", None, _bounds(bounds.get("minimum"), bounds.get("maximum")))
            self.fail("required")
            return 0
        value = self.integer(**bounds)
        return 0 if value is None else value

    def required_string(self, **rules: Any) -> str:
        self.record("string (required)", None, _describe(rules.get("allowed"), rules.get("pattern")))
        if self.missing:
            self.fail("required")
            return ""
        return self.string(**rules) or ""

    def string_list(self, *, allowed: Sequence[str] | None = None, pattern: str | None = None) -> list[str]:
        self.record("list of strings", None, _describe(allowed, pattern))
        values = [element.string(allowed=allowed, pattern=pattern) for element in self.elements()]
        return [value for value in values if value is not None]

    def string_map(self) -> dict[str, str]:
        self.record("map of strings")
        result: dict[str, str] = {}
        for key, node in self.mapping().items("key"):
            value = node.string()
            if value is not None:
                result[key] = value
        return result

    def fail_duplicates(self, values: Sequence[str], what: str) -> None:
        """Record each value that appears more than once among ``values`` (names that must be unique)."""
        for duplicate in sorted({value for value in values if values.count(value) > 1}):
            self.fail(f"{what} {duplicate!r} is used more than once")

    def each(self, parse: Callable[[Node], T | None]) -> list[T]:
        """Parse every list element, dropping the ones that failed (their problems are recorded)."""
        parsed = (parse(element) for element in self.elements())
        return [item for item in parsed if item is not None]


def root(config: dict[str, Any], key: str, problems: Problems, namespace: str) -> Node:
    """A top-level config key, with JSON already decoded by the caller."""
    return Node(config.get(key, _MISSING), f"{namespace}:{key}", problems)

"""A small validating reader over stack configuration values.

Every accessor records a problem (naming the full key path, the bad value and what is allowed) instead
of raising at once, so one ``pulumi up`` reports every mistake in the stack file together; ``ConfigError``
is raised by the loader before any resource is registered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` lists each mistake with its key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid fleetguard stack configuration ({len(self.problems)} problem(s)):\n{listing}")


class Problems:
    """Collects configuration problems across the whole load."""

    def __init__(self) -> None:
        self.items: list[str] = []

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


class Node:
    """A config value at a key path (``fleetguard:detect.ruleBehaviors[2].operator``)."""

    def __init__(self, value: Any, path: str, problems: Problems) -> None:
        self.value = value
        self.path = path
        self.problems = problems

    @property
    def missing(self) -> bool:
        return self.value is _MISSING or self.value is None

    def fail(self, expected: str) -> None:
        """Record that this value is wrong, showing it and what was expected."""
        got = "missing" if self.missing else f"got {_show(self.value)}"
        self.problems.add(self.path, f"{expected} ({got})")

    def child(self, key: str) -> Node:
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return Node(value, f"{self.path}.{key}", self.problems)

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
        if self.missing:
            return Node({}, self.path, self.problems)
        if not isinstance(self.value, dict):
            self.fail("expected an object")
            return Node({}, self.path, self.problems)
        if allowed_keys is not None:
            self.check_keys(allowed_keys)
        return self

    def items(self) -> Iterator[tuple[str, Node]]:
        if isinstance(self.value, dict):
            for key, value in self.value.items():
                yield key, Node(value, f"{self.path}.{key}", self.problems)

    def elements(self) -> list[Node]:
        """Assert this is a list (a missing one reads as empty) and return its elements."""
        if self.missing:
            return []
        if not isinstance(self.value, list):
            self.fail("expected a list")
            return []
        return [Node(item, f"{self.path}[{index}]", self.problems) for index, item in enumerate(self.value)]

    def boolean(self, default: bool) -> bool:
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
        if self.missing:
            if default is None and (minimum is not None or allowed is not None):
                return None
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

    def required_integer(self, **bounds: Any) -> int:
        if self.missing:
            self.fail("required")
            return 0
        value = self.integer(**bounds)
        return 0 if value is None else value

    def string(
        self,
        default: str | None = None,
        *,
        allowed: Sequence[str] | None = None,
        pattern: str | None = None,
        min_length: int = 0,
    ) -> str | None:
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

    def required_string(self, **rules: Any) -> str:
        if self.missing:
            self.fail("required")
            return ""
        return self.string(**rules) or ""

    def string_list(self, *, allowed: Sequence[str] | None = None, pattern: str | None = None) -> list[str]:
        values = [element.string(allowed=allowed, pattern=pattern) for element in self.elements()]
        return [value for value in values if value is not None]

    def string_map(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for key, node in self.mapping().items():
            value = node.string()
            if value is not None:
                result[key] = value
        return result

    def each(self, parse: Callable[[Node], T | None]) -> list[T]:
        """Parse every list element, dropping the ones that failed (their problems are recorded)."""
        parsed = (parse(element) for element in self.elements())
        return [item for item in parsed if item is not None]


def root(config: dict[str, Any], key: str, problems: Problems, namespace: str) -> Node:
    """A top-level config key, with JSON already decoded by the caller."""
    return Node(config.get(key, _MISSING), f"{namespace}:{key}", problems)

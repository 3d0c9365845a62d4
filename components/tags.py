"""The stack's tags in the form aws-native resources take them: a list of key/value objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

TagT = TypeVar("TagT")


def native_tags(tags: Mapping[str, str], tag_type: Callable[..., TagT]) -> list[TagT]:
    """``tags`` as ``tag_type(key=..., value=...)`` objects (``aws_native.TagArgs``, or
    ``aws_native.CreateOnlyTagArgs`` where the schema makes tags create-only), sorted by key so the
    inputs do not change with the order the tags were written in."""
    return [tag_type(key=key, value=value) for key, value in sorted(tags.items())]

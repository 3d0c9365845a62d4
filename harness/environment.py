"""Process environment for running handlers outside Lambda (the drill, the benchmarks): set what a run
needs, and put every variable back as it was afterwards, so an in-process run leaves no trace."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environment_set(values: Mapping[str, str], cleared: Iterable[str] = ()) -> Iterator[None]:
    """``values`` set and ``cleared`` unset for the block; afterwards each of them is restored (or unset
    again when it was unset before)."""
    cleared = tuple(cleared)
    saved = {name: os.environ.get(name) for name in (*values, *cleared)}
    for name in cleared:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

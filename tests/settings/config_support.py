"""The smallest valid config the settings tests build on, and the problems a broken one is refused with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pytest

from settings import ConfigError, load_settings

BASE: Final[dict[str, Any]] = {"environment": "test", "owner": "iot-security"}
"""Only the keys every stack must set."""


def config_problems(sections: Mapping[str, Any]) -> list[str]:
    """What ``load_settings`` refuses ``BASE`` plus these top-level sections with (it must refuse them)."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **sections})
    return caught.value.problems


def only_config_problem(sections: Mapping[str, Any]) -> str:
    """The one problem of ``BASE`` plus these sections; fails when there are none or several."""
    problems = config_problems(sections)
    assert len(problems) == 1, problems
    return problems[0]

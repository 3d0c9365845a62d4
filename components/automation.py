"""SSM Automation documents as the YAML SSM stores: multi-line text (Markdown instructions, an embedded
script) as literal blocks, so the console shows it as written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


def _literal_when_multiline(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


class AutomationDumper(yaml.SafeDumper):
    """A safe dumper whose strings with line breaks become literal blocks."""


AutomationDumper.add_representer(str, _literal_when_multiline)


def automation_yaml(document: Mapping[str, Any]) -> str:
    """``document`` (an Automation document, schema 0.3) as YAML, keys in the order written."""
    return yaml.dump(dict(document), Dumper=AutomationDumper, sort_keys=False, width=120)

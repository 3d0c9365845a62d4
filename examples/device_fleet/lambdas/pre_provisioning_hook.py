"""Pre-provisioning hook: fleet provisioning by claim registers a device only when its serial number has
the factory's format, so a leaked claim certificate cannot register things of arbitrary names."""

from __future__ import annotations

import re
from typing import Any

SERIAL_NUMBER = re.compile(r"^[A-Z0-9]{8,16}$")


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    parameters = event.get("parameters") or {}
    serial = parameters.get("SerialNumber") if isinstance(parameters, dict) else None
    return {"allowProvisioning": isinstance(serial, str) and bool(SERIAL_NUMBER.match(serial))}

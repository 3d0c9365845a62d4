"""Custom authorizer for devices that connect to the fleet's domain with a signed token.

AWS IoT verifies the token's signature against the authorizer's public key before it calls this
function, so the token (the thing name) is already authentic here; the function only turns it into
the device's policy: connect as itself, publish its own telemetry, receive its own commands.
"""

from __future__ import annotations

import json
import re
from typing import Any

# AWS IoT thing names; the principal id AWS IoT accepts is stricter (letters and digits only).
THING_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
PRINCIPAL_UNSAFE = re.compile(r"[^a-zA-Z0-9]")
SESSION_SECONDS = 24 * 3600
REFRESH_SECONDS = 300


def device_policy(thing: str, region: str, account: str) -> dict[str, Any]:
    prefix = f"arn:aws:iot:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": [f"{prefix}:client/{thing}"]},
            {"Effect": "Allow", "Action": ["iot:Publish"], "Resource": [f"{prefix}:topic/fleet/{thing}/telemetry"]},
            {"Effect": "Allow", "Action": ["iot:Subscribe"],
             "Resource": [f"{prefix}:topicfilter/fleet/{thing}/commands"]},
            {"Effect": "Allow", "Action": ["iot:Receive"], "Resource": [f"{prefix}:topic/fleet/{thing}/commands"]},
        ],
    }


def denied() -> dict[str, Any]:
    return {"isAuthenticated": False, "principalId": "denied", "disconnectAfterInSeconds": 300,
            "refreshAfterInSeconds": REFRESH_SECONDS, "policyDocuments": []}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = event.get("token")
    # Defensive: with signing on, AWS IoT rejects a bad signature before invoking the function.
    if event.get("signatureVerified") is not True or not isinstance(token, str) or not THING_NAME.match(token):
        return denied()
    _, _, _, region, account, _ = str(context.invoked_function_arn).split(":", 5)
    return {
        "isAuthenticated": True,
        "principalId": PRINCIPAL_UNSAFE.sub("", token) or "device",
        "disconnectAfterInSeconds": SESSION_SECONDS,
        "refreshAfterInSeconds": REFRESH_SECONDS,
        "policyDocuments": [json.dumps(device_policy(token, region, account))],
    }

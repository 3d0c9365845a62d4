"""The pack's name and every rule it serves."""

from __future__ import annotations

from pulumi_policy import Policy

from . import audit, containment, detect, detect_engine, encryption, iam, iot, logging, response, securityhub, tagging

PACK_NAME = "fleetguard"


def all_policies() -> list[Policy]:
    """Every rule, in the order a preview lists them."""
    return [
        *iot.policies(),
        *audit.policies(),
        *detect.policies(),
        *detect_engine.policies(),
        *containment.policies(),
        *logging.policies(),
        *encryption.policies(),
        *iam.policies(),
        *response.policies(),
        *securityhub.policies(),
        *tagging.policies(),
    ]

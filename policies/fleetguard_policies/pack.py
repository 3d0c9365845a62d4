"""The pack's name and every rule it serves."""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    audit,
    certificates,
    containment,
    detect,
    domains,
    encryption,
    iam,
    iot,
    jobs,
    logging,
    provisioning,
    response,
    securityhub,
    tagging,
)

PACK_NAME = "fleetguard"


def all_policies() -> list[Policy]:
    """Every rule, in the order a preview lists them."""
    return [
        *iot.policies(),
        *audit.policies(),
        *detect.policies(),
        *containment.policies(),
        *logging.policies(),
        *encryption.policies(),
        *iam.policies(),
        *response.policies(),
        *securityhub.policies(),
        *tagging.policies(),
        *domains.policies(),
        *provisioning.policies(),
        *jobs.policies(),
        *certificates.policies(),
    ]

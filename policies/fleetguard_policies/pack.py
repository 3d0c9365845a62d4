"""The pack's name and every rule it serves."""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    audit,
    authorizers,
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
    role_aliases,
    securityhub,
    tagging,
    topic_rules,
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
        *topic_rules.policies(),
        *authorizers.policies(),
        *role_aliases.policies(),
        *domains.policies(),
        *provisioning.policies(),
        *jobs.policies(),
        *certificates.policies(),
    ]

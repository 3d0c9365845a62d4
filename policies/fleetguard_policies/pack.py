"""The pack's name and every rule it serves."""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    audit,
    audit_suppressions,
    authorizers,
    certificates,
    containment,
    detect,
    detect_engine,
    domains,
    encryption,
    iam,
    iot,
    jobs,
    logging,
    opscenter,
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
        *detect_engine.policies(),
        *containment.policies(),
        *logging.policies(),
        *encryption.policies(),
        *iam.policies(),
        *response.policies(),
        *opscenter.policies(),
        *securityhub.policies(),
        *tagging.policies(),
        *topic_rules.policies(),
        *authorizers.policies(),
        *role_aliases.policies(),
        *domains.policies(),
        *provisioning.policies(),
        *jobs.policies(),
        *certificates.policies(),
        *audit_suppressions.policies(),
    ]

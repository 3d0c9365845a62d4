"""Amazon Resource Names built from their parts, so no component spells the ``arn:`` layout by hand.

An ARN is ``arn:<partition>:<service>:<region>:<account>:<resource>``. Global services leave the region
empty (IAM, S3, Incident Manager), and resources no account owns leave the account empty (S3 objects,
Security Hub products); AWS-managed IAM policies name ``aws`` as their account.
"""

from __future__ import annotations

import pulumi


def arn_prefix(
    partition: pulumi.Input[str],
    service: str,
    *,
    region: pulumi.Input[str] | None,
    account: pulumi.Input[str] | None,
) -> pulumi.Output[str]:
    """``arn:<partition>:<service>:<region>:<account>``: every resource of one service in one place.
    ``None`` leaves the region or account empty."""
    return pulumi.Output.format(
        "arn:{0}:{1}:{2}:{3}", partition, service, "" if region is None else region,
        "" if account is None else account,
    )


def arn(
    partition: pulumi.Input[str],
    service: str,
    resource: pulumi.Input[str],
    *,
    region: pulumi.Input[str] | None,
    account: pulumi.Input[str] | None,
) -> pulumi.Output[str]:
    """The ARN of ``resource`` (``thing/*``, ``role/name``, ``log-group:name``: as the service writes it).
    ``region`` and ``account`` are required so that leaving one empty is a choice the call states."""
    return pulumi.Output.format(
        "{0}:{1}", arn_prefix(partition, service, region=region, account=account), resource
    )

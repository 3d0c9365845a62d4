"""The inputs every component shares: where it deploys, and the tags its resources carry."""

from __future__ import annotations

from typing import TypedDict

import pulumi


class DeploymentArgs(TypedDict):
    """Where a component deploys and how it tags what it creates; each component's args extend these."""

    account_id: pulumi.Input[str]
    """The account the stack deploys to: part of ARNs, and the account service roles and resource policies
    admit AWS services for (the confused-deputy guard)."""
    region: pulumi.Input[str]
    """The region the stack deploys to: part of ARNs, service endpoints and the names of account-global
    resources (IAM roles) that must not collide across regions."""
    partition: pulumi.Input[str]
    """The AWS partition (aws, aws-cn, aws-us-gov) for ARNs."""
    tags: dict[str, str]
    """Tags for every taggable child (left off where a service does not accept them)."""


def deployment_of(args: DeploymentArgs) -> DeploymentArgs:
    """Only the shared inputs of a component's args, to hand on to a child component."""
    return {
        "account_id": args["account_id"],
        "region": args["region"],
        "partition": args["partition"],
        "tags": args["tags"],
    }

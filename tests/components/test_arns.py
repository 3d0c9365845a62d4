"""The ARN builder the components share: the six fields in AWS's order, empty where a service has no
region or a resource no account, and Pulumi Outputs accepted in every field."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pulumi
import pytest

from components.arns import arn, arn_prefix
from components.iam import aws_managed_policy_arn


def resolved(build: Callable[[], pulumi.Output[str]]) -> str | None:
    """The value of an Output built (and awaited) on its own event loop, outside any stack."""

    async def value() -> str | None:
        return await build().future()

    return asyncio.run(value())


def test_a_regional_resource_names_partition_service_region_account_and_resource() -> None:
    assert resolved(lambda: arn("aws", "iot", "thing/*", region="eu-west-1", account="123456789012")) == (
        "arn:aws:iot:eu-west-1:123456789012:thing/*"
    )


@pytest.mark.parametrize(("region", "account", "expected"), [
    (None, "123456789012", "arn:aws-cn:iam::123456789012:root"),
    ("us-gov-west-1", None, "arn:aws-cn:iam:us-gov-west-1::root"),
    (None, None, "arn:aws-cn:iam:::root"),
])
def test_an_absent_region_or_account_leaves_its_field_empty(
    region: str | None, account: str | None, expected: str
) -> None:
    assert resolved(lambda: arn("aws-cn", "iam", "root", region=region, account=account)) == expected


def test_every_field_may_be_an_output() -> None:
    def build() -> pulumi.Output[str]:
        return arn(
            pulumi.Output.from_input("aws-us-gov"), "ssm", pulumi.Output.concat("document/", "runbook"),
            region=pulumi.Output.from_input("us-gov-east-1"), account=pulumi.Output.from_input("210987654321"),
        )

    assert resolved(build) == "arn:aws-us-gov:ssm:us-gov-east-1:210987654321:document/runbook"


def test_the_prefix_is_the_arn_without_its_resource() -> None:
    assert resolved(lambda: arn_prefix("aws", "iot", region="us-east-1", account="123456789012")) == (
        "arn:aws:iot:us-east-1:123456789012"
    )


def test_aws_managed_policies_are_owned_by_the_aws_account() -> None:
    assert resolved(lambda: aws_managed_policy_arn("aws", "service-role/AWSIoTDeviceDefenderAudit")) == (
        "arn:aws:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit"
    )

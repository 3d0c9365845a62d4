"""Security Hub: when the stack uses it, Device Defender's audit and detect findings flow into it."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, Severity

from .building import Controls, Report, StackContext, report_cannot_verify, stack_policy
from .shared_facts import DEVICE_DEFENDER_PRODUCTS
from .values import UNKNOWN, CannotVerify

HUB_ACCOUNT: Final = "aws:securityhub/account:Account"
PRODUCT_SUBSCRIPTION: Final = "aws:securityhub/productSubscription:ProductSubscription"


def check_integrations(ctx: StackContext, report: Report) -> None:
    subscriptions = ctx.of_type(PRODUCT_SUBSCRIPTION)
    if not subscriptions and not ctx.of_type(HUB_ACCOUNT):
        ctx.not_applicable("the stack does not enable Security Hub")
    subscribed: list[str] = []
    unknown = []
    for subscription in subscriptions:
        arn = subscription.props.get("productArn")
        if arn is UNKNOWN:
            unknown.append(subscription)
        elif isinstance(arn, str):
            subscribed.append(arn)
    missing = [product for product in DEVICE_DEFENDER_PRODUCTS.values()
               if not any(arn.endswith(f"::product/aws/{product}") for arn in subscribed)]
    if missing and unknown:
        for subscription in unknown:
            report_cannot_verify(report, CannotVerify(f"productArn of {subscription.name}"), subscription.urn)
    elif missing:
        report("Security Hub is enabled but has no product subscription for "
               + ", ".join(f"arn:<partition>:securityhub:<region>::product/aws/{product}" for product in missing))


def policies() -> list[Policy]:
    return [
        stack_policy(
            name="securityhub-device-defender-integrations",
            description="When Security Hub is enabled, both Device Defender integrations (audit, detect) are on.",
            severity=Severity.MEDIUM,
            controls=Controls(
                pci=("10.4.1.1",),
                hipaa=("164.308(a)(1)(ii)(D)",),
                nist=("SI-4(16)", "IR-4(4)"),
            ),
            remediation_steps=(
                "Add aws:securityhub/productSubscription:ProductSubscription resources for "
                "product/aws/iot-device-defender-audit and product/aws/iot-device-defender-detect."
            ),
            check=check_integrations,
        ),
    ]

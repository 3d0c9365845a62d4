"""The Security Hub stack rule over gRPC: both Device Defender integrations when the hub is on."""

from __future__ import annotations

import pytest

from harness.analyzer import PolicyPackProcess
from tests.policies.stack_builders import (
    compliant_stack,
    kms_key,
    resource,
    security_hub,
    topic,
    unknown,
    violations,
    without,
)

RULE = "securityhub-device-defender-integrations"
HUB_TYPES = ("aws:securityhub/account:Account", "aws:securityhub/productSubscription:ProductSubscription")


def test_both_integrations_pass(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack(compliant_stack())

    assert not violations(result, RULE)
    assert RULE not in result.not_applicable


@pytest.mark.parametrize(("products", "missing"), [
    ((), ["iot-device-defender-audit", "iot-device-defender-detect"]),
    (("iot-device-defender-audit",), ["iot-device-defender-detect"]),
    (("iot-device-defender-detect",), ["iot-device-defender-audit"]),
])
def test_a_missing_integration_is_blocked(pack: PolicyPackProcess, products: tuple[str, ...],
                                          missing: list[str]) -> None:
    stack = [*without(compliant_stack(), *HUB_TYPES), *security_hub(products)]

    [message] = violations(pack.analyze_stack(stack), RULE)

    for product in missing:
        assert f"product/aws/{product}" in message
    for product in set(products):
        assert product not in message


def test_another_vendors_product_of_the_same_name_does_not_count(pack: PolicyPackProcess) -> None:
    lookalike = resource("aws:securityhub/productSubscription:ProductSubscription", "lookalike", {
        "productArn": "arn:aws:securityhub:us-east-1::product/acme/iot-device-defender-detect"})
    stack = [*without(compliant_stack(), *HUB_TYPES), *security_hub(("iot-device-defender-audit",)), lookalike]

    assert violations(pack.analyze_stack(stack), RULE)


def test_an_unknown_product_arn_fails_closed(pack: PolicyPackProcess) -> None:
    pending = resource("aws:securityhub/productSubscription:ProductSubscription", "pending",
                       {"productArn": unknown()})
    stack = [*without(compliant_stack(), *HUB_TYPES), *security_hub(("iot-device-defender-audit",)), pending]

    [message] = violations(pack.analyze_stack(stack), RULE)

    assert message.startswith("cannot verify at the update")


def test_the_rule_does_not_apply_without_security_hub(pack: PolicyPackProcess) -> None:
    assert RULE in pack.analyze_stack(without(compliant_stack(), *HUB_TYPES)).not_applicable
    assert RULE in pack.analyze_stack([kms_key(), topic()]).not_applicable

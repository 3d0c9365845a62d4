"""The audit suppression rule over gRPC: a reason of 10+ characters, an expiry within maxDays of the deploy
unless indefinite, and unknowns judged like every other rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from components.audit_suppression import AuditSuppression
from harness.analyzer import POLICY_CONFIG_DIR, AnalyzerResource, EnforcementLevel, PolicyPackProcess
from policies.fleetguard_policies.audit_suppressions import AUDIT_SUPPRESSION
from tests.policies.stack_builders import REGION, changed, kms_key, resource, unknown, violations

RULE = "audit-suppression-justified"
REASON = "Lab bench devices share one test certificate"


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def suppression(**inputs: Any) -> AnalyzerResource:
    return resource(AUDIT_SUPPRESSION, "fleetguard-test-audit-suppression-0a1b2c3d4e5f", {
        "checkName": "DEVICE_CERTIFICATE_SHARED_CHECK",
        "resourceIdentifier": {"deviceCertificateId": "a1" * 32},
        "expirationDate": in_days(30),
        "suppressIndefinitely": False,
        "description": REASON,
        "region": REGION,
        **inputs,
    })


def test_the_rule_governs_the_type_the_sdk_gives_the_dynamic_resource() -> None:
    assert f"pulumi-python:{AuditSuppression._resource_type_name}" == AUDIT_SUPPRESSION


def test_a_reasoned_suppression_within_the_window_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(suppression(expirationDate=in_days(90)))

    assert not result.diagnostics
    assert RULE not in result.not_applicable


def test_an_indefinite_suppression_with_a_reason_passes(pack: PolicyPackProcess) -> None:
    assert not violations(pack.analyze(suppression(expirationDate=None, suppressIndefinitely=True)), RULE)


@pytest.mark.parametrize("reason", ["lab", "  lab      ", "", None])
def test_a_reason_under_ten_characters_is_a_violation(pack: PolicyPackProcess, reason: Any) -> None:
    [message] = violations(pack.analyze(suppression(description=reason)), RULE)

    assert message.startswith("a suppression of DEVICE_CERTIFICATE_SHARED_CHECK has description")
    assert message.endswith("the reason must be at least 10 characters")


def test_an_indefinite_suppression_without_a_reason_is_a_violation(pack: PolicyPackProcess) -> None:
    indefinite = suppression(expirationDate=None, suppressIndefinitely=True, description="ok")

    [message] = violations(pack.analyze(indefinite), RULE)

    assert message.startswith("an indefinite suppression of DEVICE_CERTIFICATE_SHARED_CHECK has description 'ok'")


def test_an_expiry_beyond_the_default_ninety_days_is_a_violation(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(suppression(expirationDate=in_days(91))), RULE)

    assert message == (f"expirationDate {in_days(91)} is more than 90 days after today; the latest allowed is "
                       f"{in_days(90)}")


def test_the_window_is_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({RULE: {"maxDays": 30}})

    assert violations(pack.analyze(suppression(expirationDate=in_days(31))), RULE)
    assert not violations(pack.analyze(suppression(expirationDate=in_days(30))), RULE)


def test_an_expiry_a_refresh_read_back_as_an_instant_is_judged_by_its_day(pack: PolicyPackProcess) -> None:
    assert violations(pack.analyze(suppression(expirationDate=f"{in_days(120)}T17:00:00+00:00")), RULE)
    assert not violations(pack.analyze(suppression(expirationDate=f"{in_days(20)}T17:00:00+00:00")), RULE)


@pytest.mark.parametrize("expiry", [None, "someday", 1782864000])
def test_a_dated_suppression_without_a_date_is_a_violation(pack: PolicyPackProcess, expiry: Any) -> None:
    [message] = violations(pack.analyze(suppression(expirationDate=expiry)), RULE)

    assert "is not a date and the suppression is not indefinite" in message


def test_an_unknown_reason_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    pending = changed(suppression(), description=unknown())

    at_preview = preview_pack.analyze(pending)
    [at_update] = violations(pack.analyze(pending), RULE)

    assert [(item.policy_name, item.enforcement_level) for item in at_preview.diagnostics] == [
        (RULE, EnforcementLevel.ADVISORY)]
    assert at_update.startswith("cannot verify at the update: description is unknown")


def test_the_rule_does_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    assert RULE in pack.analyze(kms_key()).not_applicable


@pytest.mark.parametrize(("environment", "level"), [
    ("dev", EnforcementLevel.ADVISORY), ("prod", EnforcementLevel.MANDATORY),
])
def test_advisory_in_dev_and_mandatory_in_prod(
    pack: PolicyPackProcess, environment: str, level: EnforcementLevel,
) -> None:
    pack.configure(POLICY_CONFIG_DIR / f"{environment}.json")

    [diagnostic] = [item for item in pack.analyze(suppression(description="lab")).diagnostics
                    if item.policy_name == RULE]

    assert diagnostic.enforcement_level is level

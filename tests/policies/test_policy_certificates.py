"""CA certificate rule over gRPC: auto-registration only through a restricting template."""

from __future__ import annotations

import pytest

from harness.analyzer import EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import (
    DEVICE_POLICY_DOCUMENT,
    ca_certificate,
    kms_key,
    provisioning_body,
    unknown,
    violations,
)

REGISTRATION = "ca-certificate-registration-restricted"


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_a_ca_without_auto_registration_passes(pack: PolicyPackProcess, native: bool) -> None:
    result = pack.analyze(ca_certificate(native=native))

    assert not result.diagnostics
    assert REGISTRATION not in result.not_applicable


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_auto_registration_through_a_template_passes(pack: PolicyPackProcess, native: bool) -> None:
    restricted = ca_certificate(native=native, auto_registration=True,
                                template=provisioning_body(DEVICE_POLICY_DOCUMENT))

    assert not pack.analyze(restricted).diagnostics


@pytest.mark.parametrize(("native", "switch"), [(False, "allowAutoRegistration"), (True, "autoRegistrationStatus")],
                         ids=["classic", "native"])
def test_unrestricted_auto_registration_is_blocked(pack: PolicyPackProcess, native: bool, switch: str) -> None:
    [message] = violations(pack.analyze(ca_certificate(native=native, auto_registration=True)), REGISTRATION)

    assert message.startswith(f"{switch} turns on auto-registration with no registrationConfig template")


def test_a_named_template_restricts_too(pack: PolicyPackProcess) -> None:
    named = ca_certificate(auto_registration=True, registrationConfig={"templateName": "fleet-jitp"})

    assert not violations(pack.analyze(named), REGISTRATION)


def test_unrestricted_auto_registration_can_be_allowed(pack: PolicyPackProcess) -> None:
    pack.configure({REGISTRATION: {"allowAutoRegistration": True}})

    assert not violations(pack.analyze(ca_certificate(native=True, auto_registration=True)), REGISTRATION)


def test_an_unknown_switch_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    pending = ca_certificate(native=True, autoRegistrationStatus=unknown())

    at_preview = preview_pack.analyze(pending)
    [at_update] = violations(pack.analyze(pending), REGISTRATION)

    assert [(item.policy_name, item.enforcement_level) for item in at_preview.diagnostics] == [
        (REGISTRATION, EnforcementLevel.ADVISORY)]
    assert at_update.startswith("cannot verify at the update: autoRegistrationStatus is unknown")


def test_the_ca_rule_does_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    assert REGISTRATION in pack.analyze(kms_key()).not_applicable

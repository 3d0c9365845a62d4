"""Domain configuration rules over gRPC: TLS 1.2 floor, signed custom authorizers, server certificates."""

from __future__ import annotations

import pytest

from harness.analyzer import AnalyzeResult, EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import (
    ACM_ARN,
    acm_certificate,
    authorizer,
    changed,
    domain_configuration,
    kms_key,
    unknown,
    violations,
)

TLS = "domain-configuration-tls12"
SIGNING = "domain-configuration-authorizer-signing"
CERTIFICATES = "domain-configuration-server-certificates"
CLASSIC_AUTHORIZER = "aws:iot/authorizer:Authorizer"
NATIVE_AUTHORIZER = "aws-native:iot:Authorizer"


def levels(result: AnalyzeResult, rule: str) -> list[EnforcementLevel]:
    return [item.enforcement_level for item in result.diagnostics if item.policy_name == rule]


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_a_tls12_custom_domain_with_a_signed_authorizer_passes(pack: PolicyPackProcess, native: bool) -> None:
    token_authorizer = authorizer(NATIVE_AUTHORIZER if native else CLASSIC_AUTHORIZER)
    domain = domain_configuration(native=native, authorizer_resource=token_authorizer)

    resource_result = pack.analyze(domain)
    stack_result = pack.analyze_stack([token_authorizer, domain, acm_certificate()])

    assert not violations(resource_result, TLS)
    assert TLS not in resource_result.not_applicable
    assert not violations(stack_result, SIGNING)
    assert not violations(stack_result, CERTIFICATES)
    assert not {SIGNING, CERTIFICATES} & set(stack_result.not_applicable)


@pytest.mark.parametrize("policy", ["IoTSecurityPolicy_TLS12_1_0_2016_01", "IoTSecurityPolicy_TLS12_1_0_2015_01"])
def test_a_security_policy_that_accepts_tls10_is_blocked(pack: PolicyPackProcess, policy: str) -> None:
    domain = domain_configuration(tlsConfig={"securityPolicy": policy})

    [message] = violations(pack.analyze(domain), TLS)

    assert f"tlsConfig.securityPolicy is {policy!r}" in message


def test_a_domain_without_a_security_policy_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(domain_configuration(native=True, tlsConfig=None)), TLS)

    assert "tlsConfig.securityPolicy is not set" in message


def test_the_allowed_security_policies_are_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({TLS: {"allowedSecurityPolicies": ["IoTSecurityPolicy_TLS13_1_3_2022_10"]}})

    [message] = violations(pack.analyze(domain_configuration()), TLS)

    assert "IoTSecurityPolicy_TLS13_1_2_2022_10" in message


def test_an_unknown_security_policy_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    domain = domain_configuration(tlsConfig={"securityPolicy": unknown()})

    at_preview = preview_pack.analyze(domain)
    [at_update] = violations(pack.analyze(domain), TLS)

    assert levels(at_preview, TLS) == [EnforcementLevel.ADVISORY]
    assert at_update.startswith("cannot verify at the update")


@pytest.mark.parametrize("native", [False, True], ids=["classic", "native"])
def test_a_domain_using_an_authorizer_without_signing_is_blocked(pack: PolicyPackProcess, native: bool) -> None:
    unsigned = authorizer(NATIVE_AUTHORIZER if native else CLASSIC_AUTHORIZER, signingDisabled=True,
                          tokenKeyName=None, tokenSigningPublicKeys=None)
    domain = domain_configuration(native=native, authorizer_resource=unsigned)

    [message] = violations(pack.analyze_stack([unsigned, domain]), SIGNING)

    assert "token signing disabled" in message


def test_an_authorizer_is_found_by_its_name_too(pack: PolicyPackProcess) -> None:
    unsigned = authorizer(signingDisabled=True)
    domain = domain_configuration(authorizerConfig={"defaultAuthorizerName": unsigned.inputs["name"]})

    assert violations(pack.analyze_stack([unsigned, domain]), SIGNING)


def test_an_authorizer_the_stack_does_not_define_is_blocked_unless_owned_elsewhere(pack: PolicyPackProcess) -> None:
    domain = domain_configuration(authorizerConfig={"defaultAuthorizerName": "platform-authorizer"})

    [message] = violations(pack.analyze_stack([domain]), SIGNING)
    pack.configure({SIGNING: {"authorizersOwnedElsewhere": ["platform-authorizer"]}})
    vouched = pack.analyze_stack([domain])

    assert "'platform-authorizer', which this stack does not define" in message
    assert not violations(vouched, SIGNING)


def test_a_domain_without_an_authorizer_needs_none(pack: PolicyPackProcess) -> None:
    result = pack.analyze_stack([domain_configuration(), acm_certificate()])

    assert not violations(result, SIGNING)
    assert SIGNING not in result.not_applicable


def test_an_unknown_authorizer_name_is_advisory_at_preview_and_blocks_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    domain = domain_configuration(authorizerConfig={"defaultAuthorizerName": unknown()})

    at_preview = preview_pack.analyze_stack([domain])
    [at_update] = violations(pack.analyze_stack([domain]), SIGNING)

    assert levels(at_preview, SIGNING) == [EnforcementLevel.ADVISORY]
    assert "cannot verify at the update" in at_update


def test_a_custom_domain_without_a_server_certificate_is_blocked(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze_stack([domain_configuration(serverCertificateArns=None)]), CERTIFICATES)

    assert "no serverCertificateArns" in message


def test_more_than_one_server_certificate_is_blocked(pack: PolicyPackProcess) -> None:
    domain = domain_configuration(serverCertificateArns=[ACM_ARN, ACM_ARN.replace("0f1e", "1f1e")])

    [message] = violations(pack.analyze_stack([domain]), CERTIFICATES)

    assert "accepts exactly one" in message


def test_an_aws_managed_domain_needs_no_certificate(pack: PolicyPackProcess) -> None:
    domain = domain_configuration(domainName=None, serverCertificateArns=None)

    assert not violations(pack.analyze_stack([domain]), CERTIFICATES)


def test_a_private_ca_certificate_needs_a_validation_certificate(pack: PolicyPackProcess) -> None:
    private = acm_certificate(private_ca=True)
    domain = domain_configuration()
    validated = changed(domain, validationCertificateArn=ACM_ARN.replace("0f1e", "2f1e"))

    [message] = violations(pack.analyze_stack([private, domain]), CERTIFICATES)

    assert "issued by a private CA, without a validationCertificateArn" in message
    assert not violations(pack.analyze_stack([private, validated]), CERTIFICATES)


def test_ocsp_stapling_is_required_when_configured(pack: PolicyPackProcess) -> None:
    pack.configure({CERTIFICATES: {"requireOcspCheck": True}})
    stapled = domain_configuration(native=True, serverCertificateConfig={"enableOcspCheck": True})

    [native_message] = violations(pack.analyze_stack([domain_configuration(native=True)]), CERTIFICATES)
    [classic_message] = violations(pack.analyze_stack([domain_configuration()]), CERTIFICATES)

    assert "enableOcspCheck to true" in native_message
    assert "only aws-native:iot:DomainConfiguration has serverCertificateConfig" in classic_message
    assert not violations(pack.analyze_stack([stapled]), CERTIFICATES)


def test_unknown_server_certificates_are_advisory_at_preview(preview_pack: PolicyPackProcess) -> None:
    result = preview_pack.analyze_stack([domain_configuration(serverCertificateArns=unknown())])

    assert levels(result, CERTIFICATES) == [EnforcementLevel.ADVISORY]


def test_domain_rules_do_not_apply_to_other_types_or_stacks(pack: PolicyPackProcess) -> None:
    resource_result = pack.analyze(kms_key())
    stack_result = pack.analyze_stack([kms_key()])

    assert TLS in resource_result.not_applicable
    assert {SIGNING, CERTIFICATES} <= set(stack_result.not_applicable)

"""Domain configurations: the endpoints devices connect to. A TLS floor of 1.2, custom authorizers only
with token signing, and a custom domain's server certificate set up so devices can trust it."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .authorizers import AUTHORIZER_NAME_PROPERTY
from .building import (
    Controls,
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    each,
    of_types,
    option,
    resource_policy,
    stack_policy,
)
from .controls import TOKEN_AUTHENTICATION
from .values import as_list, has_value, known, path

DOMAIN_CONFIGURATIONS: Final = ("aws:iot/domainConfiguration:DomainConfiguration", "aws-native:iot:DomainConfiguration")
ACM_CERTIFICATES: Final = ("aws:acm/certificate:Certificate", "aws-native:certificatemanager:Certificate")
NATIVE_DOMAIN_CONFIGURATION: Final = "aws-native:iot:DomainConfiguration"

TLS12_OR_LATER_POLICIES: Final = (
    "IoTSecurityPolicy_TLS13_1_3_2022_10",
    "IoTSecurityPolicy_TLS13_1_2_2022_10",
    "IoTSecurityPolicy_TLS12_1_2_2022_10",
)
"""AWS IoT Core's predefined security policies whose lowest protocol is TLS 1.2 or 1.3 (the name reads
``TLS<highest>_<lowest>``); the TLS12_1_0 ones still accept TLS 1.0 and 1.1."""

TLS_SCHEMA = PolicyConfigSchema(properties={
    "allowedSecurityPolicies": {
        "type": "array",
        "items": {"type": "string", "pattern": "^IoTSecurityPolicy_"},
        "minItems": 1,
        "uniqueItems": True,
        "description": "AWS IoT Core security policies a domain configuration may use (tlsConfig.securityPolicy).",
        "default": list(TLS12_OR_LATER_POLICIES),
    },
})
AUTHORIZER_SCHEMA = PolicyConfigSchema(properties={
    "authorizersOwnedElsewhere": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "uniqueItems": True,
        "description": ("Names of custom authorizers defined outside this stack whose token signing their "
                        "owner vouches for; any other authorizer a domain uses must be defined in the stack."),
        "default": [],
    },
})
CERTIFICATE_SCHEMA = PolicyConfigSchema(properties={
    "requireOcspCheck": {
        "type": "boolean",
        "description": ("Custom domains must staple OCSP responses for their server certificate "
                        "(serverCertificateConfig.enableOcspCheck, which only aws-native can set)."),
        "default": False,
    },
})

TRANSPORT_CONTROLS = Controls(
    pci=("4.2.1",),
    hipaa=("164.312(e)(1)", "164.312(e)(2)(ii)"),
    nist=("SC-8", "SC-8(1)", "SC-13"),
)


def check_tls_policy(ctx: ResourceContext, report: Report) -> None:
    allowed = option(ctx.config, TLS_SCHEMA, "allowedSecurityPolicies")
    policy = known(path(ctx.props, "tlsConfig", "securityPolicy"), "tlsConfig.securityPolicy")
    if policy is None:
        report("tlsConfig.securityPolicy is not set, so the endpoint keeps whatever policy it has (older "
               f"domains accept TLS 1.0); set one of {', '.join(allowed)}")
    elif policy not in allowed:
        report(f"tlsConfig.securityPolicy is {policy!r}; use one of {', '.join(allowed)} (TLS 1.2 or later)")


def _same_name(value: Any, name: Any) -> bool:
    return isinstance(value, str) and isinstance(name, str) and value == name


def check_authorizer_signing(ctx: StackContext, report: Report) -> None:
    domains = ctx.require(*DOMAIN_CONFIGURATIONS, reason=(
        "domain-configuration-authorizer-signing applies to stacks with IoT domain configurations"))
    authorizers = ctx.of_type(*AUTHORIZER_NAME_PROPERTY)
    owned_elsewhere = set(option(ctx.config, AUTHORIZER_SCHEMA, "authorizersOwnedElsewhere"))

    def check(domain: StackResource) -> None:
        name = path(domain.props, "authorizerConfig", "defaultAuthorizerName")
        if name is None:
            return
        used = [authorizer for authorizer in authorizers
                if domain.depends_on("authorizerConfig", authorizer)
                or _same_name(name, authorizer.props.get(AUTHORIZER_NAME_PROPERTY[authorizer.type]))]
        if not used:
            known(name, f"authorizerConfig.defaultAuthorizerName of domain configuration {domain.name}")
            if name not in owned_elsewhere:
                report(f"domain configuration {domain.name} uses custom authorizer {name!r}, which this stack "
                       "does not define, so its token signing cannot be checked; define it here or list it in "
                       "authorizersOwnedElsewhere", domain.urn)
            return
        for authorizer in used:
            signing_disabled = authorizer.props.get("signingDisabled")
            if known(signing_disabled, f"signingDisabled of authorizer {authorizer.name}") is True:
                report(f"domain configuration {domain.name} uses custom authorizer {authorizer.name}, which has "
                       "token signing disabled (signingDisabled: true), so any caller can present a forged token",
                       domain.urn)

    each(domains, report, check)


def _private_ca_certificates(ctx: StackContext, domain: StackResource, arns: list[Any]) -> list[StackResource]:
    """The stack's ACM certificates the domain serves that a private CA issues (certificateAuthorityArn):
    devices cannot trust them through a public CA, so AWS IoT needs a publicly trusted validation certificate
    to prove the domain is ours."""
    issued: list[StackResource] = []
    for certificate in ctx.of_type(*ACM_CERTIFICATES):
        serves = domain.depends_on("serverCertificateArns", certificate) or any(
            _same_name(arn, certificate.props.get("arn")) for arn in arns)
        if serves and has_value(certificate.props.get("certificateAuthorityArn")):
            issued.append(certificate)
    return issued


def check_server_certificates(ctx: StackContext, report: Report) -> None:
    domains = ctx.require(*DOMAIN_CONFIGURATIONS, reason=(
        "domain-configuration-server-certificates applies to stacks with IoT domain configurations"))
    require_ocsp = option(ctx.config, CERTIFICATE_SCHEMA, "requireOcspCheck")

    def check(domain: StackResource) -> None:
        if not has_value(domain.props.get("domainName")):
            return  # an AWS-managed domain: AWS serves its own certificate
        arns = known(domain.props.get("serverCertificateArns"), f"serverCertificateArns of {domain.name}")
        arns = as_list(arns)
        if not arns:
            report(f"domain configuration {domain.name} has a custom domainName but no serverCertificateArns; "
                   "give it the ACM certificate for that name", domain.urn)
            return
        if len(arns) > 1:
            report(f"domain configuration {domain.name} lists {len(arns)} serverCertificateArns; AWS IoT "
                   "accepts exactly one", domain.urn)
        private = _private_ca_certificates(ctx, domain, arns)
        if private and not has_value(domain.props.get("validationCertificateArn")):
            report(f"domain configuration {domain.name} serves {private[0].name}, issued by a private CA, "
                   "without a validationCertificateArn; AWS IoT needs a publicly trusted certificate for the "
                   "domain to prove ownership", domain.urn)
        if require_ocsp:
            if domain.type != NATIVE_DOMAIN_CONFIGURATION:
                report(f"domain configuration {domain.name} cannot enable OCSP stapling: only "
                       f"{NATIVE_DOMAIN_CONFIGURATION} has serverCertificateConfig", domain.urn)
            elif known(path(domain.props, "serverCertificateConfig", "enableOcspCheck"),
                       f"serverCertificateConfig.enableOcspCheck of {domain.name}") is not True:
                report(f"domain configuration {domain.name} does not staple OCSP responses; set "
                       "serverCertificateConfig.enableOcspCheck to true", domain.urn)

    each(domains, report, check)


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="domain-configuration-tls12",
            description="IoT domain configurations set a TLS security policy whose lowest protocol is TLS 1.2.",
            severity=Severity.HIGH,
            controls=TRANSPORT_CONTROLS,
            remediation_steps=(
                "Set tlsConfig.securityPolicy to IoTSecurityPolicy_TLS13_1_2_2022_10 (TLS 1.2 and 1.3) or "
                "IoTSecurityPolicy_TLS13_1_3_2022_10 (TLS 1.3 only); check first that every device's TLS "
                "stack negotiates TLS 1.2."
            ),
            governs=of_types(*DOMAIN_CONFIGURATIONS),
            check=check_tls_policy,
            config_schema=TLS_SCHEMA,
        ),
        stack_policy(
            name="domain-configuration-authorizer-signing",
            description="A domain configuration's default custom authorizer verifies token signatures.",
            severity=Severity.HIGH,
            controls=TOKEN_AUTHENTICATION,
            remediation_steps=(
                "Define the authorizer named in authorizerConfig.defaultAuthorizerName in the stack with "
                "signingDisabled false, a tokenKeyName and tokenSigningPublicKeys; an authorizer another team "
                "owns goes in authorizersOwnedElsewhere once its signing is confirmed."
            ),
            check=check_authorizer_signing,
            config_schema=AUTHORIZER_SCHEMA,
        ),
        stack_policy(
            name="domain-configuration-server-certificates",
            description=("A custom-domain configuration serves one ACM server certificate, with a validation "
                         "certificate when a private CA issued it."),
            severity=Severity.MEDIUM,
            controls=Controls(pci=("4.2.1", "4.2.1.1"), hipaa=("164.312(e)(1)",), nist=("SC-12", "SC-17")),
            remediation_steps=(
                "Import or request the domain's certificate in ACM and pass its ARN as the only "
                "serverCertificateArns entry; for a certificate from a private CA also pass a publicly trusted "
                "validationCertificateArn for the same domain; set serverCertificateConfig.enableOcspCheck "
                "where requireOcspCheck is on."
            ),
            check=check_server_certificates,
            config_schema=CERTIFICATE_SCHEMA,
        ),
    ]


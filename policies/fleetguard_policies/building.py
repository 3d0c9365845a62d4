"""How every fleetguard rule is declared: metadata (severity, control mapping, remediation steps,
config schema) plus a check over plain property data that fails closed on unknown values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pulumi_policy import (
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceRemediation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .values import CannotVerify, InvalidProperty, plain, to_engine

FRAMEWORK_NAME = "PCI DSS v4.0 / HIPAA Security Rule / NIST SP 800-53 rev 5"
FRAMEWORK_VERSION = "PCI DSS 4.0; 45 CFR 164 Subpart C; SP 800-53 Rev. 5"

IOT_TYPE_PREFIXES = ("aws:iot/", "aws-native:iot:")

FAIL_CLOSED_HINT = (
    "fleetguard policies fail closed: build the value from names known at preview (for example an ARN "
    "formatted from the account, region and resource name) or deploy the dependency first"
)


@dataclass(frozen=True)
class Controls:
    """The controls a rule evidences, by framework."""

    pci: tuple[str, ...]
    hipaa: tuple[str, ...]
    nist: tuple[str, ...]

    def framework(self) -> PolicyComplianceFramework:
        reference = "; ".join([
            "PCI DSS v4.0 " + ", ".join(self.pci),
            "HIPAA " + ", ".join(f"45 CFR {section}" for section in self.hipaa),
            "NIST SP 800-53r5 " + ", ".join(self.nist),
        ])
        return PolicyComplianceFramework(
            name=FRAMEWORK_NAME,
            version=FRAMEWORK_VERSION,
            reference=reference,
        )

    def tags(self) -> list[str]:
        """Machine-readable control ids, one tag per control, for filtering in Pulumi Cloud."""
        return (
            [f"pci-dss-v4.0:{control}" for control in self.pci]
            + [f"hipaa:{control}" for control in self.hipaa]
            + [f"nist-800-53-r5:{control}" for control in self.nist]
        )


@dataclass(frozen=True)
class ResourceContext:
    """What a resource rule sees: plain inputs (unknowns as ``UNKNOWN``), its config and identity."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    config: Mapping[str, Any]
    provider_props: dict[str, Any]


@dataclass(frozen=True)
class StackResource:
    """One resource as a stack rule sees it (plain properties, references by URN)."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    parent_urn: str | None
    property_dependencies: dict[str, frozenset[str]] = field(default_factory=dict)

    def depends_on(self, prop: str, other: StackResource) -> bool:
        """Whether ``prop``'s value was computed from ``other`` (how references look at preview, when
        the referenced ARN or name is still unknown)."""
        return other.urn in self.property_dependencies.get(prop, frozenset())


class StackContext:
    """What a stack rule sees: the stack's resources, with plain properties built only for the types
    the rule asks for."""

    def __init__(self, args: StackValidationArgs) -> None:
        self._args = args
        self.config: Mapping[str, Any] = args.get_config()

    def not_applicable(self, reason: str) -> None:
        """Tell the engine the rule does not apply to this stack (raises)."""
        self._args.not_applicable(reason)

    def require_iot(self, rule: str) -> None:
        """Not applicable to stacks that register no AWS IoT resource (this rule is about IoT fleets)."""
        if not any(resource.resource_type.startswith(IOT_TYPE_PREFIXES) for resource in self._args.resources):
            self.not_applicable(f"{rule} applies to stacks that manage AWS IoT resources; this one has none")

    def of_type(self, *types: str) -> list[StackResource]:
        wanted = set(types)
        return [_stack_resource(resource) for resource in self._args.resources if resource.resource_type in wanted]


def _stack_resource(resource: PolicyResource) -> StackResource:
    return StackResource(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=plain(resource.props),
        parent_urn=resource.parent.urn if resource.parent is not None else None,
        property_dependencies={
            prop: frozenset(dependency.urn for dependency in dependencies)
            for prop, dependencies in resource.property_dependencies.items()
        },
    )


Report = Callable[..., None]
"""``report(message)`` for resource rules; ``report(message, urn)`` for stack rules."""
ResourceCheck = Callable[[ResourceContext, Report], None]
ResourceFix = Callable[[ResourceContext], dict[str, Any] | None]
StackCheck = Callable[[StackContext, Report], None]


def report_cannot_verify(report: Report, error: CannotVerify | UnknownValueError, urn: str | None = None) -> None:
    what = error.what if isinstance(error, CannotVerify) else error.message
    message = f"cannot verify at preview: {what}; {FAIL_CLOSED_HINT}"
    if urn is None:
        report(message)
    else:
        report(message, urn)


def resource_policy(
    *,
    name: str,
    description: str,
    severity: Severity,
    controls: Controls,
    remediation_steps: str,
    governs: Callable[[str, Mapping[str, Any]], bool],
    check: ResourceCheck,
    config_schema: PolicyConfigSchema | None = None,
    fix: ResourceFix | None = None,
) -> ResourceValidationPolicy:
    """A resource policy that is not applicable to types it does not govern and fails closed."""

    def context(args: ResourceValidationArgs) -> ResourceContext:
        if not governs(args.resource_type, args.props):
            args.not_applicable(f"{name} does not govern {args.resource_type}")  # raises
        provider_props = plain(args.provider.props) if args.provider is not None else {}
        return ResourceContext(
            type=args.resource_type,
            name=args.name,
            urn=args.urn,
            props=plain(args.props),
            config=args.get_config(),
            provider_props=provider_props,
        )

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        ctx = context(args)
        try:
            check(ctx, report_violation)
        except (CannotVerify, UnknownValueError) as error:
            report_cannot_verify(report_violation, error)
        except InvalidProperty as error:
            report_violation(str(error), None)

    def remediate(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
        assert fix is not None
        changes = fix(context(args))
        if not changes:
            return None
        # Writing through the SDK's proxy keeps unknown and secret values of untouched properties.
        props: Any = args.props  # the SDK's proxy accepts writes
        for key, value in changes.items():
            props[key] = to_engine(value)
        return cast(Mapping[str, Any], props)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        # The SDK runs synchronous remediations too; its annotation only names the async form.
        remediate=cast(ResourceRemediation, remediate) if fix is not None else None,
        severity=severity,
        framework=controls.framework(),
        tags=controls.tags(),
        remediation_steps=remediation_steps,
        config_schema=config_schema,
    )


def stack_policy(
    *,
    name: str,
    description: str,
    severity: Severity,
    controls: Controls,
    remediation_steps: str,
    check: StackCheck,
    config_schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A stack policy whose check reports per resource; an unknown value it cannot decide on is
    reported as a violation (against the stack) rather than skipped."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            check(StackContext(args), report_violation)
        except (CannotVerify, UnknownValueError) as error:
            report_cannot_verify(report_violation, error)
        except InvalidProperty as error:
            report_violation(str(error), None)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        severity=severity,
        framework=controls.framework(),
        tags=controls.tags(),
        remediation_steps=remediation_steps,
        config_schema=config_schema,
    )


def of_types(*types: str) -> Callable[[str, Mapping[str, Any]], bool]:
    """A ``governs`` predicate for a fixed set of type tokens."""
    wanted = frozenset(types)
    return lambda resource_type, _props: resource_type in wanted


def option(config: Mapping[str, Any], schema: PolicyConfigSchema, key: str) -> Any:
    """A config value; the schema default when the engine did not supply one (it normally fills
    defaults itself before ``Configure``)."""
    if key in config:
        return config[key]
    return schema.properties[key].get("default")


def each(items: Iterable[StackResource], report: Report, check: Callable[[StackResource], None]) -> None:
    """Run ``check`` per resource so one unknown value fails closed for that resource only."""
    for item in items:
        try:
            check(item)
        except (CannotVerify, UnknownValueError) as error:
            report_cannot_verify(report, error, item.urn)
        except InvalidProperty as error:
            report(str(error), item.urn)

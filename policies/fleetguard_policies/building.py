"""How every fleetguard rule is declared: metadata (severity, control mapping, remediation steps,
config schema) plus a check over plain property data, and what a rule's verdict is when a value it needs
is unknown.

``pulumi up`` runs the pack twice: over the preview, where every value a provider computes (an ARN, an
id) is still unknown, and over the update, where every value is known. A rule that cannot decide at
preview because of an unknown reports it as advisory, once per resource and rule, as pulumi-policy itself
does when a policy reads an unknown; the update then enforces the rule on the real value. A value that is
still unknown at the update has nothing left to resolve it, so the rule fails closed there: a violation
at the rule's own enforcement level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
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
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from .values import CannotVerify, InvalidProperty, plain, to_engine

FRAMEWORK_NAME = "PCI DSS v4.0 / HIPAA Security Rule / NIST SP 800-53 rev 5"
FRAMEWORK_VERSION = "PCI DSS 4.0; 45 CFR 164 Subpart C; SP 800-53 Rev. 5"

IOT_TYPE_PREFIXES = ("aws:iot/", "aws-native:iot:")

DRY_RUN_VARIABLE = "PULUMI_DRY_RUN"
"""How the engine tells a policy pack which run it serves: ``true`` for a preview, ``false`` for the update
(set for every policy pack process the engine boots, one per run)."""

PREVIEW_NOTE = "the update, where it is known, enforces this policy"
FAIL_CLOSED_HINT = (
    "nothing is left to resolve it at the update, so fleetguard fails closed: pass the value itself, or "
    "deploy what computes it first"
)


def at_preview() -> bool:
    """Whether this run is a preview. Without the engine's word it is not: an unknown then fails closed."""
    return os.environ.get(DRY_RUN_VARIABLE, "").strip().lower() == "true"


class NotKnownAtPreviewError(UnknownValueError):
    """Raised out of a rule at preview so the SDK reports it the way it reports any unknown a policy
    reads: one advisory diagnostic for the resource and rule, which does not block the preview."""

    def __init__(self, what: str) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.message = f"{what}; {PREVIEW_NOTE}"


def _what(error: CannotVerify | UnknownValueError) -> str:
    return error.what if isinstance(error, CannotVerify) else error.message


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
        # One pass over the stack per rule: resources by type (with their place in the stack), and each
        # type's plain copies made once however often the rule asks for it.
        self._by_type: dict[str, list[tuple[int, PolicyResource]]] = {}
        for position, resource in enumerate(args.resources):
            self._by_type.setdefault(resource.resource_type, []).append((position, resource))
        self._converted: dict[str, list[tuple[int, StackResource]]] = {}

    def not_applicable(self, reason: str) -> None:
        """Tell the engine the rule does not apply to this stack (raises)."""
        self._args.not_applicable(reason)

    def require_iot(self, rule: str) -> None:
        """Not applicable to stacks that register no AWS IoT resource (this rule is about IoT fleets)."""
        if not any(resource_type.startswith(IOT_TYPE_PREFIXES) for resource_type in self._by_type):
            self.not_applicable(f"{rule} applies to stacks that manage AWS IoT resources; this one has none")

    def require(self, *types: str, reason: str) -> list[StackResource]:
        """The stack's resources of ``types``; without any, the rule is not applicable for ``reason``."""
        found = self.of_type(*types)
        if not found:
            self.not_applicable(reason)
        return found

    def of_type(self, *types: str) -> list[StackResource]:
        """The stack's resources of ``types``, in the order the engine sent them."""
        chosen: list[tuple[int, StackResource]] = []
        for resource_type in dict.fromkeys(types):
            if resource_type not in self._converted:
                self._converted[resource_type] = [
                    (position, _stack_resource(item)) for position, item in self._by_type.get(resource_type, [])
                ]
            chosen.extend(self._converted[resource_type])
        return [resource for _, resource in sorted(chosen, key=lambda pair: pair[0])]


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
    """An unknown the rule cannot decide on. At preview it is noted for the advisory the rule reports when
    it finishes (the rule goes on judging what it can). At the update it is a violation at the rule's
    level, since no later run will know the value."""
    if at_preview():
        pending = _unresolved.get()
        if pending is None:
            raise NotKnownAtPreviewError(f"cannot verify until the update: {_what(error)}") from error
        pending.add(error, urn)
        return
    message = f"cannot verify at the update: {_what(error)}; {FAIL_CLOSED_HINT}"
    if urn is None:
        report(message)
    else:
        report(message, urn)


class _Unresolved:
    """What one run of one rule could not decide on at preview."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, error: CannotVerify | UnknownValueError, urn: str | None) -> None:
        self.items.append(f"{_resource_label(urn)}: {_what(error)}" if urn else _what(error))

    def raise_if_any(self) -> None:
        if self.items:
            raise NotKnownAtPreviewError("cannot verify until the update: " + "; ".join(dict.fromkeys(self.items)))


_unresolved: ContextVar[_Unresolved | None] = ContextVar("fleetguard_unresolved", default=None)


def _resource_label(urn: str) -> str:
    """``type name`` from a URN, for naming a resource inside a stack rule's message."""
    type_path, _, name = urn.rpartition("::")
    return f"{type_path.rpartition('::')[2].split('$')[-1]} {name}"


def _judge(report: Report, run: Callable[[], None]) -> None:
    """Run one rule: definite findings are reported as they are found; at preview, whatever it could not
    decide becomes one advisory for the rule (and resource) once it has judged everything else."""
    pending = _Unresolved()
    token = _unresolved.set(pending)
    try:
        try:
            run()
        except (CannotVerify, UnknownValueError) as error:
            report_cannot_verify(report, error)
        except InvalidProperty as error:
            report(str(error), None)
    finally:
        _unresolved.reset(token)
    pending.raise_if_any()


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
    """A resource policy that is not applicable to types it does not govern; an unknown it cannot decide
    on is advisory at preview and a violation at the update (see the module docstring)."""

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
        _judge(report_violation, lambda: check(ctx, report_violation))

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
    """A stack policy whose check reports per resource; an unknown value it cannot decide on is advisory at
    preview and a violation at the update (see the module docstring)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        _judge(report_violation, lambda: check(StackContext(args), report_violation))

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
    """Run ``check`` per resource so one unknown value leaves the rule's verdict on the others intact."""
    for item in items:
        try:
            check(item)
        except (CannotVerify, UnknownValueError) as error:
            report_cannot_verify(report, error, item.urn)
        except InvalidProperty as error:
            report(str(error), item.urn)

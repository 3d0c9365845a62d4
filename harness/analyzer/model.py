"""What the engine and a policy pack exchange, as plain data: policies, resources, diagnostics, reports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class EnforcementLevel(StrEnum):
    """Enforcement levels as policy config files spell them."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    REMEDIATE = "remediate"
    DISABLED = "disabled"



@dataclass(frozen=True)
class Framework:
    name: str
    version: str
    reference: str


@dataclass(frozen=True)
class PolicyInfo:
    """One policy as the pack describes it in ``GetAnalyzerInfo``."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    severity: str
    policy_type: str
    framework: Framework
    tags: tuple[str, ...]
    remediation_steps: str
    config_properties: dict[str, Any]
    config_required: tuple[str, ...]


@dataclass(frozen=True)
class PackInfo:
    name: str
    version: str
    policies: tuple[PolicyInfo, ...]

    def policy(self, name: str) -> PolicyInfo:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(f"the pack has no policy named {name!r}")


@dataclass(frozen=True)
class PolicyConfig:
    """The reconciled config the engine sends for one policy."""

    enforcement_level: EnforcementLevel
    properties: dict[str, Any]


@dataclass(frozen=True)
class Diagnostic:
    """One policy violation, as a preview prints it."""

    policy_name: str
    enforcement_level: EnforcementLevel
    severity: str
    message: str
    urn: str

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE)


@dataclass(frozen=True)
class Remediation:
    policy_name: str
    urn: str
    diagnostic: str
    """Set when the remediation could not run (e.g. an unknown value at preview)."""


@dataclass(frozen=True)
class AnalyzeResult:
    diagnostics: tuple[Diagnostic, ...]
    not_applicable: dict[str, str]
    """Policy name to the reason it gave for not applying."""

    def policy_names(self) -> set[str]:
        return {diagnostic.policy_name for diagnostic in self.diagnostics}


@dataclass(frozen=True)
class ProviderInfo:
    type: str
    urn: str
    name: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class AnalyzerResource:
    """A resource as the engine presents it to analyzers."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] | None = None
    """What the provider reports after create/preview; ``AnalyzeStack`` sees these (inputs when None)."""
    parent: str | None = None
    provider: ProviderInfo | None = None
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PreviewReport:
    """Everything a preview with the pack would print."""

    diagnostics: tuple[Diagnostic, ...]
    remediations: tuple[Remediation, ...]
    resource_count: int
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase (remediate, analyze, analyze_stack)."""

    @property
    def mandatory(self) -> tuple[Diagnostic, ...]:
        return tuple(diagnostic for diagnostic in self.diagnostics if diagnostic.mandatory)

    def policy_names(self, *, mandatory_only: bool = False) -> set[str]:
        chosen = self.mandatory if mandatory_only else self.diagnostics
        return {diagnostic.policy_name for diagnostic in chosen}


def urn_for(stack: str, project: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{resource_type}::{name}"


class Registration(Protocol):
    """What a mocked program run records per resource (``harness.mockstack.RegisteredResource``)."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def outputs(self) -> dict[str, Any]: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def provider(self) -> str: ...
    @property
    def dependencies(self) -> list[str]: ...
    @property
    def property_dependencies(self) -> dict[str, list[str]]: ...


def from_registrations(registered: Iterable[Registration]) -> list[AnalyzerResource]:
    """The resources a program registered, as the engine would present them to the pack. A provider
    reference (``<urn>::<id>``) resolves to the explicit provider resource it names; default providers
    are the engine's own and carry no inputs here."""
    registered = list(registered)
    providers = {
        resource.urn: ProviderInfo(resource.type, resource.urn, resource.name, resource.inputs)
        for resource in registered if resource.type.startswith("pulumi:providers:")
    }
    return [
        AnalyzerResource(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            inputs=resource.inputs,
            outputs=resource.outputs,
            parent=resource.parent,
            provider=providers.get(resource.provider.rsplit("::", 1)[0]) if resource.provider else None,
            dependencies=resource.dependencies,
            property_dependencies=resource.property_dependencies,
        )
        for resource in registered
    ]



def _resource_label(urn: str) -> str:
    """``type: name`` from a URN, as the CLI shows a resource next to a violation."""
    if not urn:
        return "stack"
    type_path, _, name = urn.rpartition("::")
    return f"{type_path.rpartition('::')[2].split('$')[-1]}: {name}"


def iter_lines(report: PreviewReport, pack_label: str) -> Iterator[str]:
    """The report laid out like the Policies section of ``pulumi preview``: per violation the enforcement
    level, severity, policy and resource, then the policy description and the message."""
    yield "Policies:"
    yield f"    {pack_label}"
    for remediation in report.remediations:
        outcome = f"could not run: {remediation.diagnostic}" if remediation.diagnostic else "remediated"
        yield f"        - [remediate]  {remediation.policy_name}  ({_resource_label(remediation.urn)})  {outcome}"
    for diagnostic in report.diagnostics:
        yield (f"        - [{diagnostic.enforcement_level.value}]  [severity: {diagnostic.severity}]  "
               f"{diagnostic.policy_name}  ({_resource_label(diagnostic.urn)})")
        for line in diagnostic.message.splitlines():
            yield f"          {line}"

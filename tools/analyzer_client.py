"""Drive the fleetguard policy pack over the Pulumi Analyzer gRPC protocol, the way the engine does.

The Pulumi CLI is not available on build machines, so this module plays the engine's part:

1. boot the pack as the engine does (``python -u -m pulumi.policy <engine address> <pack dir>`` with the
   pack directory as working directory, ``PULUMI_DRY_RUN`` saying whether this run is a preview or the
   update: the engine boots one pack process per run) and read the port it prints;
2. ``GetAnalyzerInfo``, then reconcile the ``--policy-pack-config`` file with the pack's policies (schema
   defaults first, then ``all``, then per-policy entries; the engine, not the SDK, fills defaults) and
   validate it against each policy's config schema before ``Configure``;
3. per resource ``Remediate`` (its new properties replace the inputs) then ``Analyze``; finally
   ``AnalyzeStack`` with every resource's outputs.

Property values travel as protobuf Structs, exactly as the engine sends them: numbers as floats, unknown
values (``pulumi.output.Unknown``) as the engine's unknown sentinel string.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar

import grpc  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
import pulumi
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.output import Unknown
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
POLICY_PACK_DIR: Final = REPO_ROOT / "policies"
POLICY_CONFIG_DIR: Final = POLICY_PACK_DIR / "config"

# The engine's marker for a value computed later; pulumi-policy recognises it in any property position.
UNKNOWN_SENTINEL: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Special-value signature keys, as pulumi and pulumi-policy serialise assets and archives.
_SIG_KEY: Final = "4dabf18193072939515e22adb298388d"
_ASSET_SIG: Final = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG: Final = "0def7320c3a5731c473e5ecbe6d01bc7"
# The Python policy runtime never dials the engine; the address is positional and only parsed.
_ENGINE_ADDRESS_PLACEHOLDER: Final = "127.0.0.1:0"
# The engine sets this for every policy pack process it boots (``true`` for a preview, ``false`` for the
# update); pulumi-policy and fleetguard's rules read it.
DRY_RUN_VARIABLE: Final = "PULUMI_DRY_RUN"
_IN_FLIGHT: Final = 16
"""Requests kept in flight at once: the pack serves four at a time and gRPC round trips dominate."""

T = TypeVar("T")
R = TypeVar("R")


class EnforcementLevel(StrEnum):
    """Enforcement levels as policy config files spell them."""

    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    REMEDIATE = "remediate"
    DISABLED = "disabled"


_LEVEL_TO_PROTO: Final = {
    EnforcementLevel.ADVISORY: proto.ADVISORY,
    EnforcementLevel.MANDATORY: proto.MANDATORY,
    EnforcementLevel.REMEDIATE: proto.REMEDIATE,
    EnforcementLevel.DISABLED: proto.DISABLED,
}
_PROTO_TO_LEVEL: Final = {value: level for level, value in _LEVEL_TO_PROTO.items()}
_SEVERITIES: Final = {
    proto.POLICY_SEVERITY_UNSPECIFIED: "unspecified",
    proto.POLICY_SEVERITY_LOW: "low",
    proto.POLICY_SEVERITY_MEDIUM: "medium",
    proto.POLICY_SEVERITY_HIGH: "high",
    proto.POLICY_SEVERITY_CRITICAL: "critical",
}
_POLICY_TYPES: Final = {
    proto.POLICY_TYPE_UNKNOWN: "unknown",
    proto.POLICY_TYPE_RESOURCE: "resource",
    proto.POLICY_TYPE_STACK: "stack",
}


class PolicyConfigError(ValueError):
    """A policy config file (or dict) the engine would reject."""


class PackStartError(RuntimeError):
    """The policy pack process did not come up."""


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
    """What a mocked program run records per resource (``tools.mockstack.RegisteredResource``)."""

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


# ---------------------------------------------------------------------------------------------- config


def load_policy_config_file(path: Path) -> dict[str, Any]:
    """Read a ``--policy-pack-config`` JSON file (an object keyed by policy name or ``all``)."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from error
    if not isinstance(document, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object keyed by policy name or 'all'")
    return document


def _parse_level(value: Any, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(value)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(f"{where}: {value!r} is not an enforcement level (expected one of {allowed})") from None


def reconcile_policy_config(pack: PackInfo, given: Mapping[str, Any] | None) -> dict[str, PolicyConfig]:
    """The config the engine would send to ``Configure``: each policy's schema defaults and declared
    level, then ``all``'s level, then each policy's own entry; validated against the config schemas.
    Unlike the engine, a key naming no policy is an error (a typo would otherwise disable nothing)."""
    result = {
        policy.name: PolicyConfig(
            policy.enforcement_level,
            {key: schema["default"] for key, schema in policy.config_properties.items() if "default" in schema},
        )
        for policy in pack.policies
    }
    given = dict(given or {})
    known_names = {policy.name for policy in pack.policies}
    for key, value in given.items():
        if key != "all" and key not in known_names:
            raise PolicyConfigError(f"policy config key {key!r} names no policy in pack {pack.name}")
        if not isinstance(value, str | dict):
            raise PolicyConfigError(f"policy config {key!r}: expected an enforcement level or an object")
    if "all" in given:
        all_entry = given["all"]
        level_value = all_entry if isinstance(all_entry, str) else all_entry.get("enforcementLevel")
        if level_value is not None:
            level = _parse_level(level_value, "policy config 'all'")
            result = {name: PolicyConfig(level, config.properties) for name, config in result.items()}
    for name, entry in given.items():
        if name == "all":
            continue
        current = result[name]
        if isinstance(entry, str):
            result[name] = PolicyConfig(_parse_level(entry, f"policy config {name!r}"), current.properties)
            continue
        properties = {key: value for key, value in entry.items() if key != "enforcementLevel"}
        level = current.enforcement_level
        if "enforcementLevel" in entry:
            level = _parse_level(entry["enforcementLevel"], f"policy config {name!r}.enforcementLevel")
        result[name] = PolicyConfig(level, {**current.properties, **properties})
    _validate_config(pack, result)
    return result


def _validate_config(pack: PackInfo, config: Mapping[str, PolicyConfig]) -> None:
    problems: list[str] = []
    for policy in pack.policies:
        schema: dict[str, Any] = {"type": "object", "properties": policy.config_properties}
        if policy.config_required:
            schema["required"] = list(policy.config_required)
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(config[policy.name].properties), key=str):
            where = ".".join(str(part) for part in error.absolute_path) or "(config)"
            problems.append(f"{policy.name}: {where}: {error.message}")
    if problems:
        raise PolicyConfigError("invalid policy pack config:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------------- wire


def to_wire(value: Any, where: str = "properties") -> Any:
    """A Python property value as the engine puts it in a Struct."""
    if isinstance(value, Unknown):
        return UNKNOWN_SENTINEL
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_wire(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return _asset_to_wire(value, where)
    raise TypeError(f"{where}: cannot send a {type(value).__name__} to the analyzer")


def _asset_to_wire(value: pulumi.Asset | pulumi.Archive, where: str) -> dict[str, Any]:
    """Assets and archives (a Lambda function's code) in the SDK's signature-keyed form."""
    signature = _ASSET_SIG if isinstance(value, pulumi.Asset) else _ARCHIVE_SIG
    if isinstance(value, pulumi.AssetArchive):
        return {_SIG_KEY: signature, "assets": {
            key: to_wire(asset, f"{where}.assets.{key}") for key, asset in value.assets.items()
        }}
    for attribute in ("path", "text", "uri"):
        if isinstance(getattr(value, attribute, None), str):
            return {_SIG_KEY: signature, attribute: getattr(value, attribute)}
    raise TypeError(f"{where}: unsupported {type(value).__name__}")


def _struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(properties))
    return struct


def _from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    decoded: dict[str, Any] = json_format.MessageToDict(struct)
    return decoded


def _provider(provider: ProviderInfo | None) -> proto.AnalyzerProviderResource | None:
    if provider is None:
        return None
    return proto.AnalyzerProviderResource(
        type=provider.type, urn=provider.urn, name=provider.name, properties=_struct(provider.properties),
    )


def _diagnostics(response: proto.AnalyzeResponse, resource_urn: str = "") -> AnalyzeResult:
    """Decoded diagnostics. For ``Analyze`` the engine attributes every diagnostic to the analyzed
    resource (the SDK leaves a resource policy's URN empty); ``AnalyzeStack`` diagnostics keep theirs."""
    return AnalyzeResult(
        diagnostics=tuple(
            Diagnostic(
                policy_name=item.policyName,
                enforcement_level=_PROTO_TO_LEVEL[item.enforcementLevel],
                severity=_SEVERITIES[item.severity],
                message=item.message,
                urn=resource_urn or item.urn,
            )
            for item in response.diagnostics
        ),
        not_applicable={item.policy_name: item.reason for item in response.not_applicable},
    )


def _pipelined(items: Iterable[T], send: Callable[[T], grpc.Future], receive: Callable[[T, Any], R]) -> list[R]:
    """Send one request per item keeping a few in flight; results in item order."""
    in_flight: deque[tuple[T, grpc.Future]] = deque()
    results: list[R] = []
    for item in items:
        in_flight.append((item, send(item)))
        if len(in_flight) >= _IN_FLIGHT:
            done, future = in_flight.popleft()
            results.append(receive(done, future.result()))
    while in_flight:
        done, future = in_flight.popleft()
        results.append(receive(done, future.result()))
    return results


# ---------------------------------------------------------------------------------------------- process


class PolicyPackProcess:
    """One running policy pack and a gRPC channel to it, serving one run of the engine: a preview
    (``dry_run=True``) or the update. Use as a context manager."""

    def __init__(
        self,
        pack_dir: Path = POLICY_PACK_DIR,
        *,
        python: str = sys.executable,
        startup_timeout_seconds: float = 60.0,
        dry_run: bool = False,
    ) -> None:
        self.pack_dir = pack_dir
        self.dry_run = dry_run
        self._python = python
        self._startup_timeout = startup_timeout_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._info: PackInfo | None = None
        self.config: dict[str, PolicyConfig] = {}

    def __enter__(self) -> PolicyPackProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Boot the pack the way the engine's Python language host does and connect to its port."""
        self._process = subprocess.Popen(
            [self._python, "-u", "-m", "pulumi.policy", _ENGINE_ADDRESS_PLACEHOLDER, str(self.pack_dir)],
            cwd=self.pack_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Set explicitly, as the engine does, so an inherited value cannot leak in.
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", DRY_RUN_VARIABLE: str(self.dry_run).lower()},
        )
        port = self._read_port()
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(self._channel).result(timeout=self._startup_timeout)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the pack process has used so far, from /proc (Linux): what the pack
        itself costs, apart from the client playing the engine on the same machine."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), after pid and comm
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def _read_port(self) -> int:
        assert self._process is not None
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=self._startup_timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            if self._process.poll() is None:
                self._process.terminate()
            _, stderr_bytes = self._process.communicate(timeout=10)
            stderr = stderr_bytes.decode(errors="replace")
            self.close()
            raise PackStartError(
                f"policy pack in {self.pack_dir} did not print its port (got {line!r}); stderr:\n{stderr}"
            )
        return int(line)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None:
            for stream in (self._process.stdout, self._process.stderr):
                if stream is not None:
                    stream.close()

    @property
    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        if self._stub is None:
            raise RuntimeError("the policy pack is not running; call start() or use it as a context manager")
        return self._stub

    # -- engine calls ----------------------------------------------------------------------------------

    def info(self) -> PackInfo:
        """``GetAnalyzerInfo``, decoded (cached: the pack's metadata does not change while it runs)."""
        if self._info is None:
            response = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
            self._info = PackInfo(
                name=response.name,
                version=response.version,
                policies=tuple(
                    PolicyInfo(
                        name=policy.name,
                        description=policy.description,
                        enforcement_level=_PROTO_TO_LEVEL[policy.enforcementLevel],
                        severity=_SEVERITIES[policy.severity],
                        policy_type=_POLICY_TYPES[policy.policy_type],
                        framework=Framework(
                            policy.framework.name, policy.framework.version, policy.framework.reference,
                        ),
                        tags=tuple(policy.tags),
                        remediation_steps=policy.remediation_steps,
                        config_properties=_from_struct(policy.configSchema.properties),
                        config_required=tuple(policy.configSchema.required),
                    )
                    for policy in response.policies
                ),
            )
        return self._info

    def configure(self, config: Mapping[str, Any] | Path | None = None) -> dict[str, PolicyConfig]:
        """Reconcile ``config`` (a ``--policy-pack-config`` file or its parsed content) with the pack and
        send it with ``Configure``. Returns what was sent."""
        given = load_policy_config_file(config) if isinstance(config, Path) else config
        reconciled = reconcile_policy_config(self.info(), given)
        request = proto.ConfigureAnalyzerRequest()
        for name, policy_config in reconciled.items():
            request.policyConfig[name].enforcementLevel = _LEVEL_TO_PROTO[policy_config.enforcement_level]
            request.policyConfig[name].properties.update(to_wire(policy_config.properties))
        self.stub.Configure(request)
        self.config = reconciled
        return reconciled

    def configure_stack(self, stack: str, project: str) -> None:
        self.stub.ConfigureStack(
            proto.AnalyzerStackConfigureRequest(stack=stack, project=project, dry_run=self.dry_run)
        )

    def _analyze_request(self, resource: AnalyzerResource, inputs: Mapping[str, Any]) -> proto.AnalyzeRequest:
        return proto.AnalyzeRequest(
            type=resource.type, urn=resource.urn, name=resource.name, properties=_struct(inputs),
            options=proto.AnalyzerResourceOptions(parent=resource.parent or ""),
            provider=_provider(resource.provider),
        )

    def analyze(self, resource: AnalyzerResource) -> AnalyzeResult:
        return _diagnostics(self.stub.Analyze(self._analyze_request(resource, resource.inputs)), resource.urn)

    def remediate(self, resource: AnalyzerResource) -> tuple[dict[str, Any], list[Remediation]]:
        """``Remediate``: the inputs after every remediation (unchanged when none applied) and what ran."""
        response = self.stub.Remediate(self._analyze_request(resource, resource.inputs))
        changed, applied = _remediation_outcome(resource, response)
        return (changed if changed is not None else dict(resource.inputs)), applied

    def analyze_stack(self, resources: Sequence[AnalyzerResource]) -> AnalyzeResult:
        request = proto.AnalyzeStackRequest(resources=[
            proto.AnalyzerResource(
                type=resource.type, urn=resource.urn, name=resource.name,
                properties=_struct(resource.outputs if resource.outputs is not None else resource.inputs),
                options=proto.AnalyzerResourceOptions(parent=resource.parent or ""),
                provider=_provider(resource.provider),
                parent=resource.parent or "",
                dependencies=list(resource.dependencies),
                propertyDependencies={
                    key: proto.AnalyzerPropertyDependencies(urns=list(urns))
                    for key, urns in resource.property_dependencies.items()
                },
            )
            for resource in resources
        ])
        return _diagnostics(self.stub.AnalyzeStack(request))

    # -- a whole preview -------------------------------------------------------------------------------

    def preview(self, resources: Sequence[AnalyzerResource]) -> PreviewReport:
        """What one run of ``pulumi preview`` or ``pulumi up --policy-pack`` does with these resources (the
        preview or the update, as this process serves): remediate each, analyze the remediated inputs, then
        analyze the stack. Remediate is skipped when no policy is at the remediate level: the pack would
        answer every call with nothing."""
        seconds: dict[str, float] = {}
        resources = list(resources)
        requests = [self._analyze_request(resource, resource.inputs) for resource in resources]
        remediations: list[Remediation] = []
        if any(config.enforcement_level is EnforcementLevel.REMEDIATE for config in self.config.values()):
            started = time.perf_counter()
            outcomes = _pipelined(
                range(len(resources)),
                lambda index: self.stub.Remediate.future(requests[index]),
                lambda index, response: _remediation_outcome(resources[index], response),
            )
            for index, (changed, applied) in enumerate(outcomes):
                remediations.extend(applied)
                if changed is not None:
                    resources[index] = _with_inputs(resources[index], changed)
                    requests[index] = self._analyze_request(resources[index], changed)
            seconds["remediate"] = time.perf_counter() - started
        started = time.perf_counter()
        per_resource = _pipelined(requests, self.stub.Analyze.future,
                                  lambda request, response: _diagnostics(response, request.urn))
        seconds["analyze"] = time.perf_counter() - started
        started = time.perf_counter()
        stack = self.analyze_stack(resources)
        seconds["analyze_stack"] = time.perf_counter() - started
        diagnostics = [diagnostic for result in per_resource for diagnostic in result.diagnostics]
        return PreviewReport(
            diagnostics=tuple(diagnostics + list(stack.diagnostics)),
            remediations=tuple(remediations),
            resource_count=len(resources),
            seconds=seconds,
        )


def _remediation_outcome(
    resource: AnalyzerResource, response: proto.RemediateResponse,
) -> tuple[dict[str, Any] | None, list[Remediation]]:
    """The inputs the remediations produced (None when none changed them) and what ran."""
    changed: dict[str, Any] | None = None
    applied: list[Remediation] = []
    for remediation in response.remediations:
        if remediation.HasField("properties"):
            changed = _from_struct(remediation.properties)
        applied.append(Remediation(remediation.policyName, resource.urn, remediation.diagnostic))
    return changed, applied


def _with_inputs(resource: AnalyzerResource, inputs: dict[str, Any]) -> AnalyzerResource:
    """The resource after remediation: new inputs, and outputs that reflect them."""
    outputs = {**resource.outputs, **inputs} if resource.outputs is not None else None
    return AnalyzerResource(
        urn=resource.urn, type=resource.type, name=resource.name, inputs=inputs, outputs=outputs,
        parent=resource.parent, provider=resource.provider, dependencies=resource.dependencies,
        property_dependencies=resource.property_dependencies,
    )


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


def pack_version(pack_dir: Path = POLICY_PACK_DIR) -> str:
    """The version in PulumiPolicy.yaml (the CLI reports it; Python packs do not know their own)."""
    document = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text()) or {}
    return str(document.get("version", "0.0.1"))

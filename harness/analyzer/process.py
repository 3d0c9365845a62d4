"""One running policy pack, booted and spoken to as the engine does."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import grpc  # type: ignore[import-untyped]
import yaml
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from harness.analyzer.config import POLICY_PACK_DIR, load_policy_config_file, reconcile_policy_config
from harness.analyzer.model import (
    AnalyzeResult,
    AnalyzerResource,
    EnforcementLevel,
    Framework,
    PackInfo,
    PolicyConfig,
    PolicyInfo,
    PreviewReport,
    Remediation,
)
from harness.analyzer.wire import (
    LEVEL_TO_PROTO,
    POLICY_TYPES,
    PROTO_TO_LEVEL,
    SEVERITIES,
    decode_diagnostics,
    from_struct,
    provider_message,
    struct,
    to_wire,
)

# The Python policy runtime never dials the engine; the address is positional and only parsed.
_ENGINE_ADDRESS_PLACEHOLDER: Final = "127.0.0.1:0"
# The engine sets this for every policy pack process it boots (``true`` for a preview, ``false`` for the
# update); pulumi-policy and fleetguard's rules read it.
DRY_RUN_VARIABLE: Final = "PULUMI_DRY_RUN"
_IN_FLIGHT: Final = 16
"""Requests kept in flight at once: the pack serves four at a time and gRPC round trips dominate."""

T = TypeVar("T")
R = TypeVar("R")


class PackStartError(RuntimeError):
    """The policy pack process did not come up."""



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
                        enforcement_level=PROTO_TO_LEVEL[policy.enforcementLevel],
                        severity=SEVERITIES[policy.severity],
                        policy_type=POLICY_TYPES[policy.policy_type],
                        framework=Framework(
                            policy.framework.name, policy.framework.version, policy.framework.reference,
                        ),
                        tags=tuple(policy.tags),
                        remediation_steps=policy.remediation_steps,
                        config_properties=from_struct(policy.configSchema.properties),
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
            request.policyConfig[name].enforcementLevel = LEVEL_TO_PROTO[policy_config.enforcement_level]
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
            type=resource.type, urn=resource.urn, name=resource.name, properties=struct(inputs),
            options=proto.AnalyzerResourceOptions(parent=resource.parent or ""),
            provider=provider_message(resource.provider),
        )

    def analyze(self, resource: AnalyzerResource) -> AnalyzeResult:
        return decode_diagnostics(self.stub.Analyze(self._analyze_request(resource, resource.inputs)), resource.urn)

    def remediate(self, resource: AnalyzerResource) -> tuple[dict[str, Any], list[Remediation]]:
        """``Remediate``: the inputs after every remediation (unchanged when none applied) and what ran."""
        response = self.stub.Remediate(self._analyze_request(resource, resource.inputs))
        changed, applied = _remediation_outcome(resource, response)
        return (changed if changed is not None else dict(resource.inputs)), applied

    def analyze_stack(self, resources: Sequence[AnalyzerResource]) -> AnalyzeResult:
        request = proto.AnalyzeStackRequest(resources=[
            proto.AnalyzerResource(
                type=resource.type, urn=resource.urn, name=resource.name,
                properties=struct(resource.outputs if resource.outputs is not None else resource.inputs),
                options=proto.AnalyzerResourceOptions(parent=resource.parent or ""),
                provider=provider_message(resource.provider),
                parent=resource.parent or "",
                dependencies=list(resource.dependencies),
                propertyDependencies={
                    key: proto.AnalyzerPropertyDependencies(urns=list(urns))
                    for key, urns in resource.property_dependencies.items()
                },
            )
            for resource in resources
        ])
        return decode_diagnostics(self.stub.AnalyzeStack(request))

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
                                  lambda request, response: decode_diagnostics(response, request.urn))
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
            changed = from_struct(remediation.properties)
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


def pack_version(pack_dir: Path = POLICY_PACK_DIR) -> str:
    """The version in PulumiPolicy.yaml (the CLI reports it; Python packs do not know their own)."""
    document = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text()) or {}
    return str(document.get("version", "0.0.1"))

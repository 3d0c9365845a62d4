"""Run the fleetguard Pulumi program under ``pulumi.runtime.set_mocks`` and record what it registers.

The Pulumi engine cannot run on build machines, so tests, ``make policy-check`` and the schema contract
tests all use this runner: it reads ``Pulumi.<stack>.yaml`` the way the CLI would, executes
``__main__.py`` against a recording mock monitor, and returns every registered resource with its inputs,
its parent and the stack outputs. Each run happens in a fresh ``contextvars`` context, so runs of
different stacks in one process do not share Pulumi's global state.

A run models one of the two phases of ``pulumi up`` on a new stack:

- ``Phase.PREVIEW``, the preview that starts every ``pulumi up``: nothing exists yet, so every output a
  provider computes (an ARN, an id, a queue URL, a key id) is unknown, and so is every input built from
  one (``Output.json_dumps`` of a policy document naming an ARN is one unknown string). The program sees
  them as unknown and the policy pack receives the engine's unknown sentinel in their place.
- ``Phase.UPDATE``, the update itself (or an update of an existing stack): every value is known.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import mocks, rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "fleetguard"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"


class Phase(StrEnum):
    """The two runs ``pulumi up`` makes of a program: a preview (dry run), then the update."""

    PREVIEW = "preview"
    UPDATE = "update"

    @property
    def dry_run(self) -> bool:
        return self is Phase.PREVIEW


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the program registered it (inputs as the engine would receive them)."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    provider: str
    custom: bool
    id: str | None
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    retain_on_delete: bool = False


@dataclass(frozen=True)
class StackRun:
    """Everything one mocked run of the program produced."""

    stack: str
    project: str
    config: dict[str, str]
    resources: list[RegisteredResource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        """Resources of one Pulumi type token, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RegisteredResource:
        """The single resource of a type; fails loudly when there are none or several."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected exactly one {type_token}, found {len(found)}")
        return found[0]

    def by_name(self, name: str) -> RegisteredResource:
        """The resource with this logical name."""
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(f"no resource named {name!r}")

    def by_urn(self, urn: str) -> RegisteredResource:
        """The resource with this URN."""
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(f"no resource with urn {urn!r}")


def _arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return ":".join(
        ["arn", PARTITION, service, REGION if region else "", ACCOUNT_ID if account else "", resource]
    )


def _computed_outputs(type_token: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Plausible provider-computed outputs, so wiring that reads ARNs and ids resolves to real shapes."""
    physical = inputs.get("name") or name
    classic_arns: dict[str, str] = {
        "aws:kms/key:Key": _arn("kms", f"key/{name}-0000"),
        "aws:kms/alias:Alias": _arn("kms", str(physical)),
        "aws:sns/topic:Topic": _arn("sns", str(physical)),
        "aws:sqs/queue:Queue": _arn("sqs", str(physical)),
        "aws:dynamodb/table:Table": _arn("dynamodb", f"table/{physical}"),
        "aws:kinesis/stream:Stream": _arn("kinesis", f"stream/{physical}"),
        "aws:iot/topicRule:TopicRule": _arn("iot", f"rule/{physical}"),
        "aws:iam/role:Role": _arn("iam", f"role/{physical}", region=False),
        "aws:iam/policy:Policy": _arn("iam", f"policy/{physical}", region=False),
        "aws:lambda/function:Function": _arn("lambda", f"function:{physical}"),
        "aws:cloudwatch/logGroup:LogGroup": _arn("logs", f"log-group:{physical}"),
        "aws:iot/thingGroup:ThingGroup": _arn("iot", f"thinggroup/{physical}"),
        "aws:iot/policy:Policy": _arn("iot", f"policy/{physical}"),
        "aws:ssm/document:Document": _arn("ssm", f"document/{physical}"),
        # Incident Manager ARNs carry no region; SSM Contacts ARNs do.
        "aws:ssmincidents/responsePlan:ResponsePlan": _arn("ssm-incidents", f"response-plan/{physical}", region=False),
        "aws:ssmincidents/replicationSet:ReplicationSet": _arn(
            "ssm-incidents", f"replication-set/{name}", region=False
        ),
        "aws:ssmcontacts/contact:Contact": _arn("ssm-contacts", f"contact/{inputs.get('alias', name)}"),
        "aws:ssmcontacts/contactChannel:ContactChannel": _arn("ssm-contacts", f"contact-channel/{name}"),
        "aws:cloudwatch/eventRule:EventRule": _arn("events", f"rule/{physical}"),
        "aws:cloudwatch/metricAlarm:MetricAlarm": _arn("cloudwatch", f"alarm:{physical}"),
        "aws:securityhub/account:Account": _arn("securityhub", f"hub/{name}"),
        # What a device team's stack wires by ARN (examples/device_fleet).
        "aws:iot/authorizer:Authorizer": _arn("iot", f"authorizer/{physical}"),
        "aws:iot/provisioningTemplate:ProvisioningTemplate": _arn("iot", f"provisioningtemplate/{physical}"),
        "aws-native:iot:ThingGroup": _arn("iot", f"thinggroup/{inputs.get('thingGroupName', name)}"),
    }
    outputs: dict[str, Any] = {}
    if type_token in classic_arns:
        outputs["arn"] = classic_arns[type_token]
    if type_token == "aws:kms/key:Key":
        outputs["keyId"] = f"{name}-0000"
    if type_token == "aws:sqs/queue:Queue":
        outputs["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{physical}"
    if type_token == "aws:lambda/function:Function":
        outputs["invokeArn"] = outputs["arn"]
    if type_token == "aws-native:iot:SecurityProfile":
        profile = inputs.get("securityProfileName", name)
        outputs["securityProfileArn"] = _arn("iot", f"securityprofile/{profile}")
    if type_token == "aws-native:iot:ScheduledAudit":
        audit = inputs.get("scheduledAuditName", name)
        outputs["scheduledAuditArn"] = _arn("iot", f"scheduledaudit/{audit}")
    if type_token == "aws-native:iot:MitigationAction":
        action = inputs.get("actionName", name)
        outputs["mitigationActionArn"] = _arn("iot", f"mitigationaction/{action}")
        outputs["mitigationActionId"] = f"{action}-id"
    if type_token == "pulumi-python:dynamic/fleetguard:ContinuousJob":
        # The provider names the job <prefix>-<creation time>.
        outputs["job_id"] = f"{inputs.get('job_id_prefix', name)}-20260101000000"
        outputs["job_arn"] = _arn("iot", f"job/{outputs['job_id']}")
        outputs["job_status"] = "IN_PROGRESS"
    return outputs


class _RecordingMocks(pulumi.runtime.Mocks):
    """Answers the provider calls the program makes and returns inputs plus computed outputs."""

    def __init__(self, stack_references: Mapping[str, Mapping[str, Any]], phase: Phase) -> None:
        self.stack_references = stack_references
        self.phase = phase

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            stack_name = args.inputs.get("name", args.name)
            if stack_name not in self.stack_references:
                raise KeyError(f"no outputs given for StackReference {stack_name!r}")
            return stack_name, {"name": stack_name, "outputs": dict(self.stack_references[stack_name])}
        state = dict(args.inputs)
        computed = _computed_outputs(args.typ, args.name, args.inputs)
        if self.phase is Phase.PREVIEW:
            # A resource that does not exist yet: the provider's preview knows its inputs only. The id and
            # every computed output are unknown, which the SDK propagates into everything built from them.
            state.update({key: Unknown() for key in computed})  # type: ignore[no-untyped-call]
            return None, state
        state.update(computed)
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        identity = {"accountId": ACCOUNT_ID, "arn": _arn("iam", "user/ci", region=False), "userId": "AIDA"}
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": identity,
            "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION, "id": REGION},
            "aws:index/getPartition:getPartition": {
                "partition": PARTITION,
                "dnsSuffix": "amazonaws.com",
                "id": PARTITION,
            },
            "aws:iot/getEndpoint:getEndpoint": {
                "endpointAddress": f"a1b2c3d4e5f6g7-ats.iot.{REGION}.amazonaws.com", "id": "iot-endpoint",
            },
            "aws-native:index:getAccountId": {"accountId": ACCOUNT_ID},
            "aws-native:index:getRegion": {"region": REGION},
            "aws-native:index:getPartition": {"partition": PARTITION},
        }
        if args.token not in answers:
            raise NotImplementedError(f"mock has no answer for provider call {args.token}")
        return answers[args.token], []


class _RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that also keeps the parts of each request the policy analyzer needs."""

    def __init__(self, recording: _RecordingMocks) -> None:
        super().__init__(recording)
        self.registered: list[RegisteredResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources[response.urn]
        self.registered.append(
            RegisteredResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                inputs=rpc.deserialize_properties_unwrap_secrets(request.object)[0],
                outputs=dict(registration.state),
                parent=request.parent or None,
                provider=request.provider,
                custom=bool(request.custom),
                id=registration.id,
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                retain_on_delete=bool(request.retainOnDelete),
            )
        )
        return response


def load_stack_config(stack: str, root: Path = REPO_ROOT, project: str = PROJECT) -> dict[str, str]:
    """Read ``Pulumi.<stack>.yaml`` as the CLI passes it to a program: every value as a string
    (objects and lists JSON-encoded), keys fully qualified with their namespace."""
    path = root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text()) or {}
    raw = document.get("config", {}) or {}
    flat: dict[str, str] = {}
    for key, value in raw.items():
        qualified = key if ":" in key else f"{project}:{key}"
        flat[qualified] = value if isinstance(value, str) else json.dumps(value)
    return flat


def run_stack(
    stack: str,
    config_overrides: Mapping[str, Any] | None = None,
    *,
    phase: Phase = Phase.UPDATE,
    root: Path = REPO_ROOT,
    project: str = PROJECT,
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
) -> StackRun:
    """Run ``__main__.py`` for ``stack`` under mocks and return what it registered.

    ``config_overrides`` maps config keys (``fleetguard:detect`` or ``detect``) to values; ``None``
    removes a key. Non-string values are JSON-encoded as the CLI does for structured config.
    ``stack_references`` gives the outputs a ``pulumi.StackReference`` to each named stack reads.
    ``phase`` chooses what the engine knows: at ``Phase.PREVIEW`` of a new stack no computed output is known.
    """
    config = load_stack_config(stack, root, project)
    for key, value in (config_overrides or {}).items():
        qualified = key if ":" in key else f"{project}:{key}"
        if value is None:
            config.pop(qualified, None)
        else:
            config[qualified] = value if isinstance(value, str) else json.dumps(value)
    recording = _RecordingMocks(stack_references or {}, phase)
    run = functools.partial(
        _run_in_fresh_context, recording, stack=stack, project=project, config=config, root=root
    )
    return contextvars.Context().run(run)


def _run_in_fresh_context(
    recording: _RecordingMocks, *, stack: str, project: str, config: dict[str, str], root: Path
) -> StackRun:
    # A private event loop per run: a run that fails must not leave tasks behind for the next one.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        # Pulumi keeps pending RPCs and outputs process-wide; a previous failed run may have left some.
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        monitor = _RecordingMonitor(recording)
        mocks.set_mocks(recording, project=project, stack=stack, preview=recording.phase.dry_run, monitor=monitor)
        set_all_config(config)

        def program() -> None:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")

        _sync_await(run_pulumi_func(program))
        outputs = _resolve_outputs()
        return StackRun(stack, project, config, list(monitor.registered), outputs)
    except BaseException:
        # The run's own exception is raised to the caller; the same failure echoed by abandoned
        # futures when they are garbage-collected is noise.
        loop.set_exception_handler(lambda _loop, _context: None)
        raise
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        asyncio.set_event_loop(None)
        loop.close()


def _resolve_outputs() -> dict[str, Any]:
    root_resource = get_root_resource()
    exported: dict[str, Any] = getattr(root_resource, "outputs", {}) or {}

    async def resolve_all() -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for key, value in exported.items():
            resolved[key] = await pulumi.Output.from_input(value).future()
        return resolved

    return _sync_await(resolve_all())

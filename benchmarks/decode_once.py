"""Prototype, for the benchmark only: pulumi-policy's analyzer decoding each request once, not once per policy.

pulumi-policy 1.21 turns a request's protobuf properties into Python values (``MessageToDict``, then
``deserialize_properties``, then its unknown-checking proxy), and the resource's options and provider
likewise, inside its loop over policies: ``Analyze`` decodes one resource once per resource policy,
``AnalyzeStack`` decodes every resource of the stack once per stack policy. ``install()`` replaces the two
servicer methods with versions that decode before the loop and hand every policy the same values; what the
policies see and what the pack answers is otherwise unchanged (same order, levels, not-applicable and
unknown-at-preview handling). Policies must then treat the properties as read-only, which the SDK's
proxy does not enforce: that, and sharing one proxy between policies, is what the SDK would have to
document. The throwaway benchmark packs import this module; the shipped pack never does.
"""

from __future__ import annotations

import asyncio
from inspect import isawaitable
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import policy as sdk
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

# The prototype replaces two of the servicer's methods.
SERVICER: Any = sdk._PolicyAnalyzerServicer


def _private(servicer: Any, name: str) -> Any:
    """One of the servicer's name-mangled attributes (its policies, pack name, stack tags...)."""
    return getattr(servicer, f"_PolicyAnalyzerServicer__{name}")


def _decoded_properties(message: Any) -> Any:
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(message)))


def _level(servicer: Any, policy: Any) -> EnforcementLevel | None:
    """The level to report at, or None when the policy does not run; remediate reports as mandatory."""
    level = servicer._get_enforcement_level(policy)
    if level == EnforcementLevel.DISABLED:
        return None
    return EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level


def _validate(servicer: Any, policy: Any, args: Any, response: Any, level: EnforcementLevel) -> None:
    """Run one policy exactly as the SDK does, with its handling of unknowns and not-applicable."""
    report = servicer._create_report_violation(response, policy.name, policy.description, level, policy.severity)
    try:
        result = policy.validate(args, report)
        if isawaitable(result):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.Task(result, loop=loop))  # type: ignore[arg-type]
            loop.close()
    except UnknownValueError as error:
        pack = f"{_private(servicer, 'policy_pack_name')}@v{_private(servicer, 'policy_pack_version')}"
        response.diagnostics.append(proto.AnalyzeDiagnostic(
            policyName=policy.name, policyPackName=_private(servicer, "policy_pack_name"),
            policyPackVersion=_private(servicer, "policy_pack_version"), urn="", description=policy.description,
            message=f"can't run policy '{policy.name}' from policy pack '{pack}' during preview: {error.message}",
            enforcementLevel=servicer._map_enforcement_level(EnforcementLevel.ADVISORY),
        ))
    except sdk._NotApplicableError as error:
        response.not_applicable.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=error.reason or ""))


def analyze(servicer: Any, request: Any, _context: Any) -> Any:
    servicer._configure_runtime_settings()
    response = proto.AnalyzeResponse()
    decoded: tuple[Any, Any, Any] | None = None
    for policy in _private(servicer, "policies"):
        level = _level(servicer, policy)
        if level is None or not isinstance(policy, ResourceValidationPolicy):
            continue
        if not policy.has_validation():
            response.not_applicable.append(proto.PolicyNotApplicable(
                policy_name=policy.name, reason="Policy does not implement validate"))
            continue
        if decoded is None:
            decoded = (_decoded_properties(request.properties), servicer._get_resource_options(request),
                       servicer._get_provider_resource(request))
        props, options, provider = decoded
        args = ResourceValidationArgs(request.type, props, request.urn, request.name, options, provider,
                                      servicer._get_policy_config(policy.name), _private(servicer, "stack_tags"))
        _validate(servicer, policy, args, response, level)
    return response


def _stack_resources(servicer: Any, request: Any) -> list[PolicyResource]:
    """Every resource of the request, decoded once, with parents and dependencies linked as the SDK does."""
    by_urn: dict[str, PolicyResource] = {}
    links: list[tuple[PolicyResource, Any]] = []
    for item in request.resources:
        resource = PolicyResource(item.type, _decoded_properties(item.properties), item.urn, item.name,
                                  servicer._get_resource_options(item), servicer._get_provider_resource(item),
                                  None, [], {})
        by_urn[item.urn] = resource
        links.append((resource, item))
    for resource, item in links:
        if item.parent in by_urn:
            resource.parent = by_urn[item.parent]
        resource.dependencies.extend(by_urn[urn] for urn in item.dependencies if urn in by_urn)
        for key, dependencies in item.propertyDependencies.items():
            resource.property_dependencies[key] = [by_urn[urn] for urn in dependencies.urns if urn in by_urn]
    return [resource for resource, _ in links]


def analyze_stack(servicer: Any, request: Any, _context: Any) -> Any:
    servicer._configure_runtime_settings()
    response = proto.AnalyzeResponse()
    resources: list[PolicyResource] | None = None
    for policy in _private(servicer, "policies"):
        level = _level(servicer, policy)
        if level is None or not isinstance(policy, StackValidationPolicy):
            continue
        if resources is None:
            resources = _stack_resources(servicer, request)
        args = StackValidationArgs(resources, servicer._get_policy_config(policy.name),
                                   _private(servicer, "stack_tags"))
        _validate(servicer, policy, args, response, level)
    return response


def install() -> None:
    """Patch the running interpreter's pulumi-policy; call before building the ``PolicyPack``."""
    SERVICER.Analyze = analyze
    SERVICER.AnalyzeStack = analyze_stack

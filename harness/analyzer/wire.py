"""Values on the wire, exactly as the engine sends them: protobuf Structs, numbers as floats, unknown values
as the engine's unknown sentinel, assets and archives in the SDK's signature-keyed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pulumi
from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.output import Unknown
from pulumi.runtime import proto

from harness.analyzer.model import AnalyzeResult, Diagnostic, EnforcementLevel, ProviderInfo

# The engine's marker for a value computed later; pulumi-policy recognises it in any property position.
UNKNOWN_SENTINEL: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Special-value signature keys, as pulumi and pulumi-policy serialise assets and archives.
_SIG_KEY: Final = "4dabf18193072939515e22adb298388d"
_ASSET_SIG: Final = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG: Final = "0def7320c3a5731c473e5ecbe6d01bc7"

LEVEL_TO_PROTO: Final = {
    EnforcementLevel.ADVISORY: proto.ADVISORY,
    EnforcementLevel.MANDATORY: proto.MANDATORY,
    EnforcementLevel.REMEDIATE: proto.REMEDIATE,
    EnforcementLevel.DISABLED: proto.DISABLED,
}
PROTO_TO_LEVEL: Final = {value: level for level, value in LEVEL_TO_PROTO.items()}
SEVERITIES: Final = {
    proto.POLICY_SEVERITY_UNSPECIFIED: "unspecified",
    proto.POLICY_SEVERITY_LOW: "low",
    proto.POLICY_SEVERITY_MEDIUM: "medium",
    proto.POLICY_SEVERITY_HIGH: "high",
    proto.POLICY_SEVERITY_CRITICAL: "critical",
}
POLICY_TYPES: Final = {
    proto.POLICY_TYPE_UNKNOWN: "unknown",
    proto.POLICY_TYPE_RESOURCE: "resource",
    proto.POLICY_TYPE_STACK: "stack",
}


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


def struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(properties))
    return struct


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    decoded: dict[str, Any] = json_format.MessageToDict(message)
    return decoded


def provider_message(provider: ProviderInfo | None) -> proto.AnalyzerProviderResource | None:
    if provider is None:
        return None
    return proto.AnalyzerProviderResource(
        type=provider.type, urn=provider.urn, name=provider.name, properties=struct(provider.properties),
    )


def decode_diagnostics(response: proto.AnalyzeResponse, resource_urn: str = "") -> AnalyzeResult:
    """Decoded diagnostics. For ``Analyze`` the engine attributes every diagnostic to the analyzed
    resource (the SDK leaves a resource policy's URN empty); ``AnalyzeStack`` diagnostics keep theirs."""
    return AnalyzeResult(
        diagnostics=tuple(
            Diagnostic(
                policy_name=item.policyName,
                enforcement_level=PROTO_TO_LEVEL[item.enforcementLevel],
                severity=SEVERITIES[item.severity],
                message=item.message,
                urn=resource_urn or item.urn,
            )
            for item in response.diagnostics
        ),
        not_applicable={item.policy_name: item.reason for item in response.not_applicable},
    )

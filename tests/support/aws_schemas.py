"""Validate aws-native resource inputs against AWS's published CloudFormation resource schemas.

pulumi-aws-native resources are generated from the CloudFormation registry, and AWS checks what the
provider sends against the same resource schemas that cfn-lint ships. A mocked run accepts anything,
so tests put every registered ``aws-native:*`` resource through ``validate_native_resource``: the
Pulumi inputs are mapped to CloudFormation property names by walking the schema, then checked for
unknown or mis-cased properties, read-only properties and everything the JSON schema says.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import regex  # type: ignore[import-untyped]
from jsonschema import Draft7Validator, ValidationError, validators  # type: ignore[import-untyped]
from pulumi._types import input_type_py_to_pulumi_names, is_input_type
from pulumi.runtime.rpc import unwrap_rpc_secret

# aws-native module -> CloudFormation namespace, for the modules fleetguard uses.
CFN_NAMESPACES: Mapping[str, str] = {
    "iot": "IoT",
    "ssmincidents": "SSMIncidents",
    "ssmcontacts": "SSMContacts",
    "securityhub": "SecurityHub",
}

DEFAULT_REGION = "us-east-1"

PathPart = str | int
PropertyPath = tuple[PathPart, ...]


def cfn_type_name(type_token: str) -> str:
    """``aws-native:iot:SecurityProfile`` -> ``AWS::IoT::SecurityProfile``.

    Raises ValueError for a token that is not ``aws-native:<module>:<Resource>`` or whose module has
    no entry in CFN_NAMESPACES (add one rather than guessing the namespace's capitalisation).
    """
    module, resource = _split_token(type_token)
    namespace = CFN_NAMESPACES.get(module)
    if namespace is None:
        raise ValueError(
            f"{type_token}: aws-native module {module!r} has no CloudFormation namespace in "
            f"CFN_NAMESPACES (mapped: {', '.join(sorted(CFN_NAMESPACES))})"
        )
    return f"AWS::{namespace}::{resource}"


def cfn_schema(type_name: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The CloudFormation resource schema for ``type_name`` (e.g. ``AWS::IoT::ScheduledAudit``).

    Returns a copy, so callers may change it. Raises ValueError when the region has no such type.
    """
    return copy.deepcopy(_schema(type_name, region))


def unwrap_secrets(value: Any) -> Any:
    """``value`` with every Pulumi secret wrapper replaced by the secret's plain value."""
    value = unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def to_cfn_properties(type_token: str, inputs: Mapping[str, Any], region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The CloudFormation properties aws-native derives from ``inputs`` (Pulumi wire names).

    Raises ValueError listing every input key the schema does not have or aws-native spells otherwise.
    """
    cfn_type = cfn_type_name(type_token)
    conversion = _convert(type_token, _schema(cfn_type, region), unwrap_secrets(inputs))
    if conversion.problems:
        raise ValueError("\n".join(_format_findings(type_token, cfn_type, conversion.problems)))
    return conversion.properties


def validate_native_resource(type_token: str, inputs: Mapping[str, Any], region: str = DEFAULT_REGION) -> list[str]:
    """Everything AWS would reject in an aws-native resource's inputs; empty when they are valid.

    Each finding names the resource type and the input path, e.g. ``aws-native:iot:SecurityProfile
    (AWS::IoT::SecurityProfile) behaviors[0].criteria.comparisonOperator: 'lt' is not one of [...]``.
    """
    cfn_type = cfn_type_name(type_token)
    try:
        schema = _schema(cfn_type, region)
    except ValueError as unavailable:
        return [f"{type_token} ({cfn_type}): {unavailable}"]
    conversion = _convert(type_token, schema, unwrap_secrets(inputs))
    findings = list(conversion.problems)
    for pointer in schema.get("readOnlyProperties", []):
        name = _top_level_property(pointer)
        if name in conversion.properties:
            findings.append((conversion.input_path((name,)), "read-only property; AWS sets it"))
    for error in _validator(cfn_type, region).iter_errors(conversion.properties):
        findings.append((conversion.input_path(tuple(error.absolute_path)), error.message))
    return _format_findings(type_token, cfn_type, findings)


def _split_token(type_token: str) -> tuple[str, str]:
    """``aws-native:iot:SecurityProfile`` -> ``("iot", "SecurityProfile")``."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "aws-native" or not parts[1] or not parts[2]:
        raise ValueError(f"{type_token!r} is not an aws-native type token (aws-native:<module>:<Resource>)")
    return parts[1], parts[2]


@cache
def _schemas_dir() -> Path:
    # find_spec locates cfn-lint without importing it (importing cfnlint takes most of a second).
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or spec.origin is None:
        raise RuntimeError("cfn-lint is not installed; it ships the CloudFormation resource schemas")
    return Path(spec.origin).parent / "data" / "schemas"


@cache
def _provider_index(region: str) -> dict[str, str]:
    """CloudFormation type name -> schema file hash for one region."""
    path = _schemas_dir() / "providers" / f"{region}.json"
    if not path.is_file():
        raise ValueError(f"cfn-lint has no CloudFormation schemas for region {region!r}")
    index: dict[str, str] = json.loads(path.read_text())
    return index


@cache
def _schema(type_name: str, region: str) -> dict[str, Any]:
    schema_hash = _provider_index(region).get(type_name)
    if schema_hash is None:
        raise ValueError(f"CloudFormation has no resource type {type_name} in {region}")
    schema: dict[str, Any] = json.loads((_schemas_dir() / "resources" / f"{schema_hash}.json").read_text())
    return schema


@cache
def _compiled(pattern: str) -> Any:
    # The `regex` module understands the \p{L}-style classes AWS schemas use; `re` does not.
    return regex.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, _node: Mapping[str, Any]) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _required(validator: Any, required: list[str], instance: Any, _node: Mapping[str, Any]) -> Iterator[Any]:
    # Points the error at the missing property itself, so findings name it in the path.
    if validator.is_type(instance, "object"):
        for name in required:
            if name not in instance:
                yield ValidationError("required property is missing", path=[name])


_CfnValidator = validators.extend(Draft7Validator, {"pattern": _pattern, "required": _required})


@cache
def _validator(type_name: str, region: str) -> Any:
    return _CfnValidator(_schema(type_name, region))


@cache
def _sdk_spellings(module: str, resource: str) -> dict[str, frozenset[str]]:
    """Lower-cased name -> the spellings pulumi-aws-native sends for a module's input properties."""
    package = importlib.import_module(f"pulumi_aws_native.{module}")
    args_class = getattr(package, f"{resource}Args", None)
    if args_class is None:
        raise ValueError(f"pulumi-aws-native has no resource aws-native:{module}:{resource}")
    input_types = [args_class]
    for namespace in (f"pulumi_aws_native.{module}._inputs", "pulumi_aws_native._inputs"):
        input_types += [
            value
            for value in vars(importlib.import_module(namespace)).values()
            if isinstance(value, type) and is_input_type(value)
        ]
    spellings: dict[str, set[str]] = {}
    for input_type in input_types:
        for wire_name in input_type_py_to_pulumi_names(input_type).values():
            spellings.setdefault(wire_name.lower(), set()).add(wire_name)
    return {lowered: frozenset(names) for lowered, names in spellings.items()}


class _Conversion:
    """Builds CloudFormation properties from Pulumi inputs by walking a resource schema, noting input
    keys the schema lacks and the input path each CloudFormation path came from."""

    def __init__(self, schema: Mapping[str, Any], spellings: Mapping[str, frozenset[str]]) -> None:
        self.schema = schema
        self.spellings = spellings
        self.problems: list[tuple[PropertyPath, str]] = []
        self.input_paths: dict[PropertyPath, PropertyPath] = {}
        self.properties: dict[str, Any] = {}

    def input_path(self, cfn_path: PropertyPath) -> PropertyPath:
        """The input path for a CloudFormation path; an unconverted tail (a missing property) is
        spelled the way aws-native spells it."""
        length = len(cfn_path)
        while cfn_path[:length] not in self.input_paths:  # the root, (), is always recorded
            length -= 1
        tail = tuple(self.sdk_name(part) for part in cfn_path[length:])
        return self.input_paths[cfn_path[:length]] + tail

    def sdk_name(self, part: PathPart) -> PathPart:
        """How aws-native spells a CloudFormation property name, when that is unambiguous."""
        if isinstance(part, int):
            return part
        names = self.spellings.get(part.lower(), frozenset())
        return next(iter(names)) if len(names) == 1 else part

    def convert(self, node: Mapping[str, Any], value: Any, cfn_path: PropertyPath, input_path: PropertyPath) -> Any:
        node = self._resolve(node)
        self.input_paths[cfn_path] = input_path
        if isinstance(value, Mapping):
            return self._convert_object(node, value, cfn_path, input_path)
        items = node.get("items")
        if isinstance(value, list) and isinstance(items, Mapping):
            return [
                self.convert(items, item, (*cfn_path, index), (*input_path, index)) for index, item in enumerate(value)
            ]
        return value

    def _convert_object(
        self, node: Mapping[str, Any], value: Mapping[str, Any], cfn_path: PropertyPath, input_path: PropertyPath
    ) -> dict[str, Any]:
        properties = self._declared_properties(node)
        patterns: Mapping[str, Any] = node.get("patternProperties", {})
        additional = node.get("additionalProperties")
        if not properties and not patterns:
            return dict(value)  # free-form JSON (a policy document, say): its keys are data
        by_lower = {name.lower(): name for name in properties}
        converted: dict[str, Any] = {}
        for key, item in value.items():
            key_path = (*input_path, key)
            cfn_name = by_lower.get(key.lower())
            if cfn_name is not None:
                self._check_spelling(key, cfn_name, key_path)
                converted[cfn_name] = self.convert(properties[cfn_name], item, (*cfn_path, cfn_name), key_path)
                continue
            # Map keys ("SNS" in alertTargets, say) are data: they are kept exactly as written.
            map_value_schema = next(
                (schema for pattern, schema in patterns.items() if _compiled(pattern).search(key)), None
            )
            if map_value_schema is not None:
                converted[key] = self.convert(map_value_schema, item, (*cfn_path, key), key_path)
            elif additional is True or isinstance(additional, Mapping):
                converted[key] = item  # an explicitly open object takes any key; jsonschema checks the value
            else:
                self.problems.append((key_path, self._unknown_message(properties)))
        return converted

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node:
            reference: str = node["$ref"]
            if not reference.startswith("#/"):
                raise ValueError(f"schema reference {reference!r} is not local to the resource schema")
            target: Any = self.schema
            for part in reference[2:].split("/"):
                target = target[part]
            node = target
        return node

    def _declared_properties(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """Properties a node declares, including those inside its oneOf/anyOf/allOf branches."""
        properties = dict(node.get("properties", {}))
        for keyword in ("oneOf", "anyOf", "allOf"):
            for branch in node.get(keyword, []):
                properties.update(self._declared_properties(self._resolve(branch)))
        return properties

    def _check_spelling(self, key: str, cfn_name: str, input_path: PropertyPath) -> None:
        spellings = self.spellings.get(key.lower())
        # Without an aws-native spelling the property is no input at all (a read-only one, say);
        # the schema checks report that.
        if spellings and key not in spellings:
            expected = " or ".join(repr(name) for name in sorted(spellings))
            self.problems.append(
                (input_path, f"wrong case: aws-native spells CloudFormation property {cfn_name} as {expected}")
            )

    def _unknown_message(self, properties: Mapping[str, Any]) -> str:
        if not properties:
            return "unknown property; this object takes no properties"
        # Offer only what aws-native accepts as input (read-only properties have no input spelling).
        inputs = [str(self.sdk_name(name)) for name in properties if name.lower() in self.spellings]
        return f"unknown property; expected one of {', '.join(sorted(inputs or properties))}"


def _convert(type_token: str, schema: Mapping[str, Any], inputs: Mapping[str, Any]) -> _Conversion:
    module, resource = _split_token(type_token)
    conversion = _Conversion(schema, _sdk_spellings(module, resource))
    conversion.properties = conversion.convert(schema, inputs, (), ())
    return conversion


def _top_level_property(pointer: str) -> str:
    """``/properties/SecurityProfileArn`` -> ``SecurityProfileArn``."""
    parts = pointer.split("/")
    if len(parts) != 3 or parts[:2] != ["", "properties"]:
        # The schemas fleetguard uses mark only top-level properties read-only; fail loudly if that changes.
        raise ValueError(f"read-only pointer {pointer!r} is not a top-level property; teach aws_schemas to walk it")
    return parts[2]


def _format_path(path: PropertyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(resource)"


def _format_findings(type_token: str, cfn_type: str, findings: list[tuple[PropertyPath, str]]) -> list[str]:
    formatted = [f"{type_token} ({cfn_type}) {_format_path(path)}: {message}" for path, message in findings]
    return sorted(formatted)

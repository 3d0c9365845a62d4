"""The engine stand-in itself: booting a pack, encoding values as the engine does, resolving providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.output import UNKNOWN

from harness.analyzer import (
    UNKNOWN_SENTINEL,
    AnalyzerResource,
    PackStartError,
    PolicyPackProcess,
    from_registrations,
    to_wire,
)
from tests.policies.stack_builders import changed, kms_key, security_profile, violations


@pytest.mark.slow
def test_a_pack_that_fails_to_start_reports_its_stderr(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text("raise SystemExit('no policies here')\n")

    with pytest.raises(PackStartError, match="no policies here"), PolicyPackProcess(tmp_path,
                                                                                      startup_timeout_seconds=30):
        pass


def test_values_are_encoded_as_the_engine_sends_them() -> None:
    encoded = to_wire({
        "arn": UNKNOWN,
        "nested": [{"count": 3, "flag": True}, None],
        "code": pulumi.AssetArchive({"index.py": pulumi.StringAsset("print(1)")}),
        "file": pulumi.FileArchive("./dist"),
    })

    assert encoded["arn"] == UNKNOWN_SENTINEL
    assert encoded["nested"] == [{"count": 3, "flag": True}, None]
    assert encoded["code"]["assets"]["index.py"]["text"] == "print(1)"
    assert encoded["file"]["path"] == "./dist"


@pytest.mark.parametrize(("sentinel", "resource"), [
    # The engine marks an unknown with a sentinel of the property's type, not only the string one.
    ("1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", changed(kms_key(), enableKeyRotation=None)),
    ("6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", security_profile()),
])
def test_typed_unknown_sentinels_fail_closed_too(pack: PolicyPackProcess, sentinel: str,
                                                 resource: AnalyzerResource) -> None:
    field_name = "enableKeyRotation" if resource.type == "aws:kms/key:Key" else "targetArns"
    policy = "kms-key-rotation" if resource.type == "aws:kms/key:Key" else "detect-profile-has-targets"

    [message] = violations(pack.analyze(changed(resource, **{field_name: sentinel})), policy)

    assert message.startswith(f"cannot verify at the update: {field_name} is unknown")


def test_a_value_the_engine_cannot_carry_is_rejected_with_its_path() -> None:
    with pytest.raises(TypeError, match=r"properties\.tags\[1\]: cannot send a object"):
        to_wire({"tags": ["ok", object()]})


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    provider: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


def test_explicit_provider_references_resolve_to_the_provider_inputs() -> None:
    provider_urn = "urn:pulumi:dev::fleetguard::pulumi:providers:aws::tagged"
    registered = [
        Registered(provider_urn, "pulumi:providers:aws", "tagged", {"defaultTags": '{"tags":{"Owner":"a"}}'}),
        Registered("urn:pulumi:dev::fleetguard::aws:sns/topic:Topic::t", "aws:sns/topic:Topic", "t", {},
                   provider=f"{provider_urn}::04da6b54-80e4-46f7-96ec-b56ff0331ba9"),
        Registered("urn:pulumi:dev::fleetguard::aws:sns/topic:Topic::d", "aws:sns/topic:Topic", "d", {}),
    ]

    _, explicit, default = from_registrations(registered)

    assert explicit.provider is not None
    assert explicit.provider.properties == {"defaultTags": '{"tags":{"Owner":"a"}}'}
    assert default.provider is None

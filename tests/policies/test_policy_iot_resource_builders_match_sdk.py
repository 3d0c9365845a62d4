"""The builders for IoT resources other teams' stacks create use real type tokens and wire property names,
checked the same way as the fleetguard stack's builders."""

from __future__ import annotations

import pytest

from harness.analyzer import AnalyzerResource
from tests.policies.stack_builders import (
    acm_certificate,
    authorizer,
    ca_certificate,
    domain_configuration,
    job,
    job_template,
    ota_update,
    provisioning_body,
    provisioning_template,
)
from tests.policies.test_policy_builders_match_sdk import MAP_PROPERTIES, nested_keys, sdk_file, wire_names

BUILT = [
    domain_configuration(authorizer_resource=authorizer()),
    domain_configuration(native=True, authorizer_resource=authorizer("aws-native:iot:Authorizer"),
                         serverCertificateConfig={"enableOcspCheck": True}),
    acm_certificate(), acm_certificate(private_ca=True),
    provisioning_template(), provisioning_template(native=True),
    job(), job_template(), ota_update(),
    ca_certificate(auto_registration=True, template=provisioning_body()),
    ca_certificate(native=True, auto_registration=True, template=provisioning_body()),
]


@pytest.mark.parametrize("built", BUILT, ids=lambda item: f"{item.type}:{item.name}")
def test_iot_resource_builders_exist_in_the_sdk(built: AnalyzerResource) -> None:
    path = sdk_file(built.type)

    assert f"'{built.type}'" in path.read_text()
    assert set(built.inputs) <= wire_names(path), set(built.inputs) - wire_names(path)
    nested: set[str] = set()
    for key, value in built.inputs.items():
        nested |= nested_keys(value, keys_are_data=key in MAP_PROPERTIES)
    known = wire_names(path.parent / "_inputs.py")
    assert nested <= known, nested - known

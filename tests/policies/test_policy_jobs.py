"""Job rules over gRPC: abort criteria and in-progress timeouts on jobs, job templates and OTA updates,
and code-signed OTA files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.analyzer import AnalyzerResource, EnforcementLevel, PolicyPackProcess
from tests.policies.stack_builders import SIGNED_FILE, job, job_template, kms_key, ota_update, unknown, violations

ABORT = "job-abort-config"
TIMEOUT = "job-timeout-config"
SIGNED = "ota-update-signed-code"
JOB_RULES = (ABORT, TIMEOUT)

Builder = Callable[..., AnalyzerResource]
ABORT_PROPERTY: dict[Builder, tuple[str, str]] = {
    job: ("abortConfig", "criteriaList"),
    job_template: ("abortConfig", "criteriaList"),
    ota_update: ("awsJobAbortConfig", "abortCriteriaList"),
}
TIMEOUT_PROPERTY: dict[Builder, str] = {job: "timeoutConfig", job_template: "timeoutConfig",
                                        ota_update: "awsJobTimeoutConfig"}
BUILDERS = pytest.mark.parametrize("build", list(ABORT_PROPERTY), ids=lambda build: build.__name__)


@BUILDERS
def test_a_rollout_with_abort_criteria_and_a_timeout_passes(pack: PolicyPackProcess, build: Builder) -> None:
    result = pack.analyze(build())

    assert not result.diagnostics
    assert not set(JOB_RULES) & set(result.not_applicable)


@BUILDERS
@pytest.mark.parametrize("abort", [None, "empty"])
def test_a_rollout_without_abort_criteria_is_blocked(pack: PolicyPackProcess, build: Builder, abort: Any) -> None:
    config, criteria = ABORT_PROPERTY[build]

    [message] = violations(pack.analyze(build(**{config: {criteria: []} if abort else None})), ABORT)

    assert f"{config}.{criteria} is empty" in message


@BUILDERS
def test_a_rollout_without_a_timeout_is_blocked(pack: PolicyPackProcess, build: Builder) -> None:
    config = TIMEOUT_PROPERTY[build]

    [message] = violations(pack.analyze(build(**{config: None})), TIMEOUT)

    assert f"{config}.inProgressTimeoutInMinutes is not set" in message


@pytest.mark.parametrize(("minutes", "configured", "reported"), [
    (2880, None, "is 2880; it must be between 1 and 1440"),
    (0, None, "is 0; it must be between 1 and 1440"),
    (2880, 4320, None),
    (5000, 4320, "is 5000; it must be between 1 and 4320"),
])
def test_the_timeout_stays_within_the_configured_maximum(
    pack: PolicyPackProcess, minutes: int, configured: int | None, reported: str | None,
) -> None:
    if configured is not None:
        pack.configure({TIMEOUT: {"maximumInProgressTimeoutMinutes": configured}})

    messages = violations(pack.analyze(job(timeoutConfig={"inProgressTimeoutInMinutes": minutes})), TIMEOUT)

    assert messages == ([] if reported is None else [f"timeoutConfig.inProgressTimeoutInMinutes {reported} minutes"])


def test_a_job_from_a_template_inherits_its_abort_and_timeout(pack: PolicyPackProcess) -> None:
    from_template = job(abortConfig=None, timeoutConfig=None, document=None,
                        jobTemplateArn="arn:aws:iot:us-east-1:123456789012:jobtemplate/fleet-firmware")

    assert not pack.analyze(from_template).diagnostics


def test_unknown_rollout_settings_are_advisory_at_preview_and_block_at_the_update(
    pack: PolicyPackProcess, preview_pack: PolicyPackProcess,
) -> None:
    pending = job(abortConfig=unknown(), timeoutConfig={"inProgressTimeoutInMinutes": unknown()})

    at_preview = preview_pack.analyze(pending)
    at_update = pack.analyze(pending)

    assert sorted(item.policy_name for item in at_preview.diagnostics) == sorted(JOB_RULES)
    assert {item.enforcement_level for item in at_preview.diagnostics} == {EnforcementLevel.ADVISORY}
    assert all(message.startswith("cannot verify at the update")
               for rule in JOB_RULES for message in violations(at_update, rule))
    assert at_update.policy_names() == set(JOB_RULES)


@pytest.mark.parametrize("signing", [
    {"awsSignerJobId": "0a1b2c3d-signer-job"},
    {"customCodeSigning": {"signature": {"inlineDocument": "MEUCIQ=="}, "hashAlgorithm": "SHA256",
                           "signatureAlgorithm": "ECDSA",
                           "certificateChain": {"certificateName": "fleet-signer"}}},
])
def test_every_way_of_signing_ota_files_passes(pack: PolicyPackProcess, signing: dict[str, Any]) -> None:
    file = {**SIGNED_FILE, "codeSigning": signing}

    assert not violations(pack.analyze(ota_update(files=[file])), SIGNED)


@pytest.mark.parametrize(("signing", "reported"), [
    (None, "files[2] (firmware.bin) has no codeSigning"),
    ({"customCodeSigning": {"hashAlgorithm": "SHA256"}}, "files[2] (firmware.bin).codeSigning names no signature"),
    ({"startSigningJobParameter": {}}, "codeSigning names no signature"),
])
def test_an_unsigned_ota_file_is_blocked(pack: PolicyPackProcess, signing: Any, reported: str) -> None:
    unsigned = {key: value for key, value in SIGNED_FILE.items() if key != "codeSigning"}
    if signing is not None:
        unsigned["codeSigning"] = signing

    [message] = violations(pack.analyze(ota_update(files=[SIGNED_FILE, unsigned])), SIGNED)

    assert reported in message


def test_unknown_ota_files_are_advisory_at_preview(preview_pack: PolicyPackProcess) -> None:
    result = preview_pack.analyze(ota_update(files=[{**SIGNED_FILE, "codeSigning": unknown()}]))

    assert [(item.policy_name, item.enforcement_level) for item in result.diagnostics] == [
        (SIGNED, EnforcementLevel.ADVISORY)]


def test_job_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    key_result = pack.analyze(kms_key())
    job_result = pack.analyze(job())

    assert {ABORT, TIMEOUT, SIGNED} <= set(key_result.not_applicable)
    assert SIGNED in job_result.not_applicable

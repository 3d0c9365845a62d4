"""Jobs, job templates and OTA updates: a rollout that goes wrong stops itself (abort criteria), a device
that hangs does not hold its execution open forever (in-progress timeout), and OTA firmware is signed."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, ResourceContext, of_types, option, resource_policy
from .values import as_list, as_number, has_value, known, path

JOB: Final = "aws-native:iot:Job"
JOB_TEMPLATE: Final = "aws-native:iot:JobTemplate"
OTA_UPDATE: Final = "aws-native:iot:OtaUpdate"

ABORT_CRITERIA_PATH: Final = {
    JOB: ("abortConfig", "criteriaList"),
    JOB_TEMPLATE: ("abortConfig", "criteriaList"),
    OTA_UPDATE: ("awsJobAbortConfig", "abortCriteriaList"),
}
TIMEOUT_PATH: Final = {
    JOB: ("timeoutConfig", "inProgressTimeoutInMinutes"),
    JOB_TEMPLATE: ("timeoutConfig", "inProgressTimeoutInMinutes"),
    OTA_UPDATE: ("awsJobTimeoutConfig", "inProgressTimeoutInMinutes"),
}
MAXIMUM_TIMEOUT_MINUTES: Final = 10080
"""The longest in-progress timeout AWS IoT Jobs accepts (7 days)."""

TIMEOUT_SCHEMA = PolicyConfigSchema(properties={
    "maximumInProgressTimeoutMinutes": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAXIMUM_TIMEOUT_MINUTES,
        "description": ("Longest time a device may keep a job execution IN_PROGRESS before it times out "
                        "(the longest firmware download and install the fleet needs)."),
        "default": 1440,
    },
})

ROLLOUT_CONTROLS = Controls(pci=("6.5.1",), hipaa=("164.308(a)(7)(i)",), nist=("CM-3", "SI-2"))


def _dotted(keys: tuple[str, ...]) -> str:
    return ".".join(keys)


def inherits_from_template(ctx: ResourceContext) -> bool:
    """A job created from a job template takes the template's settings it does not override; the template
    is judged by the same rule."""
    return ctx.type == JOB and has_value(ctx.props.get("jobTemplateArn"))


def check_abort_config(ctx: ResourceContext, report: Report) -> None:
    keys = ABORT_CRITERIA_PATH[ctx.type]
    criteria = as_list(known(path(ctx.props, *keys), _dotted(keys)))
    if criteria or inherits_from_template(ctx):
        return
    report(f"{_dotted(keys)} is empty, so a rollout that fails on every device keeps going; add a criterion "
           "(action CANCEL, failureType FAILED, REJECTED, TIMED_OUT or ALL, a thresholdPercentage and "
           "minNumberOfExecutedThings)")


def check_timeout_config(ctx: ResourceContext, report: Report) -> None:
    keys = TIMEOUT_PATH[ctx.type]
    value: Any = path(ctx.props, *keys)
    if value is None:
        if not inherits_from_template(ctx):
            report(f"{_dotted(keys)} is not set, so an execution a device never finishes stays IN_PROGRESS "
                   "forever; set a timeout in minutes")
        return
    minutes = as_number(value, _dotted(keys))
    maximum = option(ctx.config, TIMEOUT_SCHEMA, "maximumInProgressTimeoutMinutes")
    if not 1 <= minutes <= maximum:
        report(f"{_dotted(keys)} is {minutes:g}; it must be between 1 and {maximum:g} minutes")


def check_signed_code(ctx: ResourceContext, report: Report) -> None:
    files = as_list(known(ctx.props.get("files"), "files"))
    for position, file in enumerate(files, start=1):
        label = f"files[{position}]"
        if isinstance(file, dict) and isinstance(file.get("fileName"), str):
            label += f" ({file['fileName']})"
        signing = known(path(file, "codeSigning"), f"{label}.codeSigning")
        if not isinstance(signing, dict):
            report(f"{label} has no codeSigning, so devices cannot verify the firmware before installing it")
            continue
        signed = (has_value(signing.get("awsSignerJobId"))
                  or has_value(path(signing, "startSigningJobParameter", "signingProfileName"))
                  or has_value(path(signing, "customCodeSigning", "signature", "inlineDocument")))
        if not signed:
            report(f"{label}.codeSigning names no signature: give an awsSignerJobId, a startSigningJobParameter "
                   "with a signingProfileName, or a customCodeSigning signature")


def policies() -> list[Policy]:
    jobs = of_types(JOB, JOB_TEMPLATE, OTA_UPDATE)
    return [
        resource_policy(
            name="job-abort-config",
            description="IoT jobs, job templates and OTA updates abort a rollout when too many executions fail.",
            severity=Severity.MEDIUM,
            controls=ROLLOUT_CONTROLS,
            remediation_steps=(
                "Add abortConfig.criteriaList (awsJobAbortConfig.abortCriteriaList for an OTA update) with at "
                "least one criterion, e.g. action CANCEL, failureType ALL, thresholdPercentage 10 and "
                "minNumberOfExecutedThings 10."
            ),
            governs=jobs,
            check=check_abort_config,
        ),
        resource_policy(
            name="job-timeout-config",
            description=("IoT jobs, job templates and OTA updates time out executions left in progress within "
                         "the configured maximum."),
            severity=Severity.MEDIUM,
            controls=ROLLOUT_CONTROLS,
            remediation_steps=(
                "Set timeoutConfig.inProgressTimeoutInMinutes (awsJobTimeoutConfig for an OTA update) to the "
                "longest time a device needs to download and apply the job, at most "
                "maximumInProgressTimeoutMinutes."
            ),
            governs=jobs,
            check=check_timeout_config,
            config_schema=TIMEOUT_SCHEMA,
        ),
        resource_policy(
            name="ota-update-signed-code",
            description="Every file an OTA update sends is code-signed, so devices verify it before installing.",
            severity=Severity.HIGH,
            controls=Controls(pci=("6.5.1", "11.5.2"), hipaa=("164.312(c)(1)", "164.312(c)(2)"),
                              nist=("SI-7", "SI-7(15)", "CM-14")),
            remediation_steps=(
                "Give each entry of files a codeSigning: sign with AWS Signer (startSigningJobParameter with "
                "a signingProfileName, or the awsSignerJobId of a finished signing job), or attach your own "
                "signature with customCodeSigning."
            ),
            governs=of_types(OTA_UPDATE),
            check=check_signed_code,
        ),
    ]

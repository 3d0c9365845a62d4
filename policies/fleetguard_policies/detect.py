"""Device Defender Detect: every security profile alerts someone and watches something; ML Detect
where the environment requires it."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import (
    Controls,
    Report,
    ResourceContext,
    StackContext,
    StackResource,
    of_types,
    option,
    report_cannot_verify,
    resource_policy,
    stack_policy,
)
from .values import CannotVerify, has_value, known, path

SECURITY_PROFILE: Final = "aws-native:iot:SecurityProfile"

MONITORING_CONTROLS = Controls(
    pci=("10.7.2", "11.5.1"),
    hipaa=("164.308(a)(1)(ii)(D)", "164.308(a)(6)(ii)"),
    nist=("SI-4", "SI-4(5)", "IR-4"),
)
ML_SCHEMA = PolicyConfigSchema(properties={
    "required": {
        "type": "boolean",
        "description": "Whether this environment must run at least one ML Detect security profile.",
        "default": False,
    },
})


def check_alert_target(ctx: ResourceContext, report: Report) -> None:
    targets = known(ctx.props.get("alertTargets"), "alertTargets")
    sns = path(targets, "SNS")
    if not isinstance(sns, dict):
        known(sns, "alertTargets.SNS")
        report("alertTargets has no SNS target: violations of this profile would alert nobody")
        return
    for field in ("alertTargetArn", "roleArn"):
        if not has_value(sns.get(field)):
            report(f"alertTargets.SNS.{field} is missing")


def check_targets(ctx: ResourceContext, report: Report) -> None:
    targets = known(ctx.props.get("targetArns"), "targetArns")
    if not targets:
        report("targetArns is empty: the profile is attached to no thing group (or all/things) and watches nothing")


def is_ml_profile(profile: StackResource) -> bool:
    behaviors = known(profile.props.get("behaviors"), f"behaviors of {profile.name}")
    for position, behavior in enumerate(behaviors or [], start=1):
        config = known(path(behavior, "criteria", "mlDetectionConfig"),
                       f"behaviors[{position}].criteria.mlDetectionConfig of {profile.name}")
        if config is not None:
            return True
    return False


def check_ml_profile(ctx: StackContext, report: Report) -> None:
    if not option(ctx.config, ML_SCHEMA, "required"):
        ctx.not_applicable("this environment does not require ML Detect")
    ctx.require_iot("detect-ml-profile-present")
    profiles = ctx.of_type(SECURITY_PROFILE)
    unverifiable: list[tuple[StackResource, CannotVerify]] = []
    for profile in profiles:
        try:
            if is_ml_profile(profile):
                return
        except CannotVerify as problem:
            unverifiable.append((profile, problem))
    for profile, reason in unverifiable:
        report_cannot_verify(report, reason, profile.urn)
    if not unverifiable:
        report(f"this environment requires ML Detect, but none of the {len(profiles)} security profile(s) has a "
               "behavior with criteria.mlDetectionConfig")


def policies() -> list[Policy]:
    governs = of_types(SECURITY_PROFILE)
    return [
        resource_policy(
            name="detect-profile-alert-target",
            description="Every Detect security profile sends its alerts to an SNS topic through a role.",
            severity=Severity.HIGH,
            controls=MONITORING_CONTROLS,
            remediation_steps=(
                "Set alertTargets to {\"SNS\": {\"alertTargetArn\": <alert topic ARN>, \"roleArn\": <role IoT "
                "assumes to publish>}}."
            ),
            governs=governs,
            check=check_alert_target,
        ),
        resource_policy(
            name="detect-profile-has-targets",
            description="Every Detect security profile watches at least one target (a thing group or all things).",
            severity=Severity.HIGH,
            controls=MONITORING_CONTROLS,
            remediation_steps=(
                "Set targetArns to the thing groups to watch, or arn:<partition>:iot:<region>:<account>:all/things."
            ),
            governs=governs,
            check=check_targets,
        ),
        stack_policy(
            name="detect-ml-profile-present",
            description="Where the environment requires it, at least one security profile uses ML Detect.",
            severity=Severity.MEDIUM,
            controls=Controls(
                pci=("11.5.1",),
                hipaa=("164.308(a)(1)(ii)(D)",),
                nist=("SI-4", "SI-4(11)"),
            ),
            remediation_steps=(
                "Add a security profile with behaviors whose criteria carry mlDetectionConfig.confidenceLevel "
                "(ML Detect needs 14 days and 25,000 datapoints per metric before it alarms), or set this "
                "policy's required config to false for environments that do not need it."
            ),
            check=check_ml_profile,
            config_schema=ML_SCHEMA,
        ),
    ]

"""Device Defender Audit: the audit role, the account audit configuration with every check set
explicitly, SNS notifications, and the scheduled audits the environment asks for."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.audit_suppression import AuditSuppression, identity_digest
from components.deployment import DeploymentArgs
from components.iam import aws_managed_policy_arn, service_role, stable_role_name
from components.tags import native_tags
from settings.audit import AuditSettings, CheckSetting
from settings.facts import AUDIT_CHECKS_BY_NAME

# AWS-managed policy for the audit role: read-only access to the IoT configuration that audit checks.
AUDIT_MANAGED_POLICY = "service-role/AWSIoTDeviceDefenderAudit"


class AuditArgs(DeploymentArgs):
    """Inputs of the audit component."""

    settings: AuditSettings
    """Validated audit settings (checks, options, schedules)."""
    notification_topic_arn: pulumi.Input[str]
    """SNS topic that receives audit notifications."""
    notification_role_arn: pulumi.Input[str]
    """Role Device Defender assumes to publish to that topic."""


def _python_arg_name(cfn_property: str) -> str:
    """aws-native's Python keyword for a CloudFormation property (IoTPolicy... -> io_t_policy...)."""
    camel = cfn_property[0].lower() + cfn_property[1:]
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


def check_configuration(check: CheckSetting) -> Any:
    """The typed aws-native argument for one check, including its threshold option when it has one."""
    option = AUDIT_CHECKS_BY_NAME[check.name].threshold_option
    native = aws_native.iot
    if option == "CertExpirationThresholdInDays":
        return native.AccountAuditConfigurationDeviceCertExpirationAuditCheckConfigurationArgs(
            enabled=check.enabled,
            configuration=native.AccountAuditConfigurationCertExpirationCheckCustomConfigurationArgs(
                cert_expiration_threshold_in_days=str(check.threshold_days),
            ),
        )
    if option == "CertAgeThresholdInDays":
        return native.AccountAuditConfigurationDeviceCertAgeAuditCheckConfigurationArgs(
            enabled=check.enabled,
            configuration=native.AccountAuditConfigurationCertAgeCheckCustomConfigurationArgs(
                cert_age_threshold_in_days=str(check.threshold_days),
            ),
        )
    return native.AccountAuditConfigurationAuditCheckConfigurationArgs(enabled=check.enabled)


class AuditComponent(pulumi.ComponentResource):
    """Account-wide audit configuration (when this stack owns it) plus scheduled audits."""

    role: aws.iam.Role | None
    configuration: aws_native.iot.AccountAuditConfiguration | None
    scheduled_audits: list[aws_native.iot.ScheduledAudit]
    suppressions: list[AuditSuppression]

    def __init__(self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:audit:Audit", name, None, opts)
        settings = args["settings"]
        self.role = None
        self.configuration = None
        if settings.manage_account_configuration:
            self.role, self.configuration = self._account_configuration(name, args)
        tags = native_tags(args["tags"], aws_native.TagArgs)
        # A schedule may only name checks that the account configuration has enabled; when another owner
        # holds the configuration, the settings' checks state what that owner enables.
        after_configuration = pulumi.ResourceOptions(
            parent=self, depends_on=[self.configuration] if self.configuration else None,
        )
        self.scheduled_audits = [
            aws_native.iot.ScheduledAudit(
                f"{name}-{schedule.name}",
                scheduled_audit_name=schedule.name,
                frequency=aws_native.iot.ScheduledAuditFrequency(schedule.frequency),
                day_of_week=aws_native.iot.ScheduledAuditDayOfWeek(schedule.day_of_week)
                if schedule.day_of_week else None,
                day_of_month=schedule.day_of_month,
                target_check_names=list(schedule.checks),
                tags=tags,
                opts=after_configuration,
            )
            for schedule in settings.schedules
        ]
        # AWS suppresses findings only of enabled checks: after the configuration that enables them.
        self.suppressions = [
            AuditSuppression(
                # Named by what it suppresses, so a changed check or resource is a new suppression.
                f"{name}-suppression-{identity_digest(suppression.check, dict(suppression.resource_identifier))[:12]}",
                {
                    "check_name": suppression.check,
                    "resource_identifier": dict(suppression.resource_identifier),
                    "expires": suppression.expires,
                    "description": suppression.reason,
                    "region": args["region"],
                },
                opts=after_configuration,
            )
            for suppression in settings.suppressions
        ]
        self.register_outputs({
            "roleArn": self.role.arn if self.role else None,
            "scheduledAuditNames": [schedule.name for schedule in settings.schedules],
        })

    def _account_configuration(
        self, name: str, args: AuditArgs
    ) -> tuple[aws.iam.Role, aws_native.iot.AccountAuditConfiguration]:
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            f"{name}-role", "iot.amazonaws.com", account_id=args["account_id"],
            description="Assumed by AWS IoT Device Defender Audit to read the account's IoT configuration",
            # The retained configuration points at this role: its ARN must survive a destroy and up.
            name=stable_role_name(name, args["region"]),
            tags=args["tags"], opts=child,
        )
        role_policy = aws.iam.RolePolicyAttachment(
            f"{name}-role-read-config",
            role=role.name,
            policy_arn=aws_managed_policy_arn(args["partition"], AUDIT_MANAGED_POLICY),
            opts=child,
        )
        checks = {
            _python_arg_name(AUDIT_CHECKS_BY_NAME[check.name].cfn_property): check_configuration(check)
            for check in settings.checks
        }
        configuration = aws_native.iot.AccountAuditConfiguration(
            f"{name}-configuration",
            account_id=args["account_id"],
            role_arn=role.arn,
            audit_check_configurations=aws_native.iot.AccountAuditConfigurationAuditCheckConfigurationsArgs(**checks),
            audit_notification_target_configurations=(
                aws_native.iot.AccountAuditConfigurationAuditNotificationTargetConfigurationsArgs(
                    sns=aws_native.iot.AccountAuditConfigurationAuditNotificationTargetArgs(
                        target_arn=args["notification_topic_arn"],
                        role_arn=args["notification_role_arn"],
                        enabled=settings.notifications_enabled,
                    )
                )
            ),
            # The configuration is account-wide; deleting the stack should not silently switch audit off.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[role_policy]),
        )
        return role, configuration

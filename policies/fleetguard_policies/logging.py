"""Logging: IoT v2 logging on, and every log group expires its data on purpose."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy, PolicyConfigSchema, Severity

from .building import Controls, Report, ResourceContext, of_types, option, resource_policy
from .shared_facts import IOT_LOG_LEVELS
from .values import as_number, has_value, known

IOT_LOGGING: Final = ("aws:iot/loggingOptions:LoggingOptions", "aws-native:iot:Logging")
LOG_GROUPS: Final = ("aws:cloudwatch/logGroup:LogGroup", "aws-native:logs:LogGroup")

RETENTION_SCHEMA = PolicyConfigSchema(properties={
    "minimumRetentionDays": {
        "type": "integer",
        "minimum": 1,
        "description": "Shortest retention a log group may have (PCI DSS 10.5.1 asks for 12 months).",
        "default": 365,
    },
})


def check_iot_logging(ctx: ResourceContext, report: Report) -> None:
    level = known(ctx.props.get("defaultLogLevel"), "defaultLogLevel")
    if level not in IOT_LOG_LEVELS:
        report(f"defaultLogLevel is {level!r}; IoT v2 logging needs one of {', '.join(IOT_LOG_LEVELS)}")
    if known(ctx.props.get("disableAllLogs"), "disableAllLogs") is True:
        report("disableAllLogs is true, which turns IoT logging off")
    if not has_value(ctx.props.get("roleArn")):
        report("roleArn is missing: IoT needs a role to write logs to CloudWatch")


def check_retention(ctx: ResourceContext, report: Report) -> None:
    minimum = option(ctx.config, RETENTION_SCHEMA, "minimumRetentionDays")
    value = ctx.props.get("retentionInDays")
    if value is None or value == 0:
        report(f"retentionInDays is not set, so the log group keeps data forever; set at least {minimum:g} days")
        return
    days = as_number(value, "retentionInDays")
    if days < minimum:
        report(f"retentionInDays is {days:g}; this environment requires at least {minimum:g}")


def policies() -> list[Policy]:
    return [
        resource_policy(
            name="iot-logging-enabled",
            description="AWS IoT v2 logging is enabled with a log level other than DISABLED and a logging role.",
            severity=Severity.HIGH,
            controls=Controls(pci=("10.2.1",), hipaa=("164.312(b)",), nist=("AU-2", "AU-12")),
            remediation_steps=(
                "Set defaultLogLevel to ERROR, WARN, INFO or DEBUG, leave disableAllLogs false, and give roleArn "
                "a role IoT can assume to write CloudWatch logs."
            ),
            governs=of_types(*IOT_LOGGING),
            check=check_iot_logging,
        ),
        resource_policy(
            name="log-group-retention",
            description="Every CloudWatch log group has a retention period of at least the configured minimum.",
            severity=Severity.MEDIUM,
            controls=Controls(pci=("10.5.1",), hipaa=("164.312(b)",), nist=("AU-11",)),
            remediation_steps="Set retentionInDays to a CloudWatch retention value of at least minimumRetentionDays.",
            governs=of_types(*LOG_GROUPS),
            check=check_retention,
            config_schema=RETENTION_SCHEMA,
        ),
    ]

"""``fleetguard:quarantine``: the quarantine thing group, its policy and logging, the Device Defender
mitigation actions, and the contain/release functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from settings import facts
from settings.reader import Node
from settings.tunnel import DISABLED, TunnelSettings, parse_tunnel

DEFAULT_GROUP_NAME: Final = "QUARANTINED"
DEFAULT_FORENSIC_TOPIC_PREFIX: Final = "fleetguard/forensics"

FORENSIC_TOPIC_PREFIX_PATTERN: Final = r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+){0,3}"
"""Plain MQTT topic levels: no wildcards or ``$`` (reserved topics), nothing IoT policy matching treats
specially (``*``, ``?``, ``${``), and at most four levels so that ``<prefix>/<thing>/<subtopic>`` stays
within AWS IoT's limit of eight topic levels."""
FORENSIC_TOPIC_PREFIX_MAX_LENGTH: Final = 64
"""The prefix appears twice in the quarantine IoT policy, which AWS IoT caps at 2048 characters."""

POWERTOOLS_LAYER_VERSION: Final = 36
"""Version of the AWSLambdaPowertoolsPythonV3 layer used when a stack does not set one. Not verified
against AWS's layer table: the layer must package aws-lambda-powertools 3.37.0 (requirements.txt); check
the layer description with ``aws lambda get-layer-version-by-arn`` before relying on it."""
POWERTOOLS_LAYER_VERSION_RANGE: Final = (1, 1000)
FUNCTION_TIMEOUT_RANGE: Final = (3, 300)
"""Seconds; 300 is the most an SSM Automation ``aws:invokeLambdaFunction`` step waits."""
FUNCTION_MEMORY_RANGE: Final = (128, 10240)


@dataclass(frozen=True)
class QuarantineSettings:
    """How a quarantined device is isolated and watched, and how the response functions run."""

    group_name: str
    """Static thing group that holds quarantined things (the handlers' QUARANTINE_GROUP_NAME)."""
    forensic_topic_prefix: str
    """A quarantined device may publish evidence under ``<prefix>/<its thing name>``."""
    group_log_level: str
    """AWS IoT log level for things in the quarantine group."""
    manage_group_logging: bool
    """Whether this stack sets the quarantine group's resource-specific log level. The level is account
    state keyed by the group's name alone, so only one stack per account and region may set it."""
    manage_account_logging: bool
    """Whether this stack owns the account's v2 logging options and the ``AWSIotLogsV2`` log group; only
    one stack per account and region may."""
    account_log_level: str
    """Account-wide default AWS IoT log level (when this stack manages account logging)."""
    iot_log_retention_days: int
    """Retention of the ``AWSIotLogsV2`` log group AWS IoT writes to."""
    mitigation_log_level: str
    """Level the ENABLE_IOT_LOGGING mitigation action sets for audit findings."""
    function_log_level: str
    """POWERTOOLS_LOG_LEVEL of the contain and release functions."""
    function_log_retention_days: int
    function_timeout_seconds: int
    function_memory_mb: int
    powertools_layer_version: int
    tunnel: TunnelSettings = DISABLED
    """Online forensics: a secure tunnel to a quarantined device, behind an approval in the runbook."""


def parse_quarantine(node: Node) -> QuarantineSettings:
    section = node.mapping(allowed_keys=(
        "groupName", "forensicTopicPrefix", "groupLogLevel", "manageGroupLogging", "manageAccountLogging",
        "accountLogLevel",
        "iotLogRetentionDays", "mitigationLogLevel", "functionLogLevel", "functionLogRetentionDays",
        "functionTimeoutSeconds", "functionMemoryMb", "powertoolsLayerVersion", "tunnel",
    ))
    manage_group_logging = section.child("manageGroupLogging").boolean(True)
    # No IoT level may be DISABLED: the account default must let the quarantine group's DEBUG override take
    # effect, and ENABLE_IOT_LOGGING refuses DISABLED.
    return QuarantineSettings(
        group_name=section.child("groupName").string(
            DEFAULT_GROUP_NAME, pattern=facts.THING_GROUP_NAME_PATTERN
        ) or DEFAULT_GROUP_NAME,
        forensic_topic_prefix=_forensic_topic_prefix(section.child("forensicTopicPrefix")),
        group_log_level=_group_log_level(section.child("groupLogLevel"), manage_group_logging),
        manage_group_logging=manage_group_logging,
        manage_account_logging=section.child("manageAccountLogging").boolean(True),
        account_log_level=section.child("accountLogLevel").string("ERROR", allowed=facts.IOT_LOG_LEVELS) or "ERROR",
        iot_log_retention_days=_retention(section.child("iotLogRetentionDays"), 90),
        mitigation_log_level=section.child("mitigationLogLevel").string(
            "ERROR", allowed=facts.IOT_LOG_LEVELS
        ) or "ERROR",
        function_log_level=section.child("functionLogLevel").string(
            "INFO", allowed=facts.POWERTOOLS_LOG_LEVELS
        ) or "INFO",
        function_log_retention_days=_retention(section.child("functionLogRetentionDays"), 90),
        function_timeout_seconds=section.child("functionTimeoutSeconds").bounded_integer(
            60, *FUNCTION_TIMEOUT_RANGE
        ),
        function_memory_mb=section.child("functionMemoryMb").bounded_integer(256, *FUNCTION_MEMORY_RANGE),
        powertools_layer_version=section.child("powertoolsLayerVersion").bounded_integer(
            POWERTOOLS_LAYER_VERSION, *POWERTOOLS_LAYER_VERSION_RANGE
        ),
        tunnel=parse_tunnel(section.child("tunnel")),
    )


def _group_log_level(node: Node, manage: bool) -> str:
    level = node.string("DEBUG", allowed=facts.IOT_LOG_LEVELS) or "DEBUG"
    if not node.missing and not manage:
        # The group's level belongs to whoever sets it; a level here would silently do nothing.
        node.fail("only applies when manageGroupLogging is true; remove it or set manageGroupLogging: true")
    return level


def _forensic_topic_prefix(node: Node) -> str:
    prefix = node.string(DEFAULT_FORENSIC_TOPIC_PREFIX, pattern=FORENSIC_TOPIC_PREFIX_PATTERN)
    if prefix is None:
        return DEFAULT_FORENSIC_TOPIC_PREFIX
    if len(prefix) > FORENSIC_TOPIC_PREFIX_MAX_LENGTH:
        node.fail(f"expected at most {FORENSIC_TOPIC_PREFIX_MAX_LENGTH} characters")
        return DEFAULT_FORENSIC_TOPIC_PREFIX
    return prefix


def _retention(node: Node, default: int) -> int:
    return node.integer(default, allowed=facts.LOG_RETENTION_DAYS) or default

"""Logging rules over gRPC: IoT v2 logging on, log groups with retention."""

from __future__ import annotations

import pytest

from harness.analyzer import PolicyPackProcess
from tests.policies.stack_builders import changed, kms_key, log_group, logging_options, resource, unknown, violations

IOT_LOGGING = "iot-logging-enabled"
RETENTION = "log-group-retention"


def test_iot_logging_at_info_with_a_role_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(logging_options())

    assert not result.diagnostics
    assert IOT_LOGGING not in result.not_applicable


@pytest.mark.parametrize(("overrides", "reported"), [
    ({"defaultLogLevel": "DISABLED"}, "defaultLogLevel is 'DISABLED'"),
    ({"disableAllLogs": True}, "disableAllLogs is true"),
    ({"roleArn": None}, "roleArn is missing"),
])
def test_iot_logging_that_logs_nothing_is_blocked(
    pack: PolicyPackProcess, overrides: dict[str, object], reported: str,
) -> None:
    [message] = violations(pack.analyze(changed(logging_options(), **overrides)), IOT_LOGGING)

    assert reported in message


def test_the_native_logging_resource_is_governed_too(pack: PolicyPackProcess) -> None:
    native = resource("aws-native:iot:Logging", "native-logging", {
        "accountId": "123456789012", "defaultLogLevel": "DISABLED", "roleArn": "arn:aws:iam::123456789012:role/l",
    })

    assert violations(pack.analyze(native), IOT_LOGGING)


def test_an_unknown_log_level_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(changed(logging_options(), defaultLogLevel=unknown())), IOT_LOGGING)

    assert message.startswith("cannot verify at the update")


def test_a_year_of_retention_passes(pack: PolicyPackProcess) -> None:
    result = pack.analyze(log_group(365))

    assert not violations(result, RETENTION)
    assert RETENTION not in result.not_applicable


@pytest.mark.parametrize(("retention", "reported"), [
    (None, "retentionInDays is not set"),
    (0, "retentionInDays is not set"),
    (30, "retentionInDays is 30; this environment requires at least 365"),
])
def test_short_or_missing_retention_is_blocked(pack: PolicyPackProcess, retention: object, reported: str) -> None:
    [message] = violations(pack.analyze(log_group(retention)), RETENTION)

    assert reported in message


def test_the_minimum_retention_is_configurable(pack: PolicyPackProcess) -> None:
    pack.configure({RETENTION: {"minimumRetentionDays": 14}})

    assert not violations(pack.analyze(log_group(30)), RETENTION)


def test_unknown_retention_fails_closed(pack: PolicyPackProcess) -> None:
    [message] = violations(pack.analyze(log_group(unknown())), RETENTION)

    assert message.startswith("cannot verify at the update")


def test_logging_rules_do_not_apply_to_other_types(pack: PolicyPackProcess) -> None:
    result = pack.analyze(kms_key())

    assert IOT_LOGGING in result.not_applicable
    assert RETENTION in result.not_applicable

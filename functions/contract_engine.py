"""The contract of the fleetguard Detect engine's functions (built on ``functions.contract``): the stream
handler's and the sweep's configuration, each rendering its environment and reading it back, and the state
table's key, TTL attribute and sparse index, which the stack declares and the functions use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic

from functions.contract import (
    QUEUE_URL_PATTERN,
    TABLE_NAME_PATTERN,
    TOPIC_ARN_PATTERN,
    EnvVar,
    Value,
    _matching,
    _optional,
    _runtime_environment,
)


@dataclass(frozen=True)
class EngineHandlerEnvironment(Generic[Value]):
    """The Detect engine's stream handler: where device state lives, where violations and undecodable
    records go. Its behaviors come packaged in its archive (``functions.engine_behaviors.PROFILE_FILE``)."""

    state_table: Value
    alert_topic_arn: Value
    dead_letter_queue_url: Value
    service_name: str | None = None
    retry_mode: str | None = None

    def to_environment(self) -> dict[str, Value | str]:
        return {
            EnvVar.STATE_TABLE.value: self.state_table,
            EnvVar.ALERT_TOPIC_ARN.value: self.alert_topic_arn,
            EnvVar.DEAD_LETTER_QUEUE_URL.value: self.dead_letter_queue_url,
            **_runtime_environment(self.service_name, self.retry_mode, None),
        }

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> EngineHandlerEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed."""
        return EngineHandlerEnvironment(
            state_table=_matching(env, EnvVar.STATE_TABLE, TABLE_NAME_PATTERN, "a DynamoDB table name"),
            alert_topic_arn=_matching(env, EnvVar.ALERT_TOPIC_ARN, TOPIC_ARN_PATTERN, "an SNS topic ARN"),
            dead_letter_queue_url=_matching(env, EnvVar.DEAD_LETTER_QUEUE_URL, QUEUE_URL_PATTERN, "an SQS queue URL"),
            service_name=_optional(env, EnvVar.POWERTOOLS_SERVICE_NAME),
            retry_mode=_optional(env, EnvVar.AWS_RETRY_MODE),
        )


@dataclass(frozen=True)
class EngineSweepEnvironment(Generic[Value]):
    """The Detect engine's scheduled sweep (alarms of devices silent for two days)."""

    state_table: Value
    alert_topic_arn: Value
    service_name: str | None = None
    retry_mode: str | None = None

    def to_environment(self) -> dict[str, Value | str]:
        return {
            EnvVar.STATE_TABLE.value: self.state_table,
            EnvVar.ALERT_TOPIC_ARN.value: self.alert_topic_arn,
            **_runtime_environment(self.service_name, self.retry_mode, None),
        }

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> EngineSweepEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed."""
        return EngineSweepEnvironment(
            state_table=_matching(env, EnvVar.STATE_TABLE, TABLE_NAME_PATTERN, "a DynamoDB table name"),
            alert_topic_arn=_matching(env, EnvVar.ALERT_TOPIC_ARN, TOPIC_ARN_PATTERN, "an SNS topic ARN"),
            service_name=_optional(env, EnvVar.POWERTOOLS_SERVICE_NAME),
            retry_mode=_optional(env, EnvVar.AWS_RETRY_MODE),
        )


STATE_DEVICE: Final = "device"
"""The state table's partition key (string): the thing name or client id."""
STATE_EXPIRES_AT: Final = "expiresAt"
"""The state table's TTL attribute (epoch seconds): a device silent this long is forgotten."""
STATE_ALARMED: Final = "alarmedLastSeenMs"
"""Set (number: the device's last-seen time) only while one of its behaviors is in alarm, so the index on
it is sparse: the sweep reads alarmed devices only, never the whole fleet."""
STATE_ALARMED_INDEX: Final = "alarmed"
"""The global secondary index keyed on ``STATE_ALARMED`` (keys only)."""


def create_engine_state_table_request(table_name: str) -> dict[str, Any]:
    """CreateTable parameters for the Detect engine's state table, for emulated accounts (tests, the drill,
    benchmarks); the stack declares the same table, index and TTL (on ``STATE_EXPIRES_AT``)."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": STATE_DEVICE, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": STATE_DEVICE, "AttributeType": "S"},
            {"AttributeName": STATE_ALARMED, "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": STATE_ALARMED_INDEX,
            "KeySchema": [{"AttributeName": STATE_ALARMED, "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        "BillingMode": "PAY_PER_REQUEST",
    }

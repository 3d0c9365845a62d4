"""The contract between the stack and the functions: every name both sides must spell the same way.

The Pulumi program imports this module to configure the functions and to declare what the runbook reads;
the functions import it to read their configuration and to shape their results; the drill, the
benchmarks and the tests import it to drive and check both. It imports nothing outside the standard
library and ``functions.messages`` (itself standard library only), so the program can use it without the
functions' run-time dependencies.

What lives here: the environment variable names (``EnvVar``) and, per function, a typed object that
renders its environment and reads it back with an error naming the variable; the keys and SSM output
types of the contain and release results (``OutputKey``, ``OUTPUT_TYPES``) and their ``status`` values
(``Status``); the intake's per-record outcomes (``Outcome``, ``RecordOutcome``); the notice ledger
table's key names. Built on the names here: the OpsCenter incidents' settings and escalation stages in
``functions/contract_opscenter.py``; the Detect engine's functions' configuration and its state table's key,
TTL and index in ``functions/contract_engine.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from functions.messages import THING_NAME_PATTERN

Value = TypeVar("Value")
"""What an environment value is: ``str`` in a function, a Pulumi input in the program."""


class EnvVar(StrEnum):
    """Every environment variable the stack sets on a function."""

    QUARANTINE_GROUP_NAME = "QUARANTINE_GROUP_NAME"
    INCIDENT_MANAGER_ENABLED = "INCIDENT_MANAGER_ENABLED"
    RESPONSE_PLAN_ARN = "RESPONSE_PLAN_ARN"
    RESPONDERS_TOPIC_ARN = "RESPONDERS_TOPIC_ARN"
    IMPACT_RULES = "IMPACT_RULES"
    AUDIT_ROUTING = "AUDIT_ROUTING"
    IOT_LOG_GROUP = "IOT_LOG_GROUP"
    STORM_THRESHOLD = "STORM_THRESHOLD"
    STORM_WINDOW_SECONDS = "STORM_WINDOW_SECONDS"
    """The queue's batching window; documentation for a reader of the function's configuration."""
    ENGINE_PROFILE_NAMES = "ENGINE_PROFILE_NAMES"  # comma-separated; unset without the fleetguard engine
    CONTAINMENT_RATE = "CONTAINMENT_RATE"  # devices/s one intake invocation contains one by one
    ADD_TO_QUARANTINE_ACTION_NAME = "ADD_TO_QUARANTINE_ACTION_NAME"
    NOTICE_LEDGER_TABLE = "NOTICE_LEDGER_TABLE"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    AWS_RETRY_MODE = "AWS_RETRY_MODE"
    IOT_DATA_ENDPOINT = "IOT_DATA_ENDPOINT"
    OPS_CENTER_ENABLED = "OPS_CENTER_ENABLED"
    OPS_ITEM_CATEGORY = "OPS_ITEM_CATEGORY"
    OPS_ITEM_SEVERITY_BY_IMPACT = "OPS_ITEM_SEVERITY_BY_IMPACT"
    RUNBOOK_NAME = "RUNBOOK_NAME"
    AUTOMATION_ROLE_ARN = "AUTOMATION_ROLE_ARN"
    ESCALATION_SCHEDULE_GROUP = "ESCALATION_SCHEDULE_GROUP"
    ESCALATION_FUNCTION_ARN = "ESCALATION_FUNCTION_ARN"
    SCHEDULER_ROLE_ARN = "SCHEDULER_ROLE_ARN"
    ESCALATION_STAGES = "ESCALATION_STAGES"
    OPS_ITEM_TAGS = "OPS_ITEM_TAGS"
    STATE_TABLE = "STATE_TABLE"
    """The Detect engine's device state table."""
    ALERT_TOPIC_ARN = "ALERT_TOPIC_ARN"
    """The topic Device Defender sends violations to; the Detect engine publishes its own there too."""
    DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
    """Where the Detect engine keeps stream records it cannot decode, with the reason."""
    TUNNEL_SECRET_PREFIX = "TUNNEL_SECRET_PREFIX"
    """The name prefix of the secrets holding tunnels' source access tokens; set on the tunnel function and,
    when tunnels are enabled, on the release function (which closes them)."""
    TUNNEL_MAX_LIFETIME_MINUTES = "TUNNEL_MAX_LIFETIME_MINUTES"
    TUNNEL_READER_ROLE_ARNS = "TUNNEL_READER_ROLE_ARNS"  # comma-separated: the responders' roles
    TUNNEL_RELEASE_ROLE_ARN = "TUNNEL_RELEASE_ROLE_ARN"  # the release function's role, which deletes secrets
    AUDIT_MITIGATIONS = "AUDIT_MITIGATIONS"
    """JSON: per audit check, the mitigation action names and who starts them (``contract_mitigation``)."""
    AUDIT_MITIGATION_DOCUMENT = "AUDIT_MITIGATION_DOCUMENT"
    """The Automation document a responder runs to approve a check's mitigation."""


# --- validation of environment values ------------------------------------------------------------------------

RESPONSE_PLAN_ARN_PATTERN: Final = re.compile(
    r"arn:aws(-cn|-us-gov)?:ssm-incidents::[0-9]{12}:response-plan/[a-zA-Z0-9_-]{1,200}"
)
TOPIC_ARN_PATTERN: Final = re.compile(r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,256}")
# CloudWatch Logs group names: 1-512 characters of [.-_/#A-Za-z0-9].
LOG_GROUP_PATTERN: Final = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
MITIGATION_ACTION_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
TABLE_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
PROFILE_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")  # security profiles: never a comma
# SQS queue URLs: https://<endpoint>/<account>/<queue name>; names are 1-80 of [A-Za-z0-9_-], ".fifo" for FIFO.
QUEUE_URL_PATTERN: Final = re.compile(r"https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?/[0-9]{12}/[a-zA-Z0-9_-]{1,80}(\.fifo)?")
MIN_STORM_THRESHOLD: Final = 2
"""A storm of one device is a single alarm; the threshold must be at least two."""
_BOOLEANS: Final = ("true", "false")


def _required(env: Mapping[str, str], name: EnvVar, hint: str = "") -> str:
    value = env.get(name, "")
    if not value:
        raise ValueError(f"{name}: environment variable is not set{hint}")
    return value


def _matching(
    env: Mapping[str, str], name: EnvVar, pattern: re.Pattern[str], what: str, *, hint: str = ""
) -> str:
    value = _required(env, name, hint)
    if not pattern.fullmatch(value):
        raise ValueError(f"{name}: expected {what} matching {pattern.pattern}, got {value!r}")
    return value


def _optional(env: Mapping[str, str], name: EnvVar) -> str | None:
    return env.get(name) or None


def _runtime_environment(
    service_name: str | None, retry_mode: str | None, iot_data_endpoint: Value | None
) -> dict[str, Value | str]:
    """The variables the Lambda runtime's libraries read (Powertools, botocore, ``functions.aws_clients``);
    an unset one is left out so the library's own default applies."""
    rendered: dict[str, Value | str] = {}
    if service_name is not None:
        rendered[EnvVar.POWERTOOLS_SERVICE_NAME.value] = service_name
    if retry_mode is not None:
        rendered[EnvVar.AWS_RETRY_MODE.value] = retry_mode
    if iot_data_endpoint is not None:
        rendered[EnvVar.IOT_DATA_ENDPOINT.value] = iot_data_endpoint
    return rendered


# --- the contain and release functions -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainmentEnvironment(Generic[Value]):
    """The contain and release functions' configuration."""

    quarantine_group_name: Value
    service_name: str | None = None
    """POWERTOOLS_SERVICE_NAME: how the function's log lines name it."""
    retry_mode: str | None = None
    """AWS_RETRY_MODE: botocore's retry mode (standard or adaptive)."""
    iot_data_endpoint: Value | None = None
    """IOT_DATA_ENDPOINT: the account's IoT data (ATS) endpoint host; looked up when unset."""
    tunnel_secret_prefix: str | None = None
    """TUNNEL_SECRET_PREFIX, set when the stack opens secure tunnels: release closes the device's tunnels
    and deletes their secrets."""

    def to_environment(self) -> dict[str, Value | str]:
        rendered: dict[str, Value | str] = {
            EnvVar.QUARANTINE_GROUP_NAME.value: self.quarantine_group_name,
            **_runtime_environment(self.service_name, self.retry_mode, self.iot_data_endpoint),
        }
        if self.tunnel_secret_prefix is not None:
            rendered[EnvVar.TUNNEL_SECRET_PREFIX.value] = self.tunnel_secret_prefix
        return rendered

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> ContainmentEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed."""
        return ContainmentEnvironment(
            quarantine_group_name=_matching(
                env, EnvVar.QUARANTINE_GROUP_NAME, THING_NAME_PATTERN, "a thing group name",
                hint=" (the quarantine thing group name)",
            ),
            service_name=_optional(env, EnvVar.POWERTOOLS_SERVICE_NAME),
            retry_mode=_optional(env, EnvVar.AWS_RETRY_MODE),
            iot_data_endpoint=_optional(env, EnvVar.IOT_DATA_ENDPOINT),
            tunnel_secret_prefix=_optional(env, EnvVar.TUNNEL_SECRET_PREFIX),
        )


# --- the intake function -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeEnvironment(Generic[Value]):
    """The intake function's configuration as the stack sets it: scalars typed, the two JSON documents
    (impact rules, audit routing) as text; ``functions.intake_config`` gives them their meaning."""

    quarantine_group_name: Value
    incident_manager_enabled: bool
    response_plan_arn: Value | None
    """Set exactly when Incident Manager is enabled."""
    responders_topic_arn: Value
    impact_rules: str
    audit_routing: str
    iot_log_group: Value
    storm_threshold: int
    """N or more in-alarm violations of one (security profile, behavior) in a batch form a storm."""
    add_to_quarantine_action_name: Value
    notice_ledger_table: Value
    storm_window_seconds: int | None = None
    service_name: str | None = None
    retry_mode: str | None = None
    iot_data_endpoint: Value | None = None
    engine_profile_names: tuple[str, ...] = ()  # the fleetguard engine's: storms contained device by device
    containment_rate: int | None = None  # ... at this many devices per second per invocation

    def to_environment(self) -> dict[str, Value | str]:
        rendered: dict[str, Value | str] = {
            EnvVar.QUARANTINE_GROUP_NAME.value: self.quarantine_group_name,
            EnvVar.INCIDENT_MANAGER_ENABLED.value: _BOOLEANS[0] if self.incident_manager_enabled else _BOOLEANS[1],
            EnvVar.RESPONDERS_TOPIC_ARN.value: self.responders_topic_arn,
            EnvVar.IMPACT_RULES.value: self.impact_rules,
            EnvVar.AUDIT_ROUTING.value: self.audit_routing,
            EnvVar.IOT_LOG_GROUP.value: self.iot_log_group,
            EnvVar.STORM_THRESHOLD.value: str(self.storm_threshold),
        }
        if self.storm_window_seconds is not None:
            rendered[EnvVar.STORM_WINDOW_SECONDS.value] = str(self.storm_window_seconds)
        rendered[EnvVar.ADD_TO_QUARANTINE_ACTION_NAME.value] = self.add_to_quarantine_action_name
        runtime = _runtime_environment(self.service_name, self.retry_mode, self.iot_data_endpoint)
        rendered.update(runtime)
        rendered[EnvVar.NOTICE_LEDGER_TABLE.value] = self.notice_ledger_table
        if self.response_plan_arn is not None:
            rendered[EnvVar.RESPONSE_PLAN_ARN.value] = self.response_plan_arn
        if self.engine_profile_names:
            rendered[EnvVar.ENGINE_PROFILE_NAMES.value] = ",".join(self.engine_profile_names)
            rendered[EnvVar.CONTAINMENT_RATE.value] = str(self.containment_rate)
        return rendered

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> IntakeEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed (the JSON documents are only
        required here; ``functions.intake_config`` decodes them)."""
        enabled_text = _required(env, EnvVar.INCIDENT_MANAGER_ENABLED)
        if enabled_text not in _BOOLEANS:
            raise ValueError(
                f"{EnvVar.INCIDENT_MANAGER_ENABLED}: expected one of {', '.join(_BOOLEANS)}, got {enabled_text!r}"
            )
        enabled = enabled_text == _BOOLEANS[0]
        engine_profiles, containment_rate = _engine_storms(env)
        plan_arn = None
        if enabled:
            plan_arn = _matching(
                env, EnvVar.RESPONSE_PLAN_ARN, RESPONSE_PLAN_ARN_PATTERN, "an Incident Manager response plan ARN"
            )
        elif env.get(EnvVar.RESPONSE_PLAN_ARN):
            raise ValueError(
                f"{EnvVar.RESPONSE_PLAN_ARN}: must be unset when {EnvVar.INCIDENT_MANAGER_ENABLED} is false"
            )
        return IntakeEnvironment(
            quarantine_group_name=_matching(
                env, EnvVar.QUARANTINE_GROUP_NAME, THING_NAME_PATTERN, "a thing group name"
            ),
            incident_manager_enabled=enabled,
            response_plan_arn=plan_arn,
            responders_topic_arn=_matching(
                env, EnvVar.RESPONDERS_TOPIC_ARN, TOPIC_ARN_PATTERN, "an SNS topic ARN"
            ),
            impact_rules=_required(env, EnvVar.IMPACT_RULES),
            audit_routing=_required(env, EnvVar.AUDIT_ROUTING),
            iot_log_group=_matching(
                env, EnvVar.IOT_LOG_GROUP, LOG_GROUP_PATTERN, "a CloudWatch Logs group name"
            ),
            storm_threshold=_storm_threshold(env),
            add_to_quarantine_action_name=_matching(
                env, EnvVar.ADD_TO_QUARANTINE_ACTION_NAME, MITIGATION_ACTION_NAME_PATTERN,
                "a mitigation action name",
            ),
            notice_ledger_table=_matching(
                env, EnvVar.NOTICE_LEDGER_TABLE, TABLE_NAME_PATTERN, "a DynamoDB table name"
            ),
            storm_window_seconds=_storm_window_seconds(env),
            service_name=_optional(env, EnvVar.POWERTOOLS_SERVICE_NAME),
            retry_mode=_optional(env, EnvVar.AWS_RETRY_MODE),
            iot_data_endpoint=_optional(env, EnvVar.IOT_DATA_ENDPOINT),
            engine_profile_names=engine_profiles,
            containment_rate=containment_rate,
        )


def _storm_threshold(env: Mapping[str, str]) -> int:
    text = _required(env, EnvVar.STORM_THRESHOLD)
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < MIN_STORM_THRESHOLD:
        raise ValueError(f"{EnvVar.STORM_THRESHOLD}: expected an integer >= {MIN_STORM_THRESHOLD}, got {text!r}")
    return int(text)


def _engine_storms(env: Mapping[str, str]) -> tuple[tuple[str, ...], int | None]:
    text, rate = _optional(env, EnvVar.ENGINE_PROFILE_NAMES), _optional(env, EnvVar.CONTAINMENT_RATE)
    names = tuple(text.split(",")) if text else ()
    if not all(PROFILE_NAME_PATTERN.fullmatch(name) for name in names):
        raise ValueError(f"{EnvVar.ENGINE_PROFILE_NAMES}: expected profile names, comma-separated, got {text!r}")
    if names and not re.fullmatch(r"[1-9][0-9]{0,3}", rate or ""):
        raise ValueError(f"{EnvVar.CONTAINMENT_RATE}: expected devices per second (1-9999) with "
                         f"{EnvVar.ENGINE_PROFILE_NAMES}, got {rate!r}")
    return names, int(rate) if names and rate else None


def _storm_window_seconds(env: Mapping[str, str]) -> int | None:
    text = _optional(env, EnvVar.STORM_WINDOW_SECONDS)
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise ValueError(f"{EnvVar.STORM_WINDOW_SECONDS}: expected a whole number of seconds, got {text!r}")
    return int(text)


# --- the contain and release requests and results ------------------------------------------------------------


class RequestField(StrEnum):
    """The fields of a contain or release request (the runbook's payload, an operator's event)."""

    THING_NAME = "thingName"
    REASON = "reason"
    INCIDENT_RECORD_ARN = "incidentRecordArn"
    OPS_ITEM_ID = "opsItemId"
    """An OpsCenter incident (``OPS_ITEM_ID_PATTERN``): the runbook passes it when the intake opened an OpsItem."""


class OutputKey(StrEnum):
    """The keys of the contain and release functions' results. They are stable: an SSM Automation step
    declares each as an output with the selector ``$.Payload.<key>``."""

    STATUS = "status"
    QUARANTINE_GROUP = "quarantineGroup"
    THING_COUNT = "thingCount"
    THINGS = "things"
    INCIDENT_RECORD_ARN = "incidentRecordArn"


OUTPUT_TYPES: Final[Mapping[OutputKey, str]] = {
    OutputKey.STATUS: "String",
    OutputKey.QUARANTINE_GROUP: "String",
    OutputKey.THING_COUNT: "Integer",
    OutputKey.THINGS: "MapList",
    OutputKey.INCIDENT_RECORD_ARN: "String",
}
"""Each output key's SSM Automation output type."""
THING_NAME_KEY: Final = "thingName"
SHADOW_VERSION_KEY: Final = "shadowVersion"
"""The keys of each entry of ``things``."""


class Status(StrEnum):
    """The ``status`` of a result. A device that could not be confirmed raises instead of returning."""

    CONTAINED = "CONTAINED"
    """Every device the request named is confirmed quarantined."""
    NO_DEVICES = "NO_DEVICES"
    """The incident names no device: an audit finding, or an alert storm that Device Defender mitigation
    tasks contain in bulk."""
    RELEASED = "RELEASED"
    """The device is confirmed out of the quarantine group."""


def containment_result(
    status: Status,
    quarantine_group: str,
    things: Sequence[tuple[str, int]],
    incident_record_arn: str | None,
) -> dict[str, Any]:
    """A contain or release result: ``things`` are (thing name, shadow version) pairs; an absent incident
    is the empty string (SSM outputs have no null)."""
    return {
        OutputKey.STATUS.value: status.value,
        OutputKey.QUARANTINE_GROUP.value: quarantine_group,
        OutputKey.THING_COUNT.value: len(things),
        OutputKey.THINGS.value: [
            {THING_NAME_KEY: thing_name, SHADOW_VERSION_KEY: shadow_version} for thing_name, shadow_version in things
        ],
        OutputKey.INCIDENT_RECORD_ARN.value: incident_record_arn or "",
    }


# --- the intake's outcomes -----------------------------------------------------------------------------------


class Outcome(StrEnum):
    """How the intake handled a record; logged (with its detail) as ``outcome`` of "record handled"."""

    LOGGED = "logged"
    """An alarm ended; detail: its event type. No incident."""
    STORM_MEMBER = "storm member"
    """Part of an alert storm, contained in bulk and announced once per storm and batch; detail: the storm."""
    INCIDENT = "incident"
    """An incident was started; detail: its record ARN."""
    CONTAINED = "contained and notified"
    NOT_REGISTERED = "not registered; notified"
    AUDIT_LOGGED = "audit logged"
    """An audit without non-compliant checks."""
    AUDIT_ROUTED = "audit:"
    """detail: what went to an incident and what was notified."""
    OPS_ITEM = "ops item"
    """An OpsCenter incident was opened (or a redelivery found it) and its runbook started; detail: its id."""


DETAILED_OUTCOMES: Final = frozenset(
    {Outcome.LOGGED, Outcome.STORM_MEMBER, Outcome.INCIDENT, Outcome.AUDIT_ROUTED, Outcome.OPS_ITEM}
)
"""Outcomes that always carry a detail; the others never do."""
IGNORED_OUTCOMES: Final = frozenset({Outcome.LOGGED, Outcome.AUDIT_LOGGED})
"""Outcomes that mean "handled, nothing to do"."""


@dataclass(frozen=True)
class RecordOutcome:
    """An outcome and its detail; its text (``str``) is what the intake logs."""

    kind: Outcome
    detail: str = ""

    def __post_init__(self) -> None:
        if bool(self.detail) != (self.kind in DETAILED_OUTCOMES):
            needs = "needs" if self.kind in DETAILED_OUTCOMES else "takes no"
            raise ValueError(f"outcome {self.kind!r} {needs} detail, got {self.detail!r}")

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}" if self.detail else self.kind.value

    @staticmethod
    def parse(text: str) -> RecordOutcome:
        """The outcome an intake log line's ``outcome`` text renders; ValueError for any other text."""
        for kind in Outcome:
            if kind not in DETAILED_OUTCOMES and text == kind:
                return RecordOutcome(kind)
            if kind in DETAILED_OUTCOMES and text.startswith(f"{kind} ") and len(text) > len(kind) + 1:
                return RecordOutcome(kind, text[len(kind) + 1 :])
        raise ValueError(f"outcome: not an intake outcome: {text!r}")


# --- the notice ledger table ---------------------------------------------------------------------------------

NOTICE_ID: Final = "noticeId"
"""The notice ledger's partition key (string): what identifies a notice, e.g. ``violation/<violation id>``."""
EXPIRES_AT: Final = "expiresAt"
"""The notice ledger's TTL attribute (epoch seconds)."""


def create_notice_table_request(table_name: str) -> dict[str, Any]:
    """CreateTable parameters for the notice ledger, for emulated accounts (tests, the drill, benchmarks);
    the stack declares the same table, with its TTL, in the intake component."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": NOTICE_ID, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": NOTICE_ID, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }

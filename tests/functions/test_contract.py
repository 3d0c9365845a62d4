"""The stack-function contract: each config object reads back what it renders, errors name the variable,
outcomes read back from their text, and no contract name is spelled outside ``functions/contract.py``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import botocore.session  # type: ignore[import-untyped]
import pytest

from functions.contract import (
    DETAILED_OUTCOMES,
    OUTPUT_TYPES,
    ContainmentEnvironment,
    EnvVar,
    IntakeEnvironment,
    Outcome,
    OutputKey,
    RecordOutcome,
    Status,
)
from functions.contract_engine import (
    STATE_ALARMED,
    STATE_ALARMED_INDEX,
    STATE_DEVICE,
    EngineHandlerEnvironment,
    EngineSweepEnvironment,
    create_engine_state_table_request,
)
from tests.functions.test_contract_mitigation import mitigation_environment
from tests.functions.test_contract_opscenter import ops_center_environment

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "functions" / "contract.py"
SCANNED = ("components", "functions", "drill", "benchmarks", "tools", "tests", "__main__.py", "stack_outputs.py")

AWS_MEMBER_NAMES = {
    OutputKey.INCIDENT_RECORD_ARN: ("ssm-incidents", "StartIncidentOutput"),
    OutputKey.THINGS: ("iot", "ListThingsInThingGroupResponse"),
}
"""Output keys that are also members of an AWS API shape: code that reads AWS's answer spells AWS's name,
which merely looks like ours, so these two are not searched for."""
AWS_FORMAT_FIELDS = {
    ("functions/engine_records.py", OutputKey.STATUS.value),
    ("tests/policies/stack_builders.py", OutputKey.STATUS.value),
    ("components/continuous_job.py", OutputKey.STATUS.value),
    ("tests/components/test_continuous_job.py", OutputKey.STATUS.value),
    ("functions/tunnel_access.py", OutputKey.STATUS.value),
    ("tests/functions/test_tunnel.py", OutputKey.STATUS.value),
}
"""Where an AWS field that merely shares a name with ours is spelled: the IoT v2 log entry's ``status`` (no
botocore model describes that format) and a custom authorizer's ``status`` property (the pack's test builders
write resources as the engine presents them; they never speak to the functions); the IoT Jobs API's
``Job.status``, which the continuous job provider reads from DescribeJob and its tests stub; and secure
tunneling's ``TunnelSummary.status``, which the tunnel code reads and its tests serve."""


def guarded_values() -> dict[str, str]:
    """Every value only the contract may spell -> what it is."""
    values: dict[str, str] = {}
    values.update({name.value: "environment variable" for name in EnvVar})
    values.update({key.value: "output key" for key in OutputKey if key not in AWS_MEMBER_NAMES})
    values.update({status.value: "status value" for status in Status})
    values.update({outcome.value: "intake outcome" for outcome in Outcome if outcome not in DETAILED_OUTCOMES})
    return values


def contract_literals(source: str, guarded: dict[str, str]) -> Iterator[tuple[int, str]]:
    """(line, value) for each string constant that is a guarded value, or starts like an outcome followed by
    its detail (possibly the constant part of an f-string that renders one). An outcome with a detail is
    never written bare, and some of them are ordinary words ("incident"), so the bare word is allowed."""
    outcomes = [outcome.value for outcome in DETAILED_OUTCOMES]
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        text = node.value
        if text in guarded or any(text.startswith(f"{outcome} ") for outcome in outcomes):
            yield node.lineno, text


def scanned_files() -> Iterator[Path]:
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
        else:
            yield from (file for file in sorted(path.rglob("*.py")) if ".venv" not in file.parts)


def test_no_contract_name_is_spelled_outside_the_contract() -> None:
    guarded = guarded_values()
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in scanned_files()
        if path != CONTRACT
        for line, value in contract_literals(path.read_text(encoding="utf-8"), guarded)
        if (path.relative_to(ROOT).as_posix(), value) not in AWS_FORMAT_FIELDS
    ]
    assert found == []


def test_the_scan_finds_a_name_written_by_hand() -> None:
    source = (
        f"env = {{{EnvVar.NOTICE_LEDGER_TABLE.value!r}: table}}\n"
        f"done = result[{OutputKey.STATUS.value!r}] == {Status.RELEASED.value!r}\n"
        f"ignored = outcome.startswith({Outcome.LOGGED.value + ' '!r})\n"
        f"line = f{Outcome.INCIDENT.value + ' '!r}'{{arn}}'\n"
    )
    assert sorted(line for line, _ in contract_literals(source, guarded_values())) == [1, 2, 2, 3, 4]


@pytest.mark.parametrize(("key", "where"), sorted(AWS_MEMBER_NAMES.items()))
def test_the_unsearched_output_keys_really_are_aws_member_names(key: OutputKey, where: tuple[str, str]) -> None:
    service, shape = where
    model = botocore.session.get_session().get_service_model(service)
    assert key.value in model.shape_for(shape).members


def test_the_scan_covers_every_module_that_talks_to_the_functions() -> None:
    scanned = {path.relative_to(ROOT).parts[0] for path in scanned_files()}
    assert scanned >= {"components", "functions", "drill", "benchmarks", "tools", "tests", "__main__.py"}


# --- configuration objects ----------------------------------------------------------------------------------


def intake_environment() -> IntakeEnvironment[str]:
    return IntakeEnvironment(
        quarantine_group_name="fleetguard-quarantine",
        incident_manager_enabled=True,
        response_plan_arn="arn:aws:ssm-incidents::123456789012:response-plan/fleetguard-device",
        responders_topic_arn="arn:aws:sns:us-east-1:123456789012:fleetguard-responders",
        impact_rules='{"default": 3}',
        audit_routing='{"incidentChecks": []}',
        iot_log_group="AWSIotLogsV2",
        storm_threshold=50,
        add_to_quarantine_action_name="fleetguard-add-to-quarantine",
        notice_ledger_table="fleetguard-intake-notices",
        storm_window_seconds=60,
        service_name="fleetguard-intake",
        retry_mode="adaptive",
        iot_data_endpoint="data-ats.iot.us-east-1.amazonaws.com",
        engine_profile_names=("fleetguard-prod-engine", "fleetguard-test-engine"),
        containment_rate=20,
    )


def test_the_intake_environment_reads_back_what_it_renders() -> None:
    config = intake_environment()
    rendered = config.to_environment()

    assert all(isinstance(value, str) and type(name) is str for name, value in rendered.items())
    # Every variable but the log level, which the function component sets for every function, and the
    # OpsCenter settings, which OpsCenterEnvironment renders (tests/functions/test_contract_opscenter.py), the
    # audit mitigation settings, which AuditMitigationEnvironment renders (test_contract_mitigation.py), and
    # the Detect engine's own.
    assert set(rendered) == {name.value for name in EnvVar} - {EnvVar.POWERTOOLS_LOG_LEVEL.value} - set(
        ops_center_environment().to_environment()
    ) - set(mitigation_environment().to_environment()) - ENGINE_ONLY - TUNNEL_ONLY
    assert IntakeEnvironment.from_environment(rendered) == config


def test_without_the_detect_engine_the_intake_environment_names_no_engine_profile() -> None:
    config = IntakeEnvironment(**{**intake_environment().__dict__, "engine_profile_names": (),
                                  "containment_rate": None})
    rendered = config.to_environment()

    assert EnvVar.ENGINE_PROFILE_NAMES.value not in rendered
    assert IntakeEnvironment.from_environment(rendered) == config


@pytest.mark.parametrize(("variable", "value", "expected"), [
    (EnvVar.ENGINE_PROFILE_NAMES, "a,b c", "expected profile names, comma-separated"),
    (EnvVar.ENGINE_PROFILE_NAMES, "", None),
    (EnvVar.CONTAINMENT_RATE, "0", "expected devices per second"),
    (EnvVar.CONTAINMENT_RATE, "fast", "expected devices per second"),
])
def test_engine_profiles_and_containment_rate_are_checked(variable: EnvVar, value: str, expected: str | None) -> None:
    rendered = {**intake_environment().to_environment(), variable.value: value}
    if expected is None:
        assert IntakeEnvironment.from_environment(rendered).engine_profile_names == ()
        return
    with pytest.raises(ValueError, match=f"^{variable}: {expected}"):
        IntakeEnvironment.from_environment(rendered)


def test_engine_profiles_need_a_containment_rate() -> None:
    rendered = {**intake_environment().to_environment()}
    del rendered[EnvVar.CONTAINMENT_RATE]
    with pytest.raises(ValueError, match=r"^CONTAINMENT_RATE: expected devices per second \(1-9999\) with "
                                         "ENGINE_PROFILE_NAMES, got None"):
        IntakeEnvironment.from_environment(rendered)


def test_without_incident_manager_the_intake_environment_has_no_response_plan() -> None:
    config = IntakeEnvironment(**{**intake_environment().__dict__, "incident_manager_enabled": False,
                                  "response_plan_arn": None})
    rendered = config.to_environment()

    assert EnvVar.RESPONSE_PLAN_ARN.value not in rendered
    assert rendered[EnvVar.INCIDENT_MANAGER_ENABLED] == "false"
    assert IntakeEnvironment.from_environment(rendered) == config


def test_the_containment_environment_reads_back_what_it_renders() -> None:
    config = ContainmentEnvironment(
        quarantine_group_name="fleetguard-quarantine", service_name="fleetguard-contain", retry_mode="standard",
        iot_data_endpoint="data-ats.iot.us-east-1.amazonaws.com",
    )
    rendered = config.to_environment()

    assert set(rendered) == {EnvVar.QUARANTINE_GROUP_NAME, EnvVar.POWERTOOLS_SERVICE_NAME, EnvVar.AWS_RETRY_MODE,
                             EnvVar.IOT_DATA_ENDPOINT}
    assert ContainmentEnvironment.from_environment(rendered) == config
    # The runtime variables are optional: the libraries that read them have defaults.
    minimal = {EnvVar.QUARANTINE_GROUP_NAME.value: "fleetguard-quarantine"}
    assert ContainmentEnvironment.from_environment(minimal) == ContainmentEnvironment("fleetguard-quarantine")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (EnvVar.STORM_THRESHOLD, None, "environment variable is not set"),
        (EnvVar.STORM_WINDOW_SECONDS, "a minute", "expected a whole number of seconds, got 'a minute'"),
        (EnvVar.IMPACT_RULES, "", "environment variable is not set"),
        (EnvVar.IOT_LOG_GROUP, "AWS Iot Logs", "expected a CloudWatch Logs group name"),
    ],
)
def test_a_missing_or_malformed_variable_is_named(name: EnvVar, value: str | None, message: str) -> None:
    rendered = intake_environment().to_environment()
    env = {key: text for key, text in {**rendered, name.value: value}.items() if text is not None}

    with pytest.raises(ValueError, match=f"^{name}: {message}"):
        IntakeEnvironment.from_environment(env)


TUNNEL_ONLY = {
    EnvVar.TUNNEL_SECRET_PREFIX.value, EnvVar.TUNNEL_MAX_LIFETIME_MINUTES.value, EnvVar.TUNNEL_READER_ROLE_ARNS.value,
    EnvVar.TUNNEL_RELEASE_ROLE_ARN.value,
}
"""The tunnel function's variables (tests/functions/test_tunnel.py reads them back)."""
ENGINE_ONLY = {EnvVar.STATE_TABLE.value, EnvVar.ALERT_TOPIC_ARN.value, EnvVar.DEAD_LETTER_QUEUE_URL.value}
ENGINE_HANDLER = EngineHandlerEnvironment(
    state_table="fleetguard-engine-state",
    alert_topic_arn="arn:aws:sns:us-east-1:123456789012:fleetguard-alerts",
    dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/fleetguard-engine-dead-letters",
    service_name="fleetguard-engine", retry_mode="standard",
)


def test_the_engine_environments_read_back_what_they_render() -> None:
    rendered = ENGINE_HANDLER.to_environment()
    assert set(rendered) == ENGINE_ONLY | {EnvVar.POWERTOOLS_SERVICE_NAME, EnvVar.AWS_RETRY_MODE}
    assert EngineHandlerEnvironment.from_environment(rendered) == ENGINE_HANDLER

    sweep = EngineSweepEnvironment(ENGINE_HANDLER.state_table, ENGINE_HANDLER.alert_topic_arn)
    assert EngineSweepEnvironment.from_environment(sweep.to_environment()) == sweep


@pytest.mark.parametrize(("name", "value", "message"), [
    (EnvVar.DEAD_LETTER_QUEUE_URL, "fleetguard-engine-dead-letters", "expected an SQS queue URL"),
    (EnvVar.STATE_TABLE, "a table", "expected a DynamoDB table name"),
    (EnvVar.ALERT_TOPIC_ARN, None, "environment variable is not set"),
])
def test_a_missing_or_malformed_engine_variable_is_named(name: EnvVar, value: str | None, message: str) -> None:
    env = {key: text for key, text in {**ENGINE_HANDLER.to_environment(), name.value: value}.items()
           if text is not None}

    with pytest.raises(ValueError, match=f"^{name}: {message}"):
        EngineHandlerEnvironment.from_environment(env)


def test_the_engine_state_table_request_is_one_dynamodb_accepts() -> None:
    request = create_engine_state_table_request("fleetguard-engine-state")
    model = botocore.session.get_session().get_service_model("dynamodb")
    # Parameter validation against the service model: names, enums and required members.
    from botocore.validate import ParamValidator  # type: ignore[import-untyped]  # noqa: PLC0415

    report = ParamValidator().validate(request, model.operation_model("CreateTable").input_shape)
    assert not report.has_errors(), report.generate_report()
    index = request["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == STATE_ALARMED_INDEX
    assert index["KeySchema"] == [{"AttributeName": STATE_ALARMED, "KeyType": "HASH"}]
    assert request["KeySchema"] == [{"AttributeName": STATE_DEVICE, "KeyType": "HASH"}]


# --- outcomes and results ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Outcome))
def test_an_outcome_reads_back_from_its_logged_text(kind: Outcome) -> None:
    detail = "(MessagesSent of security profile p) x" if kind in DETAILED_OUTCOMES else ""
    outcome = RecordOutcome(kind, detail)
    text = str(outcome)

    assert text == (f"{kind} {detail}" if detail else kind.value)
    assert RecordOutcome.parse(text) == outcome


@pytest.mark.parametrize("kind", list(Outcome))
def test_an_outcome_has_a_detail_exactly_when_it_should(kind: Outcome) -> None:
    with pytest.raises(ValueError, match="detail"):
        RecordOutcome(kind, "" if kind in DETAILED_OUTCOMES else "unexpected")


@pytest.mark.parametrize("text", ["contained", f"{Outcome.INCIDENT}", f"{Outcome.CONTAINED} twice"])
def test_text_that_is_no_outcome_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an intake outcome"):
        RecordOutcome.parse(text)


def test_every_output_key_has_an_ssm_type() -> None:
    assert set(OUTPUT_TYPES) == set(OutputKey)
    assert set(OUTPUT_TYPES.values()) <= {"String", "Integer", "Boolean", "StringMap", "StringList", "MapList"}

"""Property-based tests: arbitrary and mutated Device Defender messages through the parser and intake.

Properties: the parser only ever raises MessageError; a batch never crashes; every bad record is
reported as a batch item failure with its reason logged; every good message is acted on exactly once
(one StartIncident per distinct in-alarm violation or routed audit task, asserted with a Stubber whose
queue must be used up exactly, in order). Alert storms mixed with single alarms, repeats and broken
messages: every storm violation is in exactly one mitigation task, every storm has one incident and
every other in-alarm violation its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import intake
from functions.messages import (
    MessageError,
    ViolationEvent,
    message_from_sns_record,
    message_from_sqs_body,
    parse_message,
)
from tests.functions.intake_support import (
    AUDIT_ROUTING,
    PLAN_ARN,
    REGION,
    LogCapture,
    failed_ids,
    incident_arn,
    set_intake_env,
    sns_envelope,
    sqs_event,
    sqs_record,
    use_clients,
)

pytest_plugins = ("tests.functions.intake_support",)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
names = st.from_regex(r"[a-zA-Z0-9:_-]{1,40}", fullmatch=True)
violation_ids = st.sampled_from([f"v{n}" for n in range(6)]) | st.from_regex(r"[a-zA-Z0-9-]{1,128}", fullmatch=True)
epoch_ms = st.integers(min_value=10**11, max_value=4 * 10**12)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- good messages -----------------------------------------------------------------------------------


@st.composite
def good_violations(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["rule", "statistical", "ml"]))
    criteria: dict[str, Any] = {"consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 1}
    if kind == "rule":
        criteria |= {"comparisonOperator": "greater-than", "value": {"count": draw(st.integers(0, 10**6))},
                     "durationSeconds": 300}
    elif kind == "statistical":
        criteria |= {"comparisonOperator": "greater-than", "statisticalThreshold": {"statistic": "p90"},
                     "durationSeconds": 300}
    else:
        criteria |= {"mlDetectionConfig": {"confidenceLevel": draw(st.sampled_from(["LOW", "MEDIUM", "HIGH"]))}}
    message: dict[str, Any] = {
        "violationId": draw(violation_ids),
        "thingName": draw(names),
        "securityProfileName": draw(names),
        "behavior": {"name": draw(names), "metric": "aws:num-messages-sent", "criteria": criteria},
        "violationEventType": draw(st.sampled_from(["in-alarm", "alarm-cleared", "alarm-invalidated"])),
        "violationEventTime": draw(epoch_ms),
    }
    if draw(st.booleans()):
        message["metricValue"] = {"count": draw(st.integers(0, 10**9))}
    if draw(st.booleans()):
        # Benign mutation: a key AWS might add later is tolerated.
        message[draw(st.sampled_from(["newField", "region", "extra"]))] = draw(json_values)
    return message


@st.composite
def good_audits(draw: st.DrawFn) -> dict[str, Any]:
    """Audits that either are all compliant (logged) or have only routed non-compliant checks (one
    incident), so no notification is published and Incident Manager is the only AWS service called."""
    routed = draw(st.booleans())
    check = AUDIT_ROUTING["incidentChecks"][0] if routed else "LOGGING_DISABLED_CHECK"
    status = "COMPLETED_NON_COMPLIANT" if routed else "COMPLETED_COMPLIANT"
    return {
        "accountId": "123456789012",
        "taskId": draw(st.from_regex(r"[a-zA-Z0-9-]{1,40}", fullmatch=True)),
        "taskStatus": "COMPLETED",
        "taskType": draw(st.sampled_from(["ON_DEMAND_AUDIT_TASK", "SCHEDULED_AUDIT_TASK"])),
        "failedChecksCount": 0,
        "canceledChecksCount": 0,
        "nonCompliantChecksCount": int(routed),
        "compliantChecksCount": int(not routed),
        "totalChecksCount": 1,
        "taskStartTime": draw(epoch_ms),
        "auditDetails": [{"checkName": check, "checkRunStatus": status,
                          "nonCompliantResourcesCount": int(routed), "totalResourcesCount": 3}],
    }


# --- bad messages ---------------------------------------------------------------------------------------

REQUIRED_STRINGS = ("violationId", "thingName", "securityProfileName", "violationEventType")


@st.composite
def broken_violations(draw: st.DrawFn) -> str:
    """A good violation with one mutation that no valid message survives, as the text SNS carries."""
    message = draw(good_violations())
    mutation = draw(st.sampled_from(["drop", "retype-string", "bad-event-type", "bad-time", "bad-behavior",
                                     "truncate", "criteria-kinds"]))
    if mutation == "drop":
        del message[draw(st.sampled_from([*REQUIRED_STRINGS, "behavior", "violationEventTime"]))]
    elif mutation == "retype-string":
        message[draw(st.sampled_from(REQUIRED_STRINGS))] = draw(json_values.filter(lambda v: not isinstance(v, str)))
    elif mutation == "bad-event-type":
        message["violationEventType"] = draw(
            st.text(max_size=20).filter(lambda v: v not in {"in-alarm", "alarm-cleared", "alarm-invalidated"})
        )
    elif mutation == "bad-time":
        message["violationEventTime"] = draw(
            st.integers(max_value=10**11 - 1) | st.floats(allow_nan=False) | st.text(max_size=13) | st.booleans()
        )
    elif mutation == "bad-behavior":
        message["behavior"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    elif mutation == "criteria-kinds":
        message["behavior"]["criteria"].pop("value", None)
        message["behavior"]["criteria"].pop("statisticalThreshold", None)
        message["behavior"]["criteria"].pop("mlDetectionConfig", None)
    text = json.dumps(message)
    if mutation == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


arbitrary_texts = st.text(max_size=60) | json_values.map(json.dumps)


@dataclass(frozen=True)
class Entry:
    """One record of a generated batch and what the intake must do with it."""

    body: str
    """The SQS record body (an SNS envelope, or raw text)."""
    good: bool
    incident_key: str | None
    """The clientToken of the one StartIncident this message must cause, if any."""
    kind: str
    acted_on_as: str | None = None
    """What the intake acts on once per batch (an audit task, an in-alarm violation): of several messages
    with the same identity in one batch, the first decides what is done."""


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    choice = draw(st.sampled_from(["violation", "audit", "broken", "arbitrary", "arbitrary-raw"]))
    if choice == "violation":
        message = draw(good_violations())
        in_alarm = message["violationEventType"] == "in-alarm"
        token = f"violation-{sha(message['violationId'])}" if in_alarm else None
        identity = f"violation {message['violationId']}" if in_alarm else None
        return Entry(json.dumps(message), True, token, choice, identity)
    if choice == "audit":
        audit = draw(good_audits())
        token = f"audit-{sha(audit['taskId'])}" if audit["nonCompliantChecksCount"] else None
        return Entry(json.dumps(audit), True, token, choice, f"audit {audit['taskId']}")
    if choice == "broken":
        return Entry(draw(broken_violations()), False, None, choice)
    return Entry(draw(arbitrary_texts), False, None, choice)


def record_for(entry: Entry, message_id: str) -> dict[str, Any]:
    record = sqs_record(entry.body, message_id=message_id)
    if entry.kind == "arbitrary-raw":
        record["body"] = entry.body
    return record


# --- properties --------------------------------------------------------------------------------------


@given(arbitrary_texts)
def test_the_parser_only_ever_raises_message_error(text: str) -> None:
    with contextlib.suppress(MessageError):
        parse_message(text)
    with contextlib.suppress(MessageError):
        message_from_sqs_body(text)


@given(json_values, json_values)
def test_envelope_readers_only_ever_raise_message_error(record: Any, body: Any) -> None:
    for sns_record in (record, {"EventSource": "aws:sns", "Sns": record}):
        with contextlib.suppress(MessageError):
            message_from_sns_record(sns_record)
    for sqs_body in (json.dumps(body), body):
        with contextlib.suppress(MessageError):
            message_from_sqs_body(sqs_body)


@given(
    key=st.sampled_from(["violationId", "thingName", "securityProfileName", "behavior", "metricValue",
                         "violationEventType", "violationEventTime", "violationEventAdditionalInfo",
                         "verificationState"]),
    value=json_values,
)
def test_any_field_replaced_is_parsed_as_given_or_rejected_with_message_error(key: str, value: Any) -> None:
    message = {
        "violationEventTime": 1573786800000, "thingName": "dev-IZWB",
        "behavior": {"criteria": {"value": {"count": 10}, "comparisonOperator": "less-than"},
                     "name": "MessagesPub", "metric": "aws:num-messages-sent"},
        "violationEventType": "in-alarm", "metricValue": {"count": 54},
        "violationId": "37e18651d207bbc74236c13faf146127", "securityProfileName": "MySecProfile",
    }
    message[key] = value
    try:
        parsed = parse_message(json.dumps(message))
    except MessageError:
        return
    assert isinstance(parsed, ViolationEvent)
    assert parsed.raw[key] == value


@given(broken_violations())
def test_every_mutation_is_rejected_with_a_field_named(text: str) -> None:
    with pytest.raises(MessageError, match=r"^[A-Za-z.\[\]0-9]+: |^message: "):
        parse_message(message_from_sqs_body(sns_envelope(text, sns_message_id="x")))


@pytest.fixture
def intake_env(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> None:
    # A threshold no generated batch reaches: storms have their own tests; here each message stands alone.
    set_intake_env(monkeypatch, incident_manager=True, storm_threshold=1000)


@pytest.fixture
def incidents(intake_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("ssm-incidents", region_name=REGION)
    use_clients(monkeypatch, incidents=client)
    with Stubber(client) as stubber:
        yield stubber


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(entries(), min_size=1, max_size=15))
def test_a_batch_never_crashes_reports_every_bad_record_and_acts_once_on_every_good_one(
    batch: list[Entry], incidents: Stubber, intake_logs: LogCapture, lambda_context: Any
) -> None:
    intake_logs.entries.clear()
    records = [record_for(entry, f"m-{index}") for index, entry in enumerate(batch)]
    expected_tokens: list[str] = []
    acted_on: set[str] = set()
    for entry in batch:
        if entry.acted_on_as is not None:
            if entry.acted_on_as in acted_on:
                continue  # a repeat of a message already acted on in this batch
            acted_on.add(entry.acted_on_as)
        if entry.incident_key is not None and entry.incident_key not in expected_tokens:
            expected_tokens.append(entry.incident_key)
    for token in expected_tokens:
        params: dict[str, Any] = {"responsePlanArn": PLAN_ARN, "clientToken": token, "title": ANY, "impact": ANY,
                                  "triggerDetails": ANY}
        if token.startswith("violation-"):
            params["relatedItems"] = ANY
        incidents.add_response("start_incident", {"incidentRecordArn": incident_arn(token[:60])}, params)

    response = intake.handler(sqs_event(records), lambda_context)

    bad = [record["messageId"] for record, entry in zip(records, batch, strict=True) if not entry.good]
    assert failed_ids(response) == bad
    reasons = intake_logs.failure_reasons()
    assert sorted(reasons) == sorted(bad)
    assert all(reason.startswith("malformed message: ") for reason in reasons.values())
    incidents.assert_no_pending_responses()


# --- alert storms mixed with single alarms ------------------------------------------------------------

STORM_THRESHOLD = 3
STORM_KEYS = (("fleet-rules", "MessagesSent"), ("fleet-ml", "BytesOut"))


@dataclass(frozen=True)
class StormEntry:
    body: str
    good: bool
    violation_id: str | None
    """Set for an in-alarm violation: the one it must be acted on for."""
    key: tuple[str, str] | None


@st.composite
def storm_entries(draw: st.DrawFn) -> StormEntry:
    """In-alarm violations of two behaviors from a small pool of violation ids (so batches repeat ids,
    as redeliveries do, and reach the storm threshold for one behavior, both or neither), cleared alarms
    and broken messages. A violation id always belongs to the same device and behavior."""
    kind = draw(st.sampled_from(["in-alarm", "in-alarm", "in-alarm", "cleared", "broken"]))
    if kind == "broken":
        return StormEntry(draw(broken_violations()), False, None, None)
    number = draw(st.integers(0, 11))
    profile, behavior = STORM_KEYS[number % len(STORM_KEYS)]
    message: dict[str, Any] = {
        "violationId": f"storm-v{number}",
        "thingName": f"device-{number}",
        "securityProfileName": profile,
        "behavior": {"name": behavior, "metric": "aws:num-messages-sent",
                     "criteria": {"comparisonOperator": "greater-than", "value": {"count": 100},
                                  "durationSeconds": 300, "consecutiveDatapointsToAlarm": 1,
                                  "consecutiveDatapointsToClear": 1}},
        "violationEventType": "in-alarm" if kind == "in-alarm" else "alarm-cleared",
        "violationEventTime": 1_795_165_200_000 + number * 1000,
    }
    in_alarm = kind == "in-alarm"
    return StormEntry(json.dumps(message), True, message["violationId"] if in_alarm else None,
                      (profile, behavior) if in_alarm else None)


class Recorder:
    """Answers every call of one boto3 client with a canned response per operation and records the call.

    Like botocore's Stubber (the request is validated against the service model before it is answered),
    but order-free: a storm's calls and the single alarms' calls may interleave in any order, and the
    property is about what was asked for, not in which order."""

    def __init__(self, client: Any, answers: dict[str, Any]) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answers = answers
        self._pending: list[str] = []
        client.meta.events.register_first("before-parameter-build.*.*", self._record)
        client.meta.events.register_first("before-call.*.*", self._answer)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))
        self._pending.append(model.name)

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        operation = self._pending.pop()
        assert operation == model.name
        answer = self._answers[operation]
        parsed = answer(self.calls[-1][1]) if callable(answer) else answer
        return AWSResponse("https://stubbed", 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}, **parsed}

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def storm_clients(monkeypatch: pytest.MonkeyPatch, moto_aws: None) -> tuple[Recorder, Recorder]:
    set_intake_env(monkeypatch, incident_manager=True, storm_threshold=STORM_THRESHOLD)
    incidents_client = boto3.client("ssm-incidents", region_name=REGION)
    mitigation_client = boto3.client("iot", region_name=REGION)
    use_clients(monkeypatch, incidents=incidents_client, mitigation=mitigation_client)
    incidents = Recorder(incidents_client, {
        "StartIncident": lambda params: {"incidentRecordArn": incident_arn(params["clientToken"][:60])},
        "UpdateRelatedItems": {},
        "CreateTimelineEvent": lambda params: {"incidentRecordArn": params["incidentRecordArn"], "eventId": "e"},
    })
    mitigation = Recorder(mitigation_client, {
        "StartDetectMitigationActionsTask": lambda params: {"taskId": params["taskId"]},
    })
    return incidents, mitigation


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(storm_entries(), min_size=1, max_size=20))
def test_storms_and_single_alarms_together_act_once_on_every_violation(
    batch: list[StormEntry], storm_clients: tuple[Recorder, Recorder], lambda_context: Any
) -> None:
    incidents, mitigation = storm_clients
    incidents.calls.clear()
    mitigation.calls.clear()
    records = [sqs_record(entry.body, message_id=f"m-{index}") for index, entry in enumerate(batch)]
    members: dict[tuple[str, str], set[str]] = {}
    for entry in batch:
        if entry.key is not None and entry.violation_id is not None:
            members.setdefault(entry.key, set()).add(entry.violation_id)
    storms = {key: ids for key, ids in members.items() if len(ids) >= STORM_THRESHOLD}
    singles = {violation for key, ids in members.items() if key not in storms for violation in ids}

    response = intake.handler(sqs_event(records), lambda_context)

    assert failed_ids(response) == [record["messageId"] for record, entry in zip(records, batch, strict=True)
                                    if not entry.good]
    # Every storm violation is in exactly one mitigation task, and no other violation is.
    tasked = [violation for params in mitigation.of("StartDetectMitigationActionsTask")
              for violation in params["target"]["violationIds"]]
    assert sorted(tasked) == sorted(violation for ids in storms.values() for violation in ids)
    # One incident per storm and one per single in-alarm violation; none for cleared or broken messages.
    tokens = [params["clientToken"] for params in incidents.of("StartIncident")]
    assert len(tokens) == len(set(tokens))
    assert sum(token.startswith("storm-") for token in tokens) == len(storms)
    assert sorted(token for token in tokens if token.startswith("violation-")) == sorted(
        f"violation-{sha(violation)}" for violation in singles)
    # Each storm's devices are listed on its incident, each once.
    listed = [params["relatedItemsUpdate"]["itemToAdd"]["identifier"]["value"]["arn"].rsplit("/", 1)[1]
              for params in incidents.of("UpdateRelatedItems")]
    assert sorted(listed) == sorted(f"device-{violation.removeprefix('storm-v')}"
                                    for ids in storms.values() for violation in ids)

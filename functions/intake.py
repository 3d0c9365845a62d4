"""Lambda handler: the alert intake. Device Defender messages in, incidents, containment and notices out.

Deployed as ``functions.intake.handler`` behind the intake queue: SNS alert topic -> SQS standard queue
(SNS envelope kept) -> event source mapping with ReportBatchItemFailures, batch size up to 1000 and a
batching window equal to the storm window, so an alert storm arrives in one batch. Direct SNS
subscriptions of the function are accepted too (see "Direct SNS records" below).

Per message:

* in-alarm violation: with Incident Manager enabled, StartIncident with the response plan (the plan's
  runbook contains the device: it reads the thing ARN from the INVOLVED_RESOURCE related item). The
  clientToken derives from the violation id, so a redelivered violation starts no second incident.
  With Incident Manager off and OpsCenter on, an OpsItem, the runbook started directly and escalation
  schedules (``functions/ops_incidents.py``). With both off, the intake contains the device itself
  (``contain_thing``) and publishes a readable notification to the responders topic.
* alarm-cleared, alarm-invalidated: logged with the violation id; never an incident.
* audit notification: non-compliant checks listed in AUDIT_ROUTING.incidentChecks open one incident (or
  OpsItem) per audit task; every other non-compliant check goes to the responders topic. Checks mapped in
  AUDIT_MITIGATIONS get Device Defender mitigation tasks (``functions/audit_mitigation.py``).
* alert storm (STORM_THRESHOLD or more distinct in-alarm violations of one security profile and
  behavior in the batch): bulk containment and one fleet incident or notification; see
  ``functions/storm.py``. Storms of the fleetguard Detect engine's violations are contained device by
  device at a bounded rate instead, since mitigation tasks accept only Device Defender's violation ids.
* malformed or unknown input: the record fails with its reason logged; the queue redelivers it and,
  after maxReceiveCount receives, moves it to the dead-letter queue. Nothing is dropped.

Any AWS failure that survives the clients' retries (standard or adaptive, AWS_RETRY_MODE) fails only the
records it concerns, and every action is safe to repeat, so a redelivered record is harmless.

Direct SNS records cannot report partial failures. When any record of such an event fails, the handler
raises after processing all of them: Lambda retries the asynchronous invocation (then its on-failure
destination or the subscription's redrive policy applies), and the records that had succeeded repeat
idempotently.

Environment (all strings; named and checked in ``functions/contract.py``, decoded in
``functions/intake_config.py``): QUARANTINE_GROUP_NAME,
INCIDENT_MANAGER_ENABLED ("true"|"false"), RESPONSE_PLAN_ARN (only when enabled), RESPONDERS_TOPIC_ARN,
IMPACT_RULES (JSON), AUDIT_ROUTING (JSON), IOT_LOG_GROUP, STORM_THRESHOLD, STORM_WINDOW_SECONDS (the
batching window; documentation only), ADD_TO_QUARANTINE_ACTION_NAME, NOTICE_LEDGER_TABLE,
POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, AWS_RETRY_MODE, IOT_DATA_ENDPOINT (optional),
ENGINE_PROFILE_NAMES and CONTAINMENT_RATE (with the fleetguard Detect engine); the OpsCenter settings
(OPS_CENTER_ENABLED and the rest, ``functions/contract_opscenter.py``).

Notices to the responders topic are sent once per violation, audit task or storm batch across
redeliveries: ``functions/notice_ledger.py`` records them.

AWS calls: ssm-incidents:StartIncident, UpdateRelatedItems, CreateTimelineEvent;
iot:StartDetectMitigationActionsTask, StartAuditMitigationActionsTask, DescribeAuditMitigationActionsTask,
AddThingToThingGroup, ListThingGroupsForThing, DescribeThing (only when a group write finds nothing),
DescribeEndpoint (unless IOT_DATA_ENDPOINT is set);
iot:UpdateThingShadow (iot-data); sns:Publish (responders topic); dynamodb:PutItem, UpdateItem,
DeleteItem (the notice ledger); with OpsCenter: ssm:CreateOpsItem, GetOpsItem, UpdateOpsItem,
StartAutomationExecution; scheduler:CreateSchedule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.audit_mitigation import AuditMitigation, MitigationReport, record_report
from functions.aws_clients import Client
from functions.containment import MAX_REASON_LENGTH, ContainResult, ThingNotFoundError, contain_thing
from functions.contract import Outcome, RecordOutcome
from functions.incidents import (
    FLEET_LOGS_QUERY,
    AccountScope,
    audit_incident_request,
    audit_incident_token,
    digest,
    logs_insights_url,
    storm_incident_token,
    violation_incident_request,
    violation_incident_token,
)
from functions.intake_config import IntakeConfig, configured_confidence
from functions.messages import (
    AuditNotification,
    MessageError,
    ViolationEvent,
    message_from_sns_record,
    message_from_sqs_body,
    parse_message,
)
from functions.notice_ledger import NoticeLedger
from functions.notices import Notice, audit_notice, device_contained_notice, publish, storm_notice
from functions.ops_incidents import OpsIncidents
from functions.opscenter import audit_ops_item_request, storm_ops_item_request, violation_ops_item_request
from functions.storm import (
    DeviceContainment,
    Pace,
    StormKey,
    StormResponse,
    contain_one_by_one,
    find_storms,
    open_fleet_incident,
    respond_to_storm,
    storm_key,
)

UNBOUNDED_MS: Final = 2**31
"""Remaining time when no Lambda context bounds it (direct calls from tests and tools)."""

logger = Logger()


@dataclass(frozen=True)
class AwsClients:
    """Where the intake gets its clients; each is built on first use (``aws_clients`` caches them).

    Device Defender mitigation tasks have their own entry, though it is the same IoT client in
    production: moto does not implement StartDetectMitigationActionsTask, so tests stub that one
    client while the registry calls go to moto.
    """

    iot: Callable[[], Client] = aws_clients.iot
    iot_data: Callable[[], Client] = aws_clients.iot_data
    mitigation: Callable[[], Client] = aws_clients.iot
    incidents: Callable[[], Client] = aws_clients.ssm_incidents
    sns: Callable[[], Client] = field(default=lambda: aws_clients.client("sns"))
    dynamodb: Callable[[], Client] = field(default=lambda: aws_clients.client("dynamodb"))
    ssm: Callable[[], Client] = field(default=lambda: aws_clients.client("ssm"))
    scheduler: Callable[[], Client] = field(default=lambda: aws_clients.client("scheduler"))


CLIENTS = AwsClients()


class RecordFailedError(Exception):
    """This record was not handled; the text says why. The queue will deliver it again."""


@dataclass(frozen=True)
class Item:
    """One record of the event, decoded: a message, or the reason it could not be."""

    record_id: str
    message: ViolationEvent | AuditNotification | None
    error: str | None = None


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    source, records = _records(event)
    config = IntakeConfig.from_env(os.environ)
    intake = Intake(
        config, AccountScope.from_function_arn(context.invoked_function_arn), CLIENTS,
        time_left_ms=context.get_remaining_time_in_millis,
    )
    if source == "sqs":
        items = {record["messageId"]: _decode(record["messageId"], record.get("body"), sqs=True) for record in records}
        intake.prepare(items.values())
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def record_handler(record: SQSRecord) -> RecordOutcome:
            receive_count = record.attributes.approximate_receive_count
            return intake.handle_logged(items[record.message_id], receive_count=receive_count)

        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)
    return _handle_sns(intake, [_decode(_sns_record_id(record), record, sqs=False) for record in records])


def _records(event: Mapping[str, Any]) -> tuple[Literal["sqs", "sns"], list[dict[str, Any]]]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records or not all(isinstance(record, dict) for record in records):
        raise ValueError("event.Records: expected a non-empty array of SQS or SNS records")
    if all(record.get("eventSource") == "aws:sqs" for record in records):
        if not all(isinstance(record.get("messageId"), str) for record in records):
            raise ValueError("event.Records[].messageId: expected a string in every SQS record")
        return "sqs", records
    if all(record.get("EventSource") == "aws:sns" for record in records):
        return "sns", records
    raise ValueError(
        "event.Records: expected records that all come from SQS (eventSource aws:sqs) or SNS (EventSource aws:sns)"
    )


def _sns_record_id(record: Mapping[str, Any]) -> str:
    sns = record.get("Sns")
    message_id = sns.get("MessageId") if isinstance(sns, Mapping) else None
    return message_id if isinstance(message_id, str) else "<no Sns.MessageId>"


def _decode(record_id: str, payload: Any, *, sqs: bool) -> Item:
    try:
        text = message_from_sqs_body(payload) if sqs else message_from_sns_record(payload)
        return Item(record_id, parse_message(text))
    except MessageError as error:
        return Item(record_id, None, str(error))


def _handle_sns(intake: Intake, items: Sequence[Item]) -> dict[str, Any]:
    intake.prepare(items)
    failures = []
    for item in items:
        try:
            intake.handle_logged(item, receive_count="1")
        except Exception as error:  # collected, then raised together so Lambda retries the event
            failures.append(f"{item.record_id}: {error}")
    if failures:
        raise RecordFailedError(f"{len(failures)} of {len(items)} SNS record(s) failed: " + "; ".join(failures))
    return {"processed": len(items)}


@dataclass
class Intake:
    """Handles the records of one invocation."""

    config: IntakeConfig
    scope: AccountScope
    clients: AwsClients
    storms: dict[StormKey, StormResponse] = field(default_factory=dict)
    done: dict[tuple[str, str], RecordOutcome] = field(default_factory=dict)
    """Outcome per message already acted on in this batch (an in-alarm violation id, an audit task id):
    a message delivered twice in one batch is acted on once."""
    time_left_ms: Callable[[], int] = field(default=lambda: UNBOUNDED_MS)
    """The invocation's remaining time, which bounds how many devices are contained one by one."""

    def prepare(self, items: Iterable[Item]) -> None:
        """Find the batch's alert storms and answer them in bulk before records are handled one by one."""
        violations = [item.message for item in items if isinstance(item.message, ViolationEvent)]
        for key, members in sorted(find_storms(violations, self.config.storm_threshold).items()):
            engine = key.security_profile_name in self.config.engine_profile_names
            response = respond_to_storm(
                key,
                members,
                mitigation=self.clients.mitigation(),
                action_name=self.config.add_to_quarantine_action_name,
                announce=self._announce_storm,
                one_by_one=self._contain_one_by_one if engine else None,
            )
            self.storms[key] = response
            logger.info(
                "alert storm answered in bulk",
                storm=str(key),
                violations=len(members),
                devices=len(response.thing_names),
                tasks=[task.task_id for task in response.tasks],
                failed_tasks=[task.task_id for task in response.tasks if task.error is not None],
                devices_contained_one_by_one=sum(device.error is None for device in response.devices),
                devices_retried=[device.thing_name for device in response.devices if device.error is not None],
                incident_record_arn=response.incident_record_arn,
                error=response.error,
                warnings=response.warnings,
            )

    def handle_logged(self, item: Item, *, receive_count: str) -> RecordOutcome:
        try:
            outcome = self.handle(item)
        except Exception as error:
            logger.error(
                "record failed; it will be retried, then moved to the dead-letter queue",
                record_id=item.record_id,
                reason=str(error) or type(error).__name__,
                receive_count=receive_count,
            )
            raise
        logger.info("record handled", record_id=item.record_id, outcome=str(outcome), receive_count=receive_count)
        return outcome

    def handle(self, item: Item) -> RecordOutcome:
        message = item.message
        if message is None:
            raise RecordFailedError(f"malformed message: {item.error}")
        if isinstance(message, AuditNotification):
            return self._once(("audit", message.task_id), lambda: self._audit(message))
        if not message.is_in_alarm:
            logger.info(
                "alarm ended; no incident",
                violation_id=message.violation_id,
                event_type=message.event_type.value,
                thing_name=message.thing_name,
                security_profile=message.security_profile_name,
                behavior=message.behavior.name,
            )
            return RecordOutcome(Outcome.LOGGED, message.event_type.value)
        storm = self.storms.get(storm_key(message))
        if storm is not None:
            failure = storm.failure_for(message.violation_id)
            if failure is not None:
                raise RecordFailedError(f"alert storm ({storm.key}): {failure}")
            return RecordOutcome(Outcome.STORM_MEMBER, f"({storm.key})")
        return self._once(("violation", message.violation_id), lambda: self._in_alarm(message))

    def _once(self, key: tuple[str, str], action: Callable[[], RecordOutcome]) -> RecordOutcome:
        if key not in self.done:
            self.done[key] = action()
        return self.done[key]

    # --- single device ----------------------------------------------------------------------------------

    def _in_alarm(self, violation: ViolationEvent) -> RecordOutcome:
        if self.config.response_plan_arn is not None:
            request = violation_incident_request(
                violation,
                response_plan_arn=self.config.response_plan_arn,
                impact=self.config.impact_rules.for_violation(violation),
                scope=self.scope,
                log_group=self.config.iot_log_group,
            )
            arn: str = self.clients.incidents().start_incident(**request)["incidentRecordArn"]
            return RecordOutcome(Outcome.INCIDENT, arn)
        if self.config.ops_center is not None:
            dedup = violation_incident_token(violation.violation_id)
            request = violation_ops_item_request(
                violation,
                dedup=dedup,
                impact=self.config.impact_rules.for_violation(violation),
                style=self.config.ops_center.style,
                scope=self.scope,
                log_group=self.config.iot_log_group,
            )
            opened = self._ops_incidents().open(request, dedup, run_runbook=True)
            return RecordOutcome(Outcome.OPS_ITEM, opened.ops_item_id)
        return self._contain_and_notify(violation)

    def _ops_incidents(self) -> OpsIncidents:
        if self.config.ops_center is None:
            raise RecordFailedError("OpsCenter incidents are not configured")
        return OpsIncidents(self.config.ops_center, self.clients.ssm(), self.clients.scheduler())

    def _contain_and_notify(self, violation: ViolationEvent) -> RecordOutcome:
        result: ContainResult | None
        try:
            result = contain_thing(
                self.clients.iot(),
                self.clients.iot_data(),
                violation.thing_name,
                group_name=self.config.quarantine_group_name,
                reason=_contain_reason(violation),
            )
        except ThingNotFoundError:
            # Retrying cannot register the thing; people are told instead.
            result = None
        notice = device_contained_notice(
            violation,
            result,
            group_name=self.config.quarantine_group_name,
            scope=self.scope,
            log_group=self.config.iot_log_group,
        )
        self._notify(f"violation/{violation.violation_id}", notice)
        return RecordOutcome(Outcome.CONTAINED if result is not None else Outcome.NOT_REGISTERED)

    def _notify(self, notice_id: str, notice: Notice) -> None:
        """Publish to the responders topic unless a delivery before this one already did."""
        ledger = NoticeLedger(self.clients.dynamodb(), self.config.notice_ledger_table)
        ledger.publish_once(
            notice_id, lambda: publish(self.clients.sns(), self.config.responders_topic_arn, notice)
        )

    # --- storms -------------------------------------------------------------------------------------------

    def _contain_one_by_one(self, violations: Sequence[ViolationEvent]) -> list[DeviceContainment]:
        def contain(violation: ViolationEvent) -> bool:
            try:
                contain_thing(
                    self.clients.iot(), self.clients.iot_data(), violation.thing_name,
                    group_name=self.config.quarantine_group_name, reason=_contain_reason(violation),
                )
            except ThingNotFoundError:
                return False
            return True

        return contain_one_by_one(violations, contain, Pace(self.config.containment_rate, self.time_left_ms))

    def _announce_storm(self, response: StormResponse) -> None:
        if self.config.response_plan_arn is not None:
            open_fleet_incident(
                response,
                self.clients.incidents(),
                response_plan_arn=self.config.response_plan_arn,
                # The behavior's configured confidence, not one event's: every batch of the storm must
                # send an identical request.
                impact=self.config.impact_rules.for_behavior(
                    response.violations[0], configured_confidence(response.violations[0])
                ),
                scope=self.scope,
                log_group=self.config.iot_log_group,
                group_name=self.config.quarantine_group_name,
            )
        elif self.config.ops_center is not None:
            self._open_storm_ops_item(response)
        else:
            notice = storm_notice(response, group_name=self.config.quarantine_group_name)
            # The same violations redelivered together are the same batch of the storm: one notice.
            violation_ids = sorted(violation.violation_id for violation in response.violations)
            self._notify(f"storm/{digest(*violation_ids)}", notice)

    def _open_storm_ops_item(self, response: StormResponse) -> None:
        """One OpsItem per storm period, like the fleet incident: every batch of the storm folds into it.
        The devices are contained in bulk already, so no runbook runs for it."""
        key, first, ops_incidents = response.key, response.violations[0], self._ops_incidents()
        dedup = storm_incident_token(key.security_profile_name, key.behavior_name, response.period_start)
        request = storm_ops_item_request(
            key.security_profile_name,
            key.behavior_name,
            response.period_start,
            response.summary(self.config.quarantine_group_name),
            dedup=dedup,
            impact=self.config.impact_rules.for_behavior(first, configured_confidence(first)),
            style=ops_incidents.settings.style,
            logs_url=logs_insights_url(self.scope, self.config.iot_log_group, FLEET_LOGS_QUERY, response.period_start),
        )
        response.incident_record_arn = ops_incidents.open(request, dedup, run_runbook=False).ops_item_id

    # --- audit --------------------------------------------------------------------------------------------

    def _audit(self, notification: AuditNotification) -> RecordOutcome:
        non_compliant = notification.actionable_checks
        if notification.suppressed_checks:
            logger.info("audit checks with every finding suppressed", task_id=notification.task_id,
                        checks=[check.check_name for check in notification.suppressed_checks])
        if not non_compliant:
            logger.info(
                "audit without non-compliant checks",
                task_id=notification.task_id,
                task_status=notification.task_status,
                failed_checks=notification.failed_checks_count,
            )
            return RecordOutcome(Outcome.AUDIT_LOGGED)
        # With neither Incident Manager nor OpsCenter, every non-compliant check goes to people.
        has_incidents = self.config.response_plan_arn is not None or self.config.ops_center is not None
        routed = self.config.audit_incident_checks if has_incidents else frozenset()
        critical = [check for check in non_compliant if check.check_name in routed]
        others = [check for check in non_compliant if check.check_name not in routed]
        arn = None
        if critical and self.config.response_plan_arn is not None:
            request = audit_incident_request(
                notification,
                critical,
                response_plan_arn=self.config.response_plan_arn,
                impact=self.config.impact_rules.default,
            )
            arn = self.clients.incidents().start_incident(**request)["incidentRecordArn"]
        elif critical and self.config.ops_center is not None:
            dedup = audit_incident_token(notification.task_id)
            ops_request = audit_ops_item_request(
                notification.task_id,
                [check.check_name for check in critical],
                notification.raw,
                dedup=dedup,
                impact=self.config.impact_rules.default,
                style=self.config.ops_center.style,
            )
            arn = self._ops_incidents().open(ops_request, dedup, run_runbook=False).ops_item_id
        report = self._mitigate(notification, arn)
        # After the incident: if publishing fails, the redelivery rejoins the incident instead of
        # sending a second notice first.
        if others:
            mitigation = report.lines() if arn is None and not report.empty else ()
            notice = audit_notice(notification, others, incident_record_arn=arn, mitigation=mitigation)
            self._notify(f"audit/{notification.task_id}", notice)
        return RecordOutcome(
            Outcome.AUDIT_ROUTED, f"{len(critical)} check(s) to incident {arn}, {len(others)} notified"
        )

    def _mitigate(self, notification: AuditNotification, incident: str | None) -> MitigationReport:
        """Start the automatic checks' mitigation tasks; record them and the approvals awaited on the
        audit's incident or OpsItem when it has one (the caller's notice carries them otherwise)."""
        config = self.config.audit_mitigation
        if config is None:
            return MitigationReport(notification.task_id, (), ())
        report = AuditMitigation(config, self.clients.mitigation()).respond(notification)
        if incident is not None:
            on_incident = self.config.response_plan_arn is not None
            record_report(report, notification, incident, self.clients.incidents if on_incident else self.clients.ssm)
        return report


def _contain_reason(violation: ViolationEvent) -> str:
    reason = (
        f"Detect: behavior {violation.behavior.name} of security profile "
        f"{violation.security_profile_name} in alarm (violation {violation.violation_id})"
    )
    return reason[:MAX_REASON_LENGTH]

"""Lambda handler: contain one device, or every device an Incident Manager incident or OpsItem names.

Event (the runbook's contain step or an operator invokes it):
    {"thingName": str, "reason"?: str, "incidentRecordArn"?: str, "opsItemId"?: str}
    {"incidentRecordArn": str, "reason"?: str}   the devices are the incident's INVOLVED_RESOURCE
                                                 related items whose ARN is an IoT thing ARN
    {"opsItemId": str, "reason"?: str}           the device is the OpsItem's ``/aws/resources`` thing (else
                                                 the thing of the violation it carries)
An empty string counts as absent. Invalid events raise ValueError naming the field. With an opsItemId the
outcome is written to the OpsItem (operational data ``fleetguard:containment``), failures included.

Environment: QUARANTINE_GROUP_NAME (required), POWERTOOLS_SERVICE_NAME, AWS_RETRY_MODE, IOT_DATA_ENDPOINT.

Returns a JSON object whose keys are stable (an SSM Automation step declares them as outputs with
selectors ``$.Payload.<key>``; ``functions.contract.OUTPUT_TYPES`` maps each to its SSM output type):
    status             "CONTAINED" (every device confirmed; otherwise ContainmentError is raised), or
                       "NO_DEVICES" when an incident-only event names no IoT thing (an audit finding, or an
                       alert storm that Device Defender mitigation tasks contain in bulk)
    quarantineGroup    the quarantine thing group name
    thingCount         number of devices contained
    things             [{"thingName": str, "shadowVersion": int}, ...]
    incidentRecordArn  the incident from the event, "" when there was none
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.containment import ContainmentError, ContainResult, contain_thing, parse_request, things_from_incident
from functions.contract import ContainmentEnvironment, Status, containment_result
from functions.opscenter import CONTAINMENT_FAILED, progress_request, thing_name_of

logger = Logger()


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - the decorator reads context
    request = parse_request(event)
    group_name = ContainmentEnvironment.from_environment(os.environ).quarantine_group_name
    logger.append_keys(incident_record_arn=request.incident_record_arn, ops_item_id=request.ops_item_id)
    if request.thing_name is not None:
        thing_names = [request.thing_name]
    elif request.incident_record_arn is not None:
        thing_names = things_from_incident(aws_clients.ssm_incidents(), request.incident_record_arn)
    elif request.ops_item_id is not None:
        thing_names = things_from_ops_item(aws_clients.client("ssm"), request.ops_item_id)
    else:
        raise ValueError("thingName: required unless incidentRecordArn or opsItemId is given")

    iot, iot_data = aws_clients.iot(), aws_clients.iot_data()
    contained: list[ContainResult] = []
    failures: list[str] = []
    # Every device gets its attempt even when one fails: a partial containment beats none.
    for thing_name in thing_names:
        try:
            result = contain_thing(
                iot, iot_data, thing_name,
                group_name=group_name,
                reason=request.reason,
                incident_record_arn=request.incident_record_arn,
            )
        except ContainmentError as error:
            logger.error("containment failed", thing_name=thing_name, error=str(error))
            failures.append(str(error))
            continue
        logger.info(
            "contained", thing_name=thing_name, shadow_version=result.shadow_version,
        )
        contained.append(result)
    status = Status.CONTAINED if thing_names else Status.NO_DEVICES
    if request.ops_item_id is not None:
        record_progress(request.ops_item_id, CONTAINMENT_FAILED if failures else status.value, thing_names)
    if failures:
        raise ContainmentError(
            f"{len(failures)} of {len(thing_names)} device(s) not contained: {'; '.join(failures)}"
        )
    if not thing_names:
        logger.info("the incident names no IoT thing; nothing to contain")
    return containment_result(
        status,
        group_name,
        [(result.thing_name, result.shadow_version) for result in contained],
        request.incident_record_arn,
    )


def things_from_ops_item(ssm: Any, ops_item_id: str) -> list[str]:
    """The device an OpsItem is about, as a list (empty for a storm's or an audit's item); ContainmentError
    when the item cannot be read."""
    try:
        ops_item = ssm.get_ops_item(OpsItemId=ops_item_id)["OpsItem"]
    except ssm.exceptions.ClientError as error:
        raise ContainmentError(f"reading OpsItem {ops_item_id} failed: {error}") from error
    thing_name = thing_name_of(ops_item)
    return [] if thing_name is None else [thing_name]


def record_progress(ops_item_id: str, status: str, thing_names: list[str]) -> None:
    """Write the containment outcome to the OpsItem for its responders. The device's state does not depend
    on it, so a failure is logged rather than raised: raising would fail a containment that succeeded."""
    ssm = aws_clients.client("ssm")
    try:
        ssm.update_ops_item(**progress_request(ops_item_id, status, thing_names, datetime.now(UTC)))
    except ssm.exceptions.ClientError as error:
        logger.warning("containment progress not written to the OpsItem", ops_item_id=ops_item_id, error=str(error))

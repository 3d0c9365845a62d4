"""Lambda handler: contain one device, or every device an Incident Manager incident names.

Event (an Incident Manager runbook step or an operator invokes it):
    {"thingName": str, "reason"?: str, "incidentRecordArn"?: str}
    {"incidentRecordArn": str, "reason"?: str}   the devices are the incident's INVOLVED_RESOURCE
                                                 related items whose ARN is an IoT thing ARN
An empty string counts as absent. Invalid events raise ValueError naming the field.

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
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.containment import (
    ContainmentError,
    ContainResult,
    contain_thing,
    parse_request,
    things_from_incident,
)
from functions.contract import ContainmentEnvironment, Status, containment_result

logger = Logger()


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - the decorator reads context
    request = parse_request(event)
    group_name = ContainmentEnvironment.from_environment(os.environ).quarantine_group_name
    logger.append_keys(incident_record_arn=request.incident_record_arn)
    if request.thing_name is not None:
        thing_names = [request.thing_name]
    elif request.incident_record_arn is not None:
        thing_names = things_from_incident(aws_clients.ssm_incidents(), request.incident_record_arn)
    else:
        raise ValueError("thingName: required unless incidentRecordArn is given")

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
    if failures:
        raise ContainmentError(
            f"{len(failures)} of {len(thing_names)} device(s) not contained: {'; '.join(failures)}"
        )
    if not thing_names:
        logger.info("the incident names no IoT thing; nothing to contain")
    return containment_result(
        Status.CONTAINED if thing_names else Status.NO_DEVICES,
        group_name,
        [(result.thing_name, result.shadow_version) for result in contained],
        request.incident_record_arn,
    )

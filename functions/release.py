"""Lambda handler: release one device from quarantine (the recovery step of an incident).

Event:
    {"thingName": str, "reason"?: str, "incidentRecordArn"?: str, "opsItemId"?: str}
reason and incidentRecordArn are logged with the release. With an opsItemId, the OpsItem is resolved once the
release is confirmed, with a note (operational data ``fleetguard:resolution``: the device, the reason, the
time). An empty string counts as absent. Invalid events raise ValueError naming the field.

Environment: QUARANTINE_GROUP_NAME (required), POWERTOOLS_SERVICE_NAME, AWS_RETRY_MODE, IOT_DATA_ENDPOINT,
TUNNEL_SECRET_PREFIX (set when the stack opens secure tunnels: the device's fleetguard tunnels are closed and
their secrets deleted before it leaves quarantine, so a failure leaves it quarantined, not reachable).

Returns a JSON object whose keys are stable (an SSM Automation step declares them as outputs with
selectors ``$.Payload.<key>``; ``functions.contract.OUTPUT_TYPES`` maps each to its SSM output type):
    status             "RELEASED" (confirmed; otherwise ContainmentError is raised)
    quarantineGroup    the quarantine thing group name
    thingCount         1
    things             [{"thingName": str, "shadowVersion": int}]
    incidentRecordArn  the incident from the event, "" when there was none
    closedTunnelIds    with TUNNEL_SECRET_PREFIX only: the tunnels closed now
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.containment import parse_request, release_thing
from functions.contract import ContainmentEnvironment, Status, containment_result
from functions.contract_tunnel import CLOSED_TUNNELS_KEY
from functions.opscenter import resolve_request
from functions.tunnel_access import close_device_tunnels, quiet_wire_logging

logger = Logger()


# clear_state: keys appended for one invocation must not leak into the next in a warm environment.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - the decorator reads context
    request = parse_request(event)
    env = ContainmentEnvironment.from_environment(os.environ)
    group_name = env.quarantine_group_name
    if request.thing_name is None:
        raise ValueError("thingName: required field is missing")
    logger.append_keys(
        thing_name=request.thing_name, incident_record_arn=request.incident_record_arn, reason=request.reason,
        ops_item_id=request.ops_item_id,
    )
    closed: list[str] | None = None
    if env.tunnel_secret_prefix is not None:
        quiet_wire_logging()
        closed = close_device_tunnels(
            aws_clients.client("iotsecuretunneling"), aws_clients.client("secretsmanager"), request.thing_name,
            prefix=env.tunnel_secret_prefix,
        )
        logger.info("tunnels closed", closed_tunnel_ids=closed)
    result = release_thing(aws_clients.iot(), aws_clients.iot_data(), request.thing_name, group_name=group_name)
    logger.info("released", shadow_version=result.shadow_version)
    if request.ops_item_id is not None:
        # After the release: the incident is over only once the device is confirmed out of quarantine.
        aws_clients.client("ssm").update_ops_item(
            **resolve_request(request.ops_item_id, request.thing_name, request.reason, datetime.now(UTC))
        )
        logger.info("OpsItem resolved")
    released = containment_result(
        Status.RELEASED, group_name, [(result.thing_name, result.shadow_version)], request.incident_record_arn
    )
    return released if closed is None else {**released, CLOSED_TUNNELS_KEY: closed}

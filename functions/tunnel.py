"""Lambda handler: open an SSH secure tunnel to each quarantined device of an incident (the runbook's
OpenTunnel step, after its approval).

Event: {"incidentRecordArn": str} or {"opsItemId": str}, optionally with "thingName" and "reason" (the
contain request's fields; an empty string counts as absent). The devices are resolved as the contain
function resolves them, and only those confirmed in the quarantine group get a tunnel: the quarantine
policy is what lets a device's agent hear of the tunnel, and a released device must not be reachable.

Environment: QUARANTINE_GROUP_NAME, TUNNEL_SECRET_PREFIX, TUNNEL_MAX_LIFETIME_MINUTES, TUNNEL_READER_ROLE_ARNS,
TUNNEL_RELEASE_ROLE_ARN, POWERTOOLS_SERVICE_NAME, AWS_RETRY_MODE.

Returns ``functions.contract_tunnel.tunnel_result``: the status, the tunnel ids and the secret ARNs; never a
token. Each tunnel (id, device, expiry, secret ARN) is recorded on the incident's timeline or the OpsItem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import aws_clients
from functions.contain import things_from_ops_item
from functions.containment import ContainmentError, parse_request, things_from_incident
from functions.contract_tunnel import TUNNEL_RECORD_KEY, TunnelEnvironment, TunnelStatus, tunnel_result
from functions.incidents import iso_time, timeline_note_request
from functions.tunnel_access import (
    OpenedTunnel,
    SecretAccess,
    TunnelTarget,
    open_device_tunnel,
    quiet_wire_logging,
)

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - the decorator reads context
    quiet_wire_logging()
    request = parse_request(event)
    env = TunnelEnvironment.from_environment(os.environ)
    incident = request.incident_record_arn or request.ops_item_id
    if incident is None:
        raise ValueError("incidentRecordArn or opsItemId: required (a tunnel is opened for an incident)")
    logger.append_keys(incident_record_arn=request.incident_record_arn, ops_item_id=request.ops_item_id)
    if request.thing_name is not None:
        candidates = [request.thing_name]
    elif request.incident_record_arn is not None:
        candidates = things_from_incident(aws_clients.ssm_incidents(), request.incident_record_arn)
    else:
        candidates = things_from_ops_item(aws_clients.client("ssm"), incident)
    iot = aws_clients.iot()
    devices = [name for name in candidates if quarantined(iot, name, env.quarantine_group_name)]
    tunnels, secrets = aws_clients.client("iotsecuretunneling"), aws_clients.client("secretsmanager")
    access = SecretAccess(env.reader_role_arns, env.release_role_arn)
    opened: list[OpenedTunnel] = []
    for thing_name in devices:
        tunnel = open_device_tunnel(
            tunnels, secrets, TunnelTarget(thing_name, incident, env.secret_prefix, access), env.max_lifetime_minutes,
        )
        logger.info("tunnel open", thing_name=thing_name, tunnel_id=tunnel.tunnel_id, secret_arn=tunnel.secret_arn,
                    reused=tunnel.reused)
        opened.append(tunnel)
    if opened:
        record(request.incident_record_arn, request.ops_item_id, opened)
    else:
        logger.info("no device of the incident is in the quarantine group; no tunnel opened", devices=candidates)
    status = TunnelStatus.OPENED if opened else TunnelStatus.NO_DEVICES
    return tunnel_result(status, [(tunnel.tunnel_id, tunnel.secret_arn) for tunnel in opened])


def quarantined(iot: Any, thing_name: str, group_name: str) -> bool:
    """Whether the thing is listed in the quarantine group now (a device not in the registry is not)."""
    try:
        for page in iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=thing_name):
            if any(group["groupName"] == group_name for group in page["thingGroups"]):
                return True
    except iot.exceptions.ResourceNotFoundException:
        logger.warning("device not in the registry; no tunnel", thing_name=thing_name)
        return False
    except iot.exceptions.ClientError as error:
        raise ContainmentError(f"reading the thing groups of {thing_name} failed: {error}") from error
    logger.warning("device not in the quarantine group; no tunnel", thing_name=thing_name)
    return False


def tunnel_records(opened: Sequence[OpenedTunnel]) -> list[dict[str, str]]:
    """What responders see of each tunnel: never its token."""
    return [
        {"thingName": tunnel.thing_name, "tunnelId": tunnel.tunnel_id, "expiresAt": iso_time(tunnel.expires_at),
         "secretArn": tunnel.secret_arn}
        for tunnel in opened
    ]


def record(incident_record_arn: str | None, ops_item_id: str | None, opened: Sequence[OpenedTunnel]) -> None:
    """Note the tunnels on the incident's timeline or the OpsItem. The tunnels work without the note, so a
    failure is logged rather than raised (raising would make the step retry a success)."""
    records = tunnel_records(opened)
    now = datetime.now(UTC)
    try:
        if incident_record_arn is not None:
            text = "Secure tunnel(s) opened for forensics (read the token from the secret): " + json.dumps(records)
            identity = [TUNNEL_RECORD_KEY, *(tunnel.tunnel_id for tunnel in opened)]
            aws_clients.ssm_incidents().create_timeline_event(
                **timeline_note_request(incident_record_arn, text, now, identity)
            )
        elif ops_item_id is not None:
            aws_clients.client("ssm").update_ops_item(
                OpsItemId=ops_item_id,
                OperationalData={TUNNEL_RECORD_KEY: {"Value": json.dumps(records), "Type": "String"}},
            )
    except Exception as error:
        logger.warning("tunnels not recorded on the incident", error=type(error).__name__)

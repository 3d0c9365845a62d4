"""Secure tunnels to quarantined devices: open one per device and incident, hand its source access token to
the responders through a secret only they can read, and close the device's tunnels when it is released.

The token is the one thing here that must never leave the secret. It is held in a local for the two calls
that need it (OpenTunnel or RotateTunnelAccessToken returns it, CreateSecret stores it) and appears in no
log line, exception message, return value or record: errors on those calls are re-raised without their
cause (a botocore parameter error quotes the values it was given), and the handlers raise the wire loggers
(botocore logs request parameters and response bodies at DEBUG) above DEBUG before any call.

Secrets: ``<prefix><tunnel id>``, encrypted with the account's AWS managed key for Secrets Manager (a
customer managed key would add key-policy grants per responder role for no gain: the secret's resource
policy already denies every other principal the read), tagged with the incident and device. Deleted without
a recovery window when the device is released: the tunnel is closed by then, so the token opens nothing,
and a recoverable secret would keep it readable for up to 30 more days.

Tunnels tie to their incident by the ``fleetguard:incident`` tag; a retried step finds the open tunnel it
already opened (ListTunnels by thing, DescribeTunnel for the tags) instead of opening a second one. If a
retry finds the tunnel but not its secret (the first attempt stopped between the two calls), the source
token is rotated and stored, since the first one was never delivered.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from functions.aws_clients import Client
from functions.contract_tunnel import INCIDENT_TAG_KEY, THING_TAG_KEY, TUNNEL_SERVICE, secret_name

WIRE_LOGGERS: Final = ("botocore", "boto3", "urllib3")
"""Libraries that log request parameters or response bodies at DEBUG."""
_LIST_PAGE_SIZE: Final = 100
"""ListTunnels' maximum page size (the model has no paginator for it)."""
OPEN: Final = "OPEN"


class TunnelError(Exception):
    """A tunnel could not be opened, its token stored, or a device's tunnels closed; the message says which
    (and never holds a token)."""


@dataclass(frozen=True)
class OpenedTunnel:
    thing_name: str
    tunnel_id: str
    secret_arn: str
    expires_at: datetime
    reused: bool
    """Found open from an earlier attempt for the same incident rather than opened now."""


@dataclass(frozen=True)
class SecretAccess:
    """Who the secret's resource policy lets in."""

    reader_role_arns: Sequence[str]
    release_role_arn: str


def quiet_wire_logging() -> None:
    """Keep botocore and its HTTP stack from logging the token: Lambda sets the root logger to the function's
    application log level, so at DEBUG they would log OpenTunnel's response and CreateSecret's request."""
    for name in WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if wire.getEffectiveLevel() < logging.INFO:
            wire.setLevel(logging.INFO)


@dataclass(frozen=True)
class TunnelTarget:
    """One device of one incident, and where its token goes."""

    thing_name: str
    incident: str
    """The incident record ARN or OpsItem id the tunnel is tagged with."""
    prefix: str
    access: SecretAccess


def open_device_tunnel(tunnels: Client, secrets: Client, target: TunnelTarget, lifetime_minutes: int) -> OpenedTunnel:
    """An open SSH tunnel to the target device for its incident and the ARN of the secret holding its source
    token."""
    thing_name, incident = target.thing_name, target.incident
    existing = _open_incident_tunnel(tunnels, thing_name, incident)
    if existing is not None:
        tunnel_id, expires_at = existing
        # The first attempt may have stopped anywhere in storing the token: finish what it left undone.
        arn = _store(secrets, tunnels, tunnel_id, target, token=None)
        return OpenedTunnel(thing_name, tunnel_id, arn, expires_at, reused=True)
    try:
        opened = tunnels.open_tunnel(
            description=f"fleetguard forensics for {incident}"[:2048],
            tags=_tags(thing_name, incident),
            destinationConfig={"thingName": thing_name, "services": [TUNNEL_SERVICE]},
            timeoutConfig={"maxLifetimeTimeoutMinutes": lifetime_minutes},
        )
    except tunnels.exceptions.ClientError as error:
        raise TunnelError(f"opening a tunnel to {thing_name} failed: {_code(error)}") from None
    tunnel_id = opened["tunnelId"]
    token = opened["sourceAccessToken"]
    del opened
    arn = _store(secrets, tunnels, tunnel_id, target, token=token)
    # The time AWS counts the lifetime from is the tunnel's creation, a moment before this.
    expires_at = datetime.now().astimezone() + timedelta(minutes=lifetime_minutes)
    return OpenedTunnel(thing_name, tunnel_id, arn, expires_at, reused=False)


def close_device_tunnels(tunnels: Client, secrets: Client, thing_name: str, *, prefix: str) -> list[str]:
    """Close ``thing_name``'s open fleetguard tunnels and delete the secrets of all its fleetguard tunnels
    (those that expired on their own included); the ids of the tunnels closed now.

    CloseTunnel keeps the tunnel's record (``delete`` false): when it was opened, connected and closed is
    evidence for the post-incident review, and closing alone ends every connection and voids the tokens.
    """
    closed: list[str] = []
    for summary in _tunnel_summaries(tunnels, thing_name):
        tunnel_id = summary["tunnelId"]
        if INCIDENT_TAG_KEY not in _tags_of(tunnels, tunnel_id):
            continue  # someone else's tunnel: not the incident's to close
        if summary.get("status") == OPEN:
            try:
                tunnels.close_tunnel(tunnelId=tunnel_id, delete=False)
            except tunnels.exceptions.ResourceNotFoundException:
                pass  # gone between the listing and now
            except tunnels.exceptions.ClientError as error:
                raise TunnelError(f"closing tunnel {tunnel_id} to {thing_name} failed: {_code(error)}") from error
            closed.append(tunnel_id)
        try:
            secrets.delete_secret(SecretId=secret_name(prefix, tunnel_id), ForceDeleteWithoutRecovery=True)
        except secrets.exceptions.ResourceNotFoundException:
            pass  # deleted by an earlier release, or never stored
        except secrets.exceptions.ClientError as error:
            raise TunnelError(f"deleting the secret of tunnel {tunnel_id} failed: {_code(error)}") from error
    return closed


def secret_policy(access: SecretAccess) -> str:
    """The secret's resource policy: the responders' roles read it, the release function deletes it, and an
    explicit Deny keeps every other principal of the account from reading it whatever its own policy says."""
    readers = list(access.reader_role_arns)
    statements = [
        {"Sid": "RespondersRead", "Effect": "Allow", "Principal": {"AWS": readers},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        {"Sid": "ReleaseDeletes", "Effect": "Allow", "Principal": {"AWS": access.release_role_arn},
         "Action": "secretsmanager:DeleteSecret", "Resource": "*"},
        {"Sid": "NoOneElseReads", "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
         "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalArn": readers}}},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


# --- helpers -------------------------------------------------------------------------------------------


def _store(secrets: Client, tunnels: Client, tunnel_id: str, target: TunnelTarget, *, token: str | None) -> str:
    """Deliver the source token of ``tunnel_id`` to its secret; the secret's ARN. The secret is made (or found)
    and given its resource policy before any token is written, so a run that stops halfway never leaves a
    token readable by principals other than the responders. Without a token (a retry) a secret that already
    holds one is kept; otherwise the token is rotated, since the first one was never stored. A tunnel whose
    token cannot be delivered is closed: nobody could use it."""
    name = secret_name(target.prefix, tunnel_id)
    try:
        existing = _existing_secret(secrets, name)
        arn = (existing or secrets.create_secret(
            Name=name,
            Description=f"Source access token of secure tunnel {tunnel_id} to {target.thing_name}",
            Tags=[{"Key": INCIDENT_TAG_KEY, "Value": target.incident},
                  {"Key": THING_TAG_KEY, "Value": target.thing_name}],
        ))["ARN"]
        secrets.put_resource_policy(SecretId=arn, ResourcePolicy=secret_policy(target.access), BlockPublicPolicy=True)
        if token is None and existing is not None and existing.get("VersionIdsToStages"):
            return str(arn)
        if token is None:
            token = tunnels.rotate_tunnel_access_token(tunnelId=tunnel_id, clientMode="SOURCE")["sourceAccessToken"]
        secrets.put_secret_value(SecretId=arn, SecretString=token)
    except Exception as error:
        # Any of these errors may quote the token (a parameter error shows the values): replaced, not chained.
        reason = _code(error) if hasattr(error, "response") else type(error).__name__
        _abandon(tunnels, secrets, tunnel_id, name)
        raise TunnelError(f"storing the token of tunnel {tunnel_id} to {target.thing_name} failed: {reason}") from None
    return str(arn)


def _abandon(tunnels: Client, secrets: Client, tunnel_id: str, name: str) -> None:
    """Best effort: delete a secret without its policy and close the undeliverable tunnel; the caller raises
    the failure that led here."""
    with contextlib.suppress(Exception):
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with contextlib.suppress(Exception):
        tunnels.close_tunnel(tunnelId=tunnel_id, delete=False)


def _open_incident_tunnel(tunnels: Client, thing_name: str, incident: str) -> tuple[str, datetime] | None:
    for summary in _tunnel_summaries(tunnels, thing_name):
        if summary.get("status") != OPEN:
            continue
        tunnel = _describe(tunnels, summary["tunnelId"])
        if _tag_map(tunnel.get("tags", [])).get(INCIDENT_TAG_KEY) == incident:
            lifetime = tunnel.get("timeoutConfig", {}).get("maxLifetimeTimeoutMinutes", 720)
            return summary["tunnelId"], tunnel["createdAt"] + timedelta(minutes=lifetime)
    return None


def _tunnel_summaries(tunnels: Client, thing_name: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"thingName": thing_name, "maxResults": _LIST_PAGE_SIZE}
    while True:
        try:
            page = tunnels.list_tunnels(**request)
        except tunnels.exceptions.ClientError as error:
            raise TunnelError(f"listing the tunnels of {thing_name} failed: {_code(error)}") from error
        yield from page.get("tunnelSummaries", [])
        if not page.get("nextToken"):
            return
        request["nextToken"] = page["nextToken"]


def _describe(tunnels: Client, tunnel_id: str) -> dict[str, Any]:
    try:
        tunnel: dict[str, Any] = tunnels.describe_tunnel(tunnelId=tunnel_id)["tunnel"]
    except tunnels.exceptions.ClientError as error:
        raise TunnelError(f"describing tunnel {tunnel_id} failed: {_code(error)}") from error
    return tunnel


def _tags_of(tunnels: Client, tunnel_id: str) -> dict[str, str]:
    return _tag_map(_describe(tunnels, tunnel_id).get("tags", []))


def _tag_map(tags: Sequence[dict[str, str]]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in tags}


def _tags(thing_name: str, incident: str) -> list[dict[str, str]]:
    return [{"key": INCIDENT_TAG_KEY, "value": incident}, {"key": THING_TAG_KEY, "value": thing_name}]


def _existing_secret(secrets: Client, name: str) -> dict[str, Any] | None:
    """DescribeSecret's answer for ``name`` (its ARN, and versions when it holds a value); None when absent."""
    try:
        found: dict[str, Any] = secrets.describe_secret(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        return None
    except secrets.exceptions.ClientError as error:
        raise TunnelError(f"looking up secret {name} failed: {_code(error)}") from error
    return found


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))

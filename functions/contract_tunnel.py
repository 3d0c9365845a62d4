"""The contract for online forensics through an AWS IoT secure tunnel: the tunnel function's configuration,
what it answers (the runbook declares each key as a step output), the tag that ties a tunnel to its
incident, and the shape of the secrets that hold source access tokens.

Beside ``functions/contract.py`` (whose ``EnvVar`` names every variable), with the same rules: standard
library only, so the Pulumi program renders these objects without the functions' run-time dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic

from functions.contract import EnvVar, Value, _matching, _required, _runtime_environment
from functions.contract_opscenter import ROLE_ARN_PATTERN
from functions.messages import THING_NAME_PATTERN

SECRET_PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*/")
"""A Secrets Manager name prefix (its name characters, without ``*`` or ``?`` so IAM can scope it) ending in
``/``: each secret is ``<prefix><tunnel id>``."""
TUNNEL_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_\-+=:]{1,128}")
"""The secure tunneling model's TunnelId."""
LIFETIME_PATTERN: Final = re.compile(r"[1-9][0-9]{0,2}")
MAX_LIFETIME_MINUTES: Final = 720
INCIDENT_TAG_KEY: Final = "fleetguard:incident"
"""Tag on each tunnel (and its secret) naming the incident record ARN or OpsItem id it was opened for: a
retried runbook step finds the tunnel it already opened by it."""
THING_TAG_KEY: Final = "fleetguard:thing"
TUNNEL_SERVICE: Final = "SSH"
"""The only destination service fleetguard opens: the device agent maps it to its local SSH port."""
TUNNEL_RECORD_KEY: Final = "fleetguard:tunnel"
"""OpsItem operational data key (and timeline note subject) recording the tunnels opened, never the token."""


class TunnelOutputKey(StrEnum):
    """The tunnel function's result keys; the runbook's OpenTunnel step declares each with ``$.Payload.<key>``.
    None of them is, or could hold, an access token."""

    TUNNEL_STATUS = "tunnelStatus"
    TUNNEL_IDS = "tunnelIds"
    SECRET_ARNS = "secretArns"


CLOSED_TUNNELS_KEY: Final = "closedTunnelIds"
"""The release function's extra result key when tunnels are enabled: the tunnels it closed."""

TUNNEL_OUTPUT_TYPES: Final[Mapping[TunnelOutputKey, str]] = {
    TunnelOutputKey.TUNNEL_STATUS: "String",
    TunnelOutputKey.TUNNEL_IDS: "StringList",
    TunnelOutputKey.SECRET_ARNS: "StringList",
}


class TunnelStatus(StrEnum):
    OPENED = "OPENED"
    """Each quarantined device of the incident has an open tunnel (opened now or by an earlier attempt)."""
    NO_DEVICES = "NO_TUNNEL_DEVICES"
    """The incident names no device confirmed in the quarantine group: nothing was opened."""


def tunnel_result(status: TunnelStatus, tunnels: Sequence[tuple[str, str]]) -> dict[str, object]:
    """The function's answer: ``tunnels`` are (tunnel id, secret ARN) pairs."""
    return {
        TunnelOutputKey.TUNNEL_STATUS.value: status.value,
        TunnelOutputKey.TUNNEL_IDS.value: [tunnel_id for tunnel_id, _ in tunnels],
        TunnelOutputKey.SECRET_ARNS.value: [secret_arn for _, secret_arn in tunnels],
    }


def secret_name(prefix: str, tunnel_id: str) -> str:
    """The secret of one tunnel. A tunnel id may hold ``:``, which no secret name may; it becomes ``.``,
    which no tunnel id holds, so distinct tunnels keep distinct names."""
    return f"{prefix}{tunnel_id.replace(':', '.')}"


def _role_list(env: Mapping[str, str], name: EnvVar) -> tuple[str, ...]:
    roles = tuple(_required(env, name).split(","))
    if not all(ROLE_ARN_PATTERN.fullmatch(role) for role in roles):
        raise ValueError(f"{name}: expected IAM role ARNs, comma-separated, got {env[name]!r}")
    return roles


@dataclass(frozen=True)
class TunnelEnvironment(Generic[Value]):
    """The tunnel function's configuration."""

    quarantine_group_name: Value
    secret_prefix: str
    max_lifetime_minutes: int
    reader_role_arns: tuple[str, ...]
    """The responders' roles: the only principals the secret's policy lets read the token."""
    release_role_arn: Value
    """The release function's role, which the secret's policy lets delete it when the device is released."""
    service_name: str | None = None
    retry_mode: str | None = None

    def to_environment(self) -> dict[str, Value | str]:
        rendered: dict[str, Value | str] = {
            EnvVar.QUARANTINE_GROUP_NAME.value: self.quarantine_group_name,
            EnvVar.TUNNEL_SECRET_PREFIX.value: self.secret_prefix,
            EnvVar.TUNNEL_MAX_LIFETIME_MINUTES.value: str(self.max_lifetime_minutes),
            EnvVar.TUNNEL_READER_ROLE_ARNS.value: ",".join(self.reader_role_arns),
            EnvVar.TUNNEL_RELEASE_ROLE_ARN.value: self.release_role_arn,
            **_runtime_environment(self.service_name, self.retry_mode, None),
        }
        return rendered

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> TunnelEnvironment[str]:
        """ValueError naming the variable when one is missing or malformed."""
        lifetime = _matching(env, EnvVar.TUNNEL_MAX_LIFETIME_MINUTES, LIFETIME_PATTERN, "minutes")
        if int(lifetime) > MAX_LIFETIME_MINUTES:
            raise ValueError(f"{EnvVar.TUNNEL_MAX_LIFETIME_MINUTES}: expected at most {MAX_LIFETIME_MINUTES}")
        return TunnelEnvironment(
            quarantine_group_name=_matching(
                env, EnvVar.QUARANTINE_GROUP_NAME, THING_NAME_PATTERN, "a thing group name"
            ),
            secret_prefix=_matching(env, EnvVar.TUNNEL_SECRET_PREFIX, SECRET_PREFIX_PATTERN, "a secret name prefix"),
            max_lifetime_minutes=int(lifetime),
            reader_role_arns=_role_list(env, EnvVar.TUNNEL_READER_ROLE_ARNS),
            release_role_arn=_matching(env, EnvVar.TUNNEL_RELEASE_ROLE_ARN, ROLE_ARN_PATTERN, "an IAM role ARN"),
            service_name=env.get(EnvVar.POWERTOOLS_SERVICE_NAME) or None,
            retry_mode=env.get(EnvVar.AWS_RETRY_MODE) or None,
        )

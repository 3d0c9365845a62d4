"""``fleetguard:quarantine.tunnel``: online forensics through an AWS IoT secure tunnel, opened by the
runbook after an approval and closed when the device is released."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from settings.reader import Node, Problems

TUNNEL_LIFETIME_RANGE: Final = (1, 720)
"""Minutes: the secure tunneling model's ``TimeoutInMin`` (OpenTunnel's maxLifetimeTimeoutMinutes)."""
APPROVAL_TIMEOUT_RANGE: Final = (5, 1440)
"""Minutes an approval waits before the runbook goes on to Recovery without a tunnel. aws:approve allows up
to 30 days; a tunnel for an incident under way is useless a day later, so fleetguard bounds it at one."""
MAX_APPROVERS: Final = 10
"""aws:approve accepts at most ten approvers."""
APPROVER_ARN_PATTERN: Final = (
    r"arn:aws(-cn|-us-gov)?:(iam::[0-9]{12}:(user|role)(/[\w+=,.@-]+)*/[\w+=,.@-]{1,64}"
    r"|sts::[0-9]{12}:assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{2,64})"
)
"""aws:approve takes IAM user names, user ARNs, role ARNs and assumed-role session ARNs; fleetguard takes the
ARNs only, which name one principal unambiguously."""
RESPONDER_ROLE_ARN_PATTERN: Final = r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role(/[\w+=,.@-]+)*/[\w+=,.@-]{1,64}"
MAX_RESPONDER_ROLES: Final = 10
"""Each role is named in every tunnel secret's resource policy (20 KB at most); ten keep it small."""


@dataclass(frozen=True)
class TunnelSettings:
    """Whether the runbook may open a secure tunnel to a quarantined device, and who decides and reads."""

    enabled: bool
    max_lifetime_minutes: int
    """The tunnel closes itself after this long; the token in its secret is useless from then on."""
    approvers: tuple[str, ...]
    """IAM principals (user, role or assumed-role ARNs) who may approve opening a tunnel."""
    min_required_approvals: int
    approval_timeout_minutes: int
    responder_role_arns: tuple[str, ...]
    """The only roles that may read a tunnel's source access token from its secret."""


DISABLED: Final = TunnelSettings(False, 60, (), 1, 60, ())


def parse_tunnel(node: Node) -> TunnelSettings:
    section = node.mapping(allowed_keys=(
        "enabled", "maxLifetimeMinutes", "approvers", "minRequiredApprovals", "approvalTimeoutMinutes",
        "responderRoleArns",
    ))
    enabled = section.child("enabled").boolean(False)
    approvers = _arns(section.child("approvers"), APPROVER_ARN_PATTERN, MAX_APPROVERS, enabled, "approver")
    min_node = section.child("minRequiredApprovals")
    min_required = min_node.bounded_integer(1, 1, MAX_APPROVERS)
    # A role counts each of its sessions as a separate approver; users count once each.
    if approvers and min_required > len(approvers) and not any(":role/" in arn for arn in approvers):
        min_node.fail(f"expected at most the number of approvers ({len(approvers)}) when none of them is a role")
    return TunnelSettings(
        enabled=enabled,
        max_lifetime_minutes=section.child("maxLifetimeMinutes").bounded_integer(60, *TUNNEL_LIFETIME_RANGE),
        approvers=approvers,
        min_required_approvals=min_required,
        approval_timeout_minutes=section.child("approvalTimeoutMinutes").bounded_integer(60, *APPROVAL_TIMEOUT_RANGE),
        responder_role_arns=_arns(
            section.child("responderRoleArns"), RESPONDER_ROLE_ARN_PATTERN, MAX_RESPONDER_ROLES, enabled,
            "responder role",
        ),
    )


def _arns(node: Node, pattern: str, most: int, required: bool, what: str) -> tuple[str, ...]:
    arns = node.string_list(pattern=pattern)
    node.fail_duplicates(arns, what)
    if required and (node.missing or node.value == []):
        node.fail(f"expected at least one {what} ARN when the tunnel is enabled")
    if len(arns) > most:
        node.fail(f"expected at most {most} {what} ARNs, got {len(arns)}")
    return tuple(arns)


def check_tunnel_has_runbook(tunnel: TunnelSettings, runbook_exists: bool, path: str, problems: Problems) -> None:
    """The tunnel is a runbook step: without Incident Manager or OpsCenter there is no runbook to hold it."""
    if tunnel.enabled and not runbook_exists:
        problems.add(
            f"{path}.enabled",
            "the tunnel is a step of the incident runbook, which exists only with incidentResponse."
            "incidentManager.enabled or incidentResponse.opsCenter.enabled; turn one on or set this to false",
        )

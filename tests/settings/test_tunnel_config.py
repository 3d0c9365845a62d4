"""``fleetguard:quarantine.tunnel`` validation: off by default, every key read, one named error per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from settings import load_settings
from settings.tunnel import DISABLED, TunnelSettings
from tests.settings.config_support import BASE, only_config_problem

APPROVER = "arn:aws:iam::123456789012:role/IncidentLead"
USER = "arn:aws:iam::123456789012:user/alice"
RESPONDER = "arn:aws:iam::123456789012:role/team/ForensicResponder"
ENABLED: dict[str, Any] = {"enabled": True, "approvers": [APPROVER], "responderRoleArns": [RESPONDER]}


def tunnel(section: Any, **sections: Any) -> TunnelSettings:
    return load_settings({**BASE, "quarantine": {"tunnel": section}, **sections}).quarantine.tunnel


def only_problem(section: Any, **sections: Any) -> str:
    return only_config_problem({"quarantine": {"tunnel": section}, **sections})


def test_off_by_default() -> None:
    assert load_settings(BASE).quarantine.tunnel == DISABLED
    assert DISABLED.enabled is False


def test_every_key_is_read() -> None:
    settings = tunnel({
        **ENABLED, "approvers": [APPROVER, USER, "arn:aws:sts::123456789012:assumed-role/IncidentLead/bob"],
        "maxLifetimeMinutes": 720, "minRequiredApprovals": 2, "approvalTimeoutMinutes": 30,
    })
    assert settings == TunnelSettings(
        True, 720, (APPROVER, USER, "arn:aws:sts::123456789012:assumed-role/IncidentLead/bob"), 2, 30, (RESPONDER,),
    )


@pytest.mark.parametrize(("section", "key", "expected"), [
    ({**ENABLED, "maxLifetimeMinutes": 0}, "maxLifetimeMinutes", "expected a whole number in 1..720"),
    ({**ENABLED, "maxLifetimeMinutes": 721}, "maxLifetimeMinutes", "expected a whole number in 1..720"),
    ({**ENABLED, "approvalTimeoutMinutes": 4}, "approvalTimeoutMinutes", "expected a whole number in 5..1440"),
    ({**ENABLED, "approvers": ["alice"]}, "approvers[0]", "expected a string matching arn:aws"),
    ({**ENABLED, "approvers": []}, "approvers", "expected at least one approver ARN when the tunnel is enabled"),
    ({"enabled": True, "approvers": [APPROVER]}, "responderRoleArns", "expected at least one responder role ARN"),
    ({**ENABLED, "responderRoleArns": [USER]}, "responderRoleArns[0]", "expected a string matching arn:aws"),
    ({**ENABLED, "responderRoleArns": [RESPONDER, RESPONDER]}, "responderRoleArns", "is used more than once"),
    ({**ENABLED, "approvers": [f"{USER}{index}" for index in range(11)]}, "approvers", "at most 10 approver ARNs"),
    ({**ENABLED, "approvers": [USER], "minRequiredApprovals": 2}, "minRequiredApprovals",
     "expected at most the number of approvers (1) when none of them is a role"),
    ({**ENABLED, "sshPort": 22}, "sshPort", "unknown key"),
])
def test_each_mistake_names_its_key_and_what_is_allowed(section: dict[str, Any], key: str, expected: str) -> None:
    problem = only_problem(section)
    assert problem.startswith(f"fleetguard:quarantine.tunnel.{key}: "), problem
    assert expected in problem


def test_a_role_among_the_approvers_may_supply_more_approvals_than_there_are_approvers() -> None:
    assert tunnel({**ENABLED, "minRequiredApprovals": 3}).min_required_approvals == 3


def test_the_tunnel_needs_a_runbook_to_live_in() -> None:
    problem = only_problem(ENABLED, incidentResponse={"opsCenter": {"enabled": False}})
    assert problem.startswith("fleetguard:quarantine.tunnel.enabled: the tunnel is a step of the incident runbook")
    # OpsCenter is on by default without Incident Manager, so the default response has a runbook.
    assert tunnel(ENABLED).enabled

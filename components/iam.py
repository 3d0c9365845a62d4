"""IAM document builders shared by the components: trust policies and least-privilege statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


def statement(
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    *,
    sid: str | None = None,
    effect: str = "Allow",
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One policy statement; actions are always listed explicitly (never a wildcard)."""
    if any("*" in action for action in actions):
        raise ValueError(f"wildcard actions are not allowed in fleetguard policies: {list(actions)}")
    body: dict[str, Any] = {"Effect": effect, "Action": sorted(actions), "Resource": list(resources)}
    if sid:
        body["Sid"] = sid
    if condition:
        body["Condition"] = condition
    return body


def policy_document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """A JSON policy document; resource ARNs may be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust_policy(service: str, account_id: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """Trust ``service`` to assume a role; with ``account_id``, only on behalf of this account (the
    confused-deputy guard, for services that send aws:SourceAccount — Lambda does not)."""
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account_id is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [trust]})

"""IAM document builders shared by the components: trust policies and least-privilege statements."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn

ROLE_NAME_PATTERN: Final = r"[\w+=,.@-]+"
"""IAM's roleNameType pattern."""
ROLE_NAME_MAX_LENGTH: Final = 64
"""IAM's roleNameType maximum length."""
OPS_ITEM_STACK_TAG_KEY: Final = "fleetguard:stack"
"""The tag every OpsItem the intake opens carries (the value names the stack): OpsItem ids are not known in
advance, so the functions' OpsItem permissions are conditioned on it."""


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


def unscoped_statement(actions: Sequence[str], region: pulumi.Input[str], *, sid: str) -> dict[str, Any]:
    """A statement for actions that support no resource type, so ``"*"`` is the only resource IAM
    authorises them with; the condition keeps them to the stack's region."""
    return statement(actions, ["*"], sid=sid, condition={"StringEquals": {"aws:RequestedRegion": region}})


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


def aws_managed_policy_arn(partition: pulumi.Input[str], policy_path: str) -> pulumi.Output[str]:
    """The ARN of the AWS managed policy at ``policy_path`` (``service-role/<name>``); AWS owns these
    policies, so the account field reads ``aws``."""
    return arn(partition, "iam", f"policy/{policy_path}", region=None, account="aws")


def service_role(
    resource_name: str,
    service: str,
    *,
    account_id: pulumi.Input[str] | None,
    description: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    name: pulumi.Input[str] | None = None,
) -> aws.iam.Role:
    """A role that ``service`` assumes; with ``account_id``, only on behalf of this account (see
    ``service_trust_policy``). ``name`` fixes the role's name where a retained resource points at it;
    otherwise Pulumi names it."""
    return aws.iam.Role(
        resource_name,
        name=name,
        description=description,
        assume_role_policy=service_trust_policy(service, account_id),
        tags=tags,
        opts=opts,
    )


def incident_statement(
    actions: Sequence[str],
    *,
    partition: pulumi.Input[str],
    account_id: pulumi.Input[str],
    response_plan_name: str,
    sid: str,
) -> dict[str, Any]:
    """Allow ``actions`` on the incidents that this stack's response plan opens.

    IAM authorises a call on an incident (timeline events, related items) against the incident record
    and against the response plan that opened it, so the statement names both. The ARNs are built from
    the plan's name, not read from the plan, so a role the plan itself depends on can hold them.
    Incident Manager ARNs carry no region.
    """
    response_plan = arn(
        partition, "ssm-incidents", f"response-plan/{response_plan_name}", region=None, account=account_id
    )
    incident_records = arn(
        partition, "ssm-incidents", f"incident-record/{response_plan_name}/*", region=None, account=account_id
    )
    return statement(actions, [incident_records, response_plan], sid=sid)


def containment_statements(
    membership_action: str,
    *,
    membership_sid: str,
    confirm_sid: str,
    group_arn: pulumi.Input[str],
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
) -> list[dict[str, Any]]:
    """What a handler that moves devices into or out of the quarantine group needs: ``membership_action``
    (``iot:AddThingToThingGroup`` or ``iot:RemoveThingFromThingGroup``, authorised against the group and
    the thing), reading the thing's groups back to confirm the move, and flagging its shadow.

    DescribeThing is in the read-back because only it tells a missing thing from a missing group.
    """
    things = arn(partition, "iot", "thing/*", region=region, account=account_id)
    return [
        statement([membership_action], [group_arn, things], sid=membership_sid),
        statement(["iot:DescribeThing", "iot:ListThingGroupsForThing"], [things], sid=confirm_sid),
        statement(["iot:UpdateThingShadow"], [things], sid="FlagQuarantineInShadow"),
    ]


def regional_role_name(name: str, region: str) -> str:
    """``<name>-<region>``, checked against IAM's role name rules. IAM is global to the account, so the
    region keeps stacks of one environment in two regions apart."""
    role_name = f"{name}-{region}"
    if len(role_name) > ROLE_NAME_MAX_LENGTH or not re.fullmatch(ROLE_NAME_PATTERN, role_name):
        raise ValueError(
            f"IAM role name {role_name!r} must match {ROLE_NAME_PATTERN} and have at most "
            f"{ROLE_NAME_MAX_LENGTH} characters (shorten fleetguard:environment)"
        )
    return role_name


def stable_role_name(name: str, region: pulumi.Input[str]) -> pulumi.Output[str]:
    """A deterministic name for a role that a retained account-wide resource points at, so that a destroy
    and a new up recreate the ARN the retained resource still holds."""
    return pulumi.Output.from_input(region).apply(lambda region_name: regional_role_name(name, region_name))


def ops_item_statement(
    actions: Sequence[str],
    *,
    stack_tag: str,
    partition: pulumi.Input[str],
    region: pulumi.Input[str],
    account_id: pulumi.Input[str],
    sid: str,
) -> dict[str, Any]:
    """Allow ``actions`` on the OpsItems this stack's intake opens (``OPS_ITEM_STACK_TAG_KEY`` =
    ``stack_tag``): the statement names every OpsItem and the condition keeps it to the tagged ones."""
    return statement(
        actions, [arn(partition, "ssm", "opsitem/*", region=region, account=account_id)], sid=sid,
        condition={"StringEquals": {f"aws:ResourceTag/{OPS_ITEM_STACK_TAG_KEY}": stack_tag}},
    )

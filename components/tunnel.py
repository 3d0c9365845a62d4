"""Online forensics: the function the runbook's OnlineForensics step invokes to open an SSH secure tunnel to
each quarantined device of an incident, and the topic its approval step notifies.

Created only with ``quarantine.tunnel.enabled``. The tunnel's source access token goes into a secret named
``<secret prefix><tunnel id>`` that only the responders' roles may read; the release function (configured in
the quarantine component with the same prefix) closes the tunnels and deletes the secrets.

Secure tunneling authorises OpenTunnel and ListTunnels against no resource type, so those statements name
``"*"``; OpenTunnel is narrowed by its condition keys to SSH tunnels to devices in the quarantine group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs, deployment_of
from components.function import FunctionComponent
from components.iam import incident_statement, ops_item_statement, statement, unscoped_statement
from functions.contract_tunnel import TUNNEL_SERVICE, TunnelEnvironment
from settings.quarantine import QuarantineSettings
from settings.tunnel import TunnelSettings

APPROVAL_TOPIC_PREFIX: Final = "Automation"
"""SSM Automation publishes an aws:approve step's request only to a topic whose name begins with this."""


def tunnel_secret_prefix(stack_prefix: str) -> str:
    """The name prefix of the secrets holding tunnels' source tokens: the tunnel function creates them, the
    release function deletes them, so both are configured from this one place."""
    return f"{stack_prefix}-tunnel/"


def secret_resources(
    prefix: str, *, partition: pulumi.Input[str], region: pulumi.Input[str], account_id: pulumi.Input[str]
) -> list[pulumi.Output[str]]:
    """Every secret under ``prefix`` (Secrets Manager appends ``-`` and six characters to each name)."""
    return [arn(partition, "secretsmanager", f"secret:{prefix}*", region=region, account=account_id)]


def tunnel_resources(
    *, partition: pulumi.Input[str], region: pulumi.Input[str], account_id: pulumi.Input[str]
) -> list[pulumi.Output[str]]:
    """Every tunnel of the account: tunnel ids are issued by AWS, and the functions act only on tunnels
    carrying the fleetguard incident tag, which they check before acting."""
    return [arn(partition, "iot", "tunnel/*", region=region, account=account_id)]


def list_tunnels_statement(region: pulumi.Input[str]) -> dict[str, Any]:
    # ListTunnels supports no resource type and has no service condition key: "*" in this region.
    return unscoped_statement(["iot:ListTunnels"], region, sid="ListDeviceTunnels")


@dataclass(frozen=True)
class TunnelWiring:
    """What the runbook needs of the tunnel component."""

    settings: TunnelSettings
    """Who approves, how many, how long the approval waits, how long a tunnel lives."""
    function_arn: pulumi.Input[str]
    approval_topic_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    """The key the approval topic is encrypted with: whoever publishes to the topic uses it."""


class TunnelArgs(DeploymentArgs):
    """Inputs of the online forensics component."""

    settings: QuarantineSettings
    """The quarantine settings: ``tunnel`` (lifetime, responder roles) and the functions' shared settings."""
    secret_prefix: str
    """``tunnel_secret_prefix`` of the stack."""
    quarantine_group_name: pulumi.Input[str]
    quarantine_group_arn: pulumi.Input[str]
    """Only devices in this group get a tunnel (checked by the function and by OpenTunnel's condition)."""
    release_role_arn: pulumi.Input[str]
    """The release function's role: each secret's policy lets it delete the secret."""
    key_arn: pulumi.Input[str]
    """The alert key: the approval topic is encrypted with it like the other topics."""
    layer_arn: pulumi.Input[str]
    incident_response_plan_name: str | None
    """With Incident Manager: the function reads the incident's devices and notes the tunnel on its timeline."""
    ops_item_stack_tag: str | None
    """With OpsCenter: the function reads the OpsItem's device and records the tunnel on the OpsItem."""


class TunnelComponent(pulumi.ComponentResource):
    """The tunnel function (its role limited to the calls it makes) and the approval topic."""

    function: FunctionComponent
    approval_topic: aws.sns.Topic
    secret_prefix: str
    wiring: TunnelWiring
    """What the runbook's approval and OnlineForensics steps need."""

    def __init__(self, name: str, args: TunnelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:tunnel:Tunnel", name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        self.secret_prefix = args["secret_prefix"]
        self.approval_topic = aws.sns.Topic(
            f"{name}-approvals",
            name=f"{APPROVAL_TOPIC_PREFIX}-{name}-approvals",
            kms_master_key_id=args["key_arn"],
            tags=args["tags"],
            opts=child,
        )
        self.function = FunctionComponent(
            f"{name}-open",
            {
                **deployment_of(args),
                "extra_files": {},
                "handler": "functions.tunnel.handler",
                "description": "Opens an SSH secure tunnel to an incident's quarantined devices; token in a secret",
                "environment": TunnelEnvironment[pulumi.Input[str]](
                    quarantine_group_name=args["quarantine_group_name"],
                    secret_prefix=self.secret_prefix,
                    max_lifetime_minutes=settings.tunnel.max_lifetime_minutes,
                    reader_role_arns=settings.tunnel.responder_role_arns,
                    release_role_arn=args["release_role_arn"],
                    service_name="fleetguard-tunnel",
                    retry_mode="standard",
                ).to_environment(),
                "log_level": settings.function_log_level,
                "statements": self._statements(args),
                "layer_arn": args["layer_arn"],
                "log_retention_days": settings.function_log_retention_days,
                "timeout_seconds": settings.function_timeout_seconds,
                "memory_mb": settings.function_memory_mb,
            },
            opts=child,
        )
        self.wiring = TunnelWiring(
            settings.tunnel, self.function.function.arn, self.approval_topic.arn, args["key_arn"],
        )
        self.register_outputs({
            "functionArn": self.function.function.arn,
            "approvalTopicArn": self.approval_topic.arn,
            "secretPrefix": self.secret_prefix,
        })

    @staticmethod
    def _statements(args: TunnelArgs) -> list[dict[str, Any]]:
        where = {"partition": args["partition"], "region": args["region"], "account_id": args["account_id"]}
        things = arn(args["partition"], "iot", "thing/*", region=args["region"], account=args["account_id"])
        statements: list[dict[str, Any]] = [
            # OpenTunnel supports no resource type; its condition keys keep it to SSH and the quarantine group.
            statement(
                ["iot:OpenTunnel"], ["*"], sid="OpenSshTunnelsToQuarantinedDevices",
                condition={
                    "ForAnyValue:StringEquals": {"iot:ThingGroupArn": [args["quarantine_group_arn"]]},
                    "ForAllValues:StringEquals": {"iot:TunnelDestinationService": [TUNNEL_SERVICE]},
                },
            ),
            list_tunnels_statement(args["region"]),
            # Describe finds the incident's tunnel on a retry; rotate re-issues a token never stored; close
            # abandons a tunnel whose token could not be stored.
            statement(["iot:CloseTunnel", "iot:DescribeTunnel", "iot:RotateTunnelAccessToken"],
                      tunnel_resources(**where), sid="ManageIncidentTunnels"),
            statement(
                ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
                 "secretsmanager:PutResourcePolicy", "secretsmanager:PutSecretValue", "secretsmanager:TagResource"],
                secret_resources(args["secret_prefix"], **where), sid="StoreTunnelTokens",
            ),
            statement(["iot:ListThingGroupsForThing"], [things], sid="ConfirmQuarantine"),
        ]
        plan = args["incident_response_plan_name"]
        if plan is not None:
            statements.append(incident_statement(
                ["ssm-incidents:CreateTimelineEvent", "ssm-incidents:ListRelatedItems"],
                partition=args["partition"], account_id=args["account_id"], response_plan_name=plan,
                sid="ReadDevicesAndNoteTunnels",
            ))
        stack_tag = args["ops_item_stack_tag"]
        if stack_tag is not None:
            statements.append(ops_item_statement(
                ["ssm:GetOpsItem", "ssm:UpdateOpsItem"], stack_tag=stack_tag, sid="RecordTunnelsOnOwnOpsItems",
                **where,
            ))
        return statements


def approval_statements(wiring: TunnelWiring) -> Sequence[dict[str, Any]]:
    """What the runbook role needs for the two steps: invoke the function, publish the approval request to
    the encrypted topic (Automation publishes it as the runbook's role)."""
    return [
        statement(["lambda:InvokeFunction"], [wiring.function_arn], sid="InvokeTunnel"),
        statement(["sns:Publish"], [wiring.approval_topic_arn], sid="RequestTunnelApproval"),
        statement(["kms:Decrypt", "kms:GenerateDataKey"], [wiring.key_arn], sid="EncryptApprovalRequest"),
    ]

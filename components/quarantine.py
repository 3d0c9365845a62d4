"""Containment: the quarantine thing group with a restrictive IoT policy and its own DEBUG logging, the
Device Defender mitigation actions that act on devices, and the contain/release functions.

A device in the quarantine group keeps only what investigation and repair need (see
``quarantine_policy_document``); the functions move devices in and out of the group and flag the
quarantine in the device shadow, and the mitigation actions let Device Defender (Detect alarms, audit
findings) do the same without a function.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.arns import arn, arn_prefix
from components.deployment import DeploymentArgs, deployment_of
from components.function import FunctionArgs, FunctionComponent, powertools_layer_arn
from components.iam import (
    containment_statements,
    incident_statement,
    ops_item_statement,
    policy_document,
    service_role,
    stable_role_name,
    statement,
)
from components.mitigation_actions import (
    ADD_TO_QUARANTINE,
    DEACTIVATE_CERTIFICATE,
    ENABLE_LOGGING,
    create_mitigation_action,
)
from components.tunnel import list_tunnels_statement, secret_resources, tunnel_resources
from functions.contract import ContainmentEnvironment
from settings.facts import IOT_LOG_GROUP, QUARANTINE_ROLE, ROLE_TAG_KEY
from settings.quarantine import QuarantineSettings

THING: Final = "${iot:Connection.Thing.ThingName}"
"""IoT policy variable: the name of the thing the connection belongs to."""
RELEASE_HANDLER: Final = "functions.release.handler"
IOT_POLICY_MAX_CHARS: Final = 2048
"""AWS IoT rejects a policy document longer than this, whitespace excluded."""


def quarantine_policy_document(iot_arn_prefix: str, forensic_topic_prefix: str) -> str:
    """The IoT policy attached to the quarantine group, as compact JSON.

    ``iot_arn_prefix`` is ``arn:<partition>:iot:<region>:<account>``. An explicit Deny in any policy
    overrides every Allow, so the Deny statements bound what a quarantined device can do whatever its
    certificate policy allows; the Allow statements grant the remaining paths, which the certificate
    policy may not. Each Deny names its actions explicitly and uses ``NotResource`` for the allowed
    resources, which denies every other resource without a wildcard action. A request's resource is of
    one kind per action (Publish and Receive: ``topic/``; Subscribe: ``topicfilter/``; Connect:
    ``client/``), so listing a resource of another kind in a statement never widens what it permits.

    What this policy cannot do: AWS IoT applies thing group policies only to connections whose client
    id is the thing's name, and HTTPS calls (REST shadow API, credentials provider) have no client id.
    A device that connects under another client id or calls those APIs is governed by its certificate
    policy alone; the UPDATE_DEVICE_CERTIFICATE mitigation action (deactivate) is the control for it.

    Online forensics needs one thing here: subscribing to and receiving ``$aws/things/<thing>/tunnels/notify``.
    The tunnel's data flows over the secure tunneling WebSocket endpoint, authenticated by the destination
    access token, not over MQTT, so an IoT policy neither can nor needs to govern it.
    """
    prefix = iot_arn_prefix
    own_reserved = f"$aws/things/{THING}"
    # Connect: only as its own client id, so investigators can still reach the device.
    own_client = f"{prefix}:client/{THING}"
    # Subscribe and Receive: the device's own reserved topics only - shadow replies and deltas (the
    # quarantine flag arrives as desired state), job notifications, acknowledgements of its Device
    # Defender metrics, and tunnels/notify (where its agent learns of a secure tunnel opened for
    # forensics, with the destination token). Everything there is about the device itself. An explicit
    # list of those filters, as topic and topicfilter ARNs in both the Allow and the Deny, would not fit
    # AWS IoT's 2048-character limit with a 64-character forensic prefix; the one wildcard over the
    # device's own reserved topics does.
    own_reserved_filters = f"{prefix}:topicfilter/{own_reserved}/*"
    own_reserved_topics = f"{prefix}:topic/{own_reserved}/*"
    # Forensics: the device uploads evidence (logs, process lists, captures) under its own name only, so
    # it cannot forge another device's evidence.
    forensic_topics = f"{prefix}:topic/{forensic_topic_prefix}/{THING}/*"
    publishable = [
        # Its own classic shadow: read the desired state and report state. Delete is excluded so the
        # device cannot wipe the responders' record (reason, incident) in one call. An update can still
        # change desired state: the shadow flag informs a cooperating device, the group restricts it.
        f"{prefix}:topic/{own_reserved}/shadow/get",
        f"{prefix}:topic/{own_reserved}/shadow/update",
        # Its own jobs: receive and report a repair job (firmware rollback or update to a known state).
        f"{prefix}:topic/{own_reserved}/jobs/*",
        # Device Defender metrics: Detect keeps judging the device, so responders see whether the
        # behaviour stops and the alarm clears before they release it.
        f"{prefix}:topic/{own_reserved}/defender/metrics/*",
        forensic_topics,
    ]
    statements = [
        statement(
            ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"],
            [own_client, own_reserved_topics, own_reserved_filters, forensic_topics],
            sid="InvestigationAndRepair",
        ),
        # Redundant while the client id must equal the thing name; kept in case AWS IoT applies group
        # policies to exclusively associated connections, whose client id may differ.
        _deny_all_but(["iot:Connect"], [own_client], sid="DenyOtherClientIds"),
        _deny_all_but(["iot:Publish"], publishable, sid="DenyPublishElsewhere"),
        _deny_all_but(["iot:Receive", "iot:Subscribe"], [own_reserved_filters, own_reserved_topics],
                      sid="DenyOtherSubscriptions"),
        # Retained messages would outlive the quarantine in the broker; nothing above needs them.
        statement(["iot:RetainPublish"], ["*"], effect="Deny", sid="DenyRetainedMessages"),
    ]
    document = json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
    if len(document) > IOT_POLICY_MAX_CHARS:
        raise ValueError(
            f"the quarantine IoT policy is {len(document)} characters; AWS IoT accepts at most "
            f"{IOT_POLICY_MAX_CHARS} (shorten forensicTopicPrefix)"
        )
    return document


def _deny_all_but(actions: list[str], allowed_resources: list[str], *, sid: str) -> dict[str, Any]:
    deny = statement(actions, allowed_resources, effect="Deny", sid=sid)
    deny["NotResource"] = deny.pop("Resource")
    return deny


class QuarantineArgs(DeploymentArgs):
    """Inputs of the quarantine component."""

    settings: QuarantineSettings
    """Validated quarantine settings (group, logging, functions)."""
    iot_data_endpoint: pulumi.Input[str]
    """The account's IoT data (ATS) endpoint host, resolved at deploy time so the handlers need no
    iot:DescribeEndpoint (an action without resource-level permissions)."""
    incident_response_plan_name: str | None
    """The response plan whose incidents' related items the contain function may list (the runbook may
    pass only the incident); None where Incident Manager is not in use."""
    ops_item_stack_tag: str | None
    """The ``fleetguard:stack`` tag value of the OpsItems the intake opens: contain reads the device from one
    and records progress on it, release resolves it. None where OpsCenter is not in use."""
    tunnel_secret_prefix: str | None
    """With online forensics on (``components.tunnel.tunnel_secret_prefix``): release closes the device's
    fleetguard tunnels and deletes their token secrets. None where tunnels are off."""


class QuarantineComponent(pulumi.ComponentResource):
    """Quarantine group, its policy and logging, Device Defender mitigation actions, contain/release."""

    group: aws.iot.ThingGroup
    group_name: str
    policy: aws.iot.Policy
    policy_attachment: aws.iot.PolicyAttachment
    logging_role: aws.iam.Role
    account_logging: aws.iot.LoggingOptions | None
    iot_log_group: aws.cloudwatch.LogGroup | None
    group_logging: aws_native.iot.ResourceSpecificLogging | None
    add_to_quarantine_action: aws_native.iot.MitigationAction
    deactivate_certificate_action: aws_native.iot.MitigationAction
    enable_logging_action: aws_native.iot.MitigationAction
    contain_function: FunctionComponent
    release_function: FunctionComponent

    def __init__(self, name: str, args: QuarantineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:quarantine:Quarantine", name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        self.group_name = settings.group_name
        self.group = aws.iot.ThingGroup(
            f"{name}-group",
            name=settings.group_name,
            properties=aws.iot.ThingGroupPropertiesArgs(
                description="fleetguard: devices under investigation; restricted by the quarantine policy",
            ),
            # The policy pack recognises the quarantine group by this tag, not by its configurable name.
            tags={**args["tags"], ROLE_TAG_KEY: QUARANTINE_ROLE},
            opts=child,
        )
        iot_arn_prefix = arn_prefix(args["partition"], "iot", region=args["region"], account=args["account_id"])
        self.policy = aws.iot.Policy(
            f"{name}-policy",
            name=name,
            policy=iot_arn_prefix.apply(
                lambda arn: quarantine_policy_document(arn, settings.forensic_topic_prefix)
            ),
            tags=args["tags"],
            opts=child,
        )
        # One of the two policies a thing group can hold; the other stays free for operators.
        self.policy_attachment = aws.iot.PolicyAttachment(
            f"{name}-policy-attachment", policy=self.policy.name, target=self.group.arn, opts=child,
        )
        self._create_logging(name, args)
        self._create_mitigation_actions(name, args)
        self._create_functions(name, args)
        self.register_outputs({
            "groupName": self.group.name,
            "groupArn": self.group.arn,
            "policyName": self.policy.name,
            "addToQuarantineActionArn": self.add_to_quarantine_action.mitigation_action_arn,
            "containFunctionArn": self.contain_function.function.arn,
            "releaseFunctionArn": self.release_function.function.arn,
        })

    def _create_logging(self, name: str, args: QuarantineArgs) -> None:
        """DEBUG logs for the quarantine group; they flow only while account-wide v2 logging is on."""
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        log_group_arn = arn(
            args["partition"], "logs", f"log-group:{IOT_LOG_GROUP}", region=args["region"], account=args["account_id"]
        )
        self.logging_role = service_role(
            f"{name}-iot-logging-role", "iot.amazonaws.com", account_id=args["account_id"],
            description="Assumed by AWS IoT to write v2 logs to the AWSIotLogsV2 log group",
            # The retained account logging options point at this role: its ARN must survive a destroy and up.
            name=stable_role_name(f"{name}-logging", args["region"]),
            tags=args["tags"], opts=child,
        )
        # The permissions AWS documents for the v2 logging role, limited to AWS IoT's own log group.
        logging_policy = aws.iam.RolePolicy(
            f"{name}-iot-logging-policy",
            role=self.logging_role.id,
            policy=policy_document(
                statement(["logs:CreateLogGroup", "logs:PutRetentionPolicy"], [log_group_arn],
                          sid="KeepIotLogGroup"),
                statement(["logs:CreateLogStream", "logs:PutLogEvents"],
                          [pulumi.Output.concat(log_group_arn, ":*")], sid="WriteIotLogs"),
            ),
            opts=child,
        )
        self.iot_log_group = None
        self.account_logging = None
        group_logging_after: list[pulumi.Resource] = [logging_policy]
        if settings.manage_account_logging:
            # Created here, before AWS IoT writes, so the logs are kept for a bounded time.
            self.iot_log_group = aws.cloudwatch.LogGroup(
                f"{name}-iot-logs",
                name=IOT_LOG_GROUP,
                retention_in_days=settings.iot_log_retention_days,
                tags=args["tags"],
                opts=child,
            )
            self.account_logging = aws.iot.LoggingOptions(
                f"{name}-account-logging",
                default_log_level=settings.account_log_level,
                disable_all_logs=False,
                role_arn=self.logging_role.arn,
                # The provider's delete leaves the account's logging options as they are; saying so here
                # keeps the role it points at under the stable-name rule for retained resources.
                opts=pulumi.ResourceOptions(
                    parent=self, retain_on_delete=True, depends_on=[logging_policy, self.iot_log_group],
                ),
            )
            group_logging_after = [self.account_logging]
        self.group_logging = None
        if settings.manage_group_logging:
            self.group_logging = aws_native.iot.ResourceSpecificLogging(
                f"{name}-group-logging",
                target_type=aws_native.iot.ResourceSpecificLoggingTargetType.THING_GROUP,
                target_name=self.group.name,
                log_level=aws_native.iot.ResourceSpecificLoggingLogLevel(settings.group_log_level),
                opts=pulumi.ResourceOptions(parent=self, depends_on=group_logging_after),
            )

    def _create_mitigation_actions(self, name: str, args: QuarantineArgs) -> None:
        """Actions Device Defender applies to Detect violations and audit findings."""
        settings = args["settings"]
        native = aws_native.iot
        params = native.MitigationActionActionParamsArgs
        self.add_to_quarantine_action = create_mitigation_action(self, name, ADD_TO_QUARANTINE, args, params(
            add_things_to_thing_group_params=native.MitigationActionAddThingsToThingGroupParamsArgs(
                thing_group_names=[self.group.name],
                # A thing already in 10 groups, some dynamic, could otherwise not be quarantined.
                override_dynamic_groups=True,
            ),
        ))
        self.deactivate_certificate_action = create_mitigation_action(self, name, DEACTIVATE_CERTIFICATE, args, params(
            update_device_certificate_params=native.MitigationActionUpdateDeviceCertificateParamsArgs(
                action=native.MitigationActionUpdateDeviceCertificateParamsAction.DEACTIVATE,
            ),
        ))
        self.enable_logging_action = create_mitigation_action(self, name, ENABLE_LOGGING, args, params(
            enable_io_t_logging_params=native.MitigationActionEnableIoTLoggingParamsArgs(
                log_level=native.MitigationActionEnableIoTLoggingParamsLogLevel(settings.mitigation_log_level),
                role_arn_for_logging=self.logging_role.arn,
            ),
        ))

    def _create_functions(self, name: str, args: QuarantineArgs) -> None:
        """The contain and release handlers, each with a role limited to the calls it makes."""
        settings = args["settings"]
        partition, region, account = args["partition"], args["region"], args["account_id"]
        layer = powertools_layer_arn(partition, region, settings.powertools_layer_version)
        tunnel_secret_prefix = args["tunnel_secret_prefix"]

        def moving(membership_action: str, membership_sid: str) -> list[dict[str, Any]]:
            return containment_statements(
                membership_action, membership_sid=membership_sid, confirm_sid="ReadThingGroups",
                group_arn=self.group.arn, partition=partition, region=region, account_id=account,
            )

        def function_args(handler: str, description: str, service: str, retry_mode: str,
                          statements: list[dict[str, Any]]) -> FunctionArgs:
            return {
                **deployment_of(args),
                "extra_files": {},
                "handler": handler,
                "description": description,
                "environment": ContainmentEnvironment[pulumi.Input[str]](
                    quarantine_group_name=self.group.name,
                    service_name=service,
                    retry_mode=retry_mode,
                    iot_data_endpoint=args["iot_data_endpoint"],
                    tunnel_secret_prefix=tunnel_secret_prefix if handler == RELEASE_HANDLER else None,
                ).to_environment(),
                "log_level": settings.function_log_level,
                "statements": statements,
                "layer_arn": layer,
                "log_retention_days": settings.function_log_retention_days,
                "timeout_seconds": settings.function_timeout_seconds,
                "memory_mb": settings.function_memory_mb,
            }

        contain_statements = moving("iot:AddThingToThingGroup", "AddToQuarantineGroup")
        response_plan_name = args["incident_response_plan_name"]
        if response_plan_name is not None:
            # Incident-only events name their devices as the incident's related items.
            contain_statements.append(incident_statement(
                ["ssm-incidents:ListRelatedItems"], partition=partition, account_id=account,
                response_plan_name=response_plan_name, sid="ReadIncidentDevices",
            ))
        release_statements = moving("iot:RemoveThingFromThingGroup", "RemoveFromQuarantineGroup")
        stack_tag = args["ops_item_stack_tag"]
        if stack_tag is not None:
            # Contain reads the device from the OpsItem and records its progress there; release resolves it.
            for statements, actions in ((contain_statements, ["ssm:GetOpsItem", "ssm:UpdateOpsItem"]),
                                        (release_statements, ["ssm:UpdateOpsItem"])):
                statements.append(ops_item_statement(
                    actions, stack_tag=stack_tag, partition=partition, region=region, account_id=account,
                    sid="RecordOnOwnOpsItems",
                ))
        if tunnel_secret_prefix is not None:
            release_statements += [
                list_tunnels_statement(region),
                statement(["iot:CloseTunnel", "iot:DescribeTunnel"],
                          tunnel_resources(partition=partition, region=region, account_id=account),
                          sid="CloseDeviceTunnels"),
                statement(["secretsmanager:DeleteSecret"],
                          secret_resources(tunnel_secret_prefix, partition=partition, region=region,
                                           account_id=account),
                          sid="DeleteTunnelTokens"),
            ]
        self.contain_function = FunctionComponent(
            f"{name}-contain",
            function_args(
                "functions.contain.handler",
                "Quarantines a device (or an incident's devices): quarantine group plus shadow flag",
                "fleetguard-contain",
                # Many alarms can arrive at once; adaptive mode rate-limits on the client side.
                "adaptive",
                contain_statements,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release_function = FunctionComponent(
            f"{name}-release",
            function_args(
                RELEASE_HANDLER,
                "Releases a device from quarantine: leaves the group, clears the shadow flag",
                "fleetguard-release",
                "standard",
                release_statements,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

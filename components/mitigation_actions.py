"""Device Defender mitigation actions: what differs between them (``MitigationActionKind``) and the one
helper that creates an action with the role Device Defender assumes to apply it.

Plain functions, not a component: each component that owns actions creates them as its own children
(the quarantine's act on devices, the audit mitigation's on certificates, policies and findings), so the
actions keep the logical names and parents they were first deployed with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.deployment import DeploymentArgs
from components.iam import aws_managed_policy_arn, policy_document, service_role
from components.tags import native_tags
from settings.audit_mitigations import MitigationActionKey


@dataclass(frozen=True)
class MitigationActionKind:
    """What differs between the mitigation actions: the config key naming it in ``audit.mitigations``, the
    name suffix, what the role is for, and the AWS managed policy that grants it (one per action type), or
    None where the role gets scoped statements of its own instead."""

    key: MitigationActionKey
    suffix: str
    purpose: str
    managed_policy: str | None


ADD_TO_QUARANTINE: Final = MitigationActionKind(
    MitigationActionKey.ADD_TO_QUARANTINE, "add-things", "add devices to the quarantine group",
    "service-role/AWSIoTDeviceDefenderAddThingsToThingGroupMitigationAction",
)
DEACTIVATE_CERTIFICATE: Final = MitigationActionKind(
    MitigationActionKey.DEACTIVATE_DEVICE_CERTIFICATE, "deactivate-cert",
    "deactivate device certificates named in audit findings",
    "service-role/AWSIoTDeviceDefenderUpdateDeviceCertMitigationAction",
)
ENABLE_LOGGING: Final = MitigationActionKind(
    MitigationActionKey.ENABLE_LOGGING, "enable-logging",
    "turn AWS IoT logging on for a LOGGING_DISABLED_CHECK finding",
    "service-role/AWSIoTDeviceDefenderEnableIoTLoggingMitigationAction",
)
DEACTIVATE_CA_CERTIFICATE: Final = MitigationActionKind(
    MitigationActionKey.DEACTIVATE_CA_CERTIFICATE, "deactivate-ca-cert",
    "deactivate CA certificates named in audit findings",
    "service-role/AWSIoTDeviceDefenderUpdateCACertMitigationAction",
)
REPLACE_DEFAULT_POLICY_VERSION: Final = MitigationActionKind(
    MitigationActionKey.REPLACE_DEFAULT_POLICY_VERSION, "blank-policy",
    "replace an audited IoT policy's default version with a blank one",
    "service-role/AWSIoTDeviceDefenderReplaceDefaultPolicyMitigationAction",
)
PUBLISH_FINDING: Final = MitigationActionKind(
    MitigationActionKey.PUBLISH_FINDING, "publish-finding", "publish audit findings to the responders topic",
    # The managed policy allows sns:Publish on every topic and no KMS use, which an encrypted topic needs.
    None,
)


def create_mitigation_action(
    parent: pulumi.Resource,
    name: str,
    kind: MitigationActionKind,
    deployment: DeploymentArgs,
    action_params: aws_native.iot.MitigationActionActionParamsArgs,
    *,
    statements: Sequence[dict[str, Any]] = (),
) -> aws_native.iot.MitigationAction:
    """One mitigation action named ``<name>-<suffix>`` and the role Device Defender assumes to apply it,
    holding the kind's AWS managed policy or, for kinds without one, ``statements``; all children of
    ``parent``."""
    action_name = f"{name}-{kind.suffix}"
    child = pulumi.ResourceOptions(parent=parent)
    role = service_role(
        f"{action_name}-role", "iot.amazonaws.com", account_id=deployment["account_id"],
        description=f"Assumed by AWS IoT Device Defender to {kind.purpose}", tags=deployment["tags"], opts=child,
    )
    grant: pulumi.Resource
    if kind.managed_policy is not None:
        grant = aws.iam.RolePolicyAttachment(
            f"{action_name}-role-policy",
            role=role.id,
            policy_arn=aws_managed_policy_arn(deployment["partition"], kind.managed_policy),
            opts=child,
        )
    else:
        grant = aws.iam.RolePolicy(
            f"{action_name}-role-policy", role=role.id, policy=policy_document(*statements), opts=child,
        )
    return aws_native.iot.MitigationAction(
        action_name,
        action_name=action_name,
        role_arn=role.arn,
        action_params=action_params,
        tags=native_tags(deployment["tags"], aws_native.TagArgs),
        # The role must hold its policy before Device Defender can apply the action.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[grant]),
    )

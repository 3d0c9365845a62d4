"""The alert topics: a customer-managed KMS key, the Device Defender alert topic (machine-readable
violations and audit notifications), the responders topic (human-readable notifications people subscribe
to), and the role Device Defender assumes to publish."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, stable_role_name, statement

# Explicit key-administration actions for the account (the usual default grants kms:*). Rotation can be
# enabled but deliberately not disabled through this policy.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
    "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
    "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
DYNAMODB_GRANT_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey")
"""What creating and opening a table encrypted with this key needs (through DynamoDB only)."""
SERVICES_SENDING_SOURCE_ACCOUNT = frozenset({"sns.amazonaws.com"})
"""Services whose KMS calls on our behalf carry aws:SourceAccount (SNS delivering to encrypted queues)."""


class AlertTopicArgs(DeploymentArgs):
    """Inputs of the alert topic component. The key policy admits the account's principals only through
    SNS and SQS in the deployment's region."""

    dns_suffix: pulumi.Input[str]
    """The partition's DNS suffix (amazonaws.com, amazonaws.com.cn) for the kms:ViaService names."""
    key_deletion_window_days: int
    """How long a deleted key stays recoverable (7-30 days)."""
    key_user_services: list[str]
    """Service principals that must encrypt/decrypt with the key (e.g. sns.amazonaws.com to deliver to
    encrypted queues, events.amazonaws.com and cloudwatch.amazonaws.com to publish to encrypted topics)."""
    storage_services: list[str]
    """Services besides SNS and SQS through which the account's principals use the key (``kinesis`` and
    ``dynamodb`` for the Detect engine's stream and state table); empty when nothing else is encrypted."""


class AlertTopicComponent(pulumi.ComponentResource):
    """KMS key (rotating), encrypted SNS topic for Device Defender alerts, and the role IoT assumes to
    publish to it (sns:Publish on this topic and the two key operations publishing needs, nothing else)."""

    key: aws.kms.Key
    topic: aws.sns.Topic
    responders_topic: aws.sns.Topic
    publish_role: aws.iam.Role

    def __init__(self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:alerts:AlertTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_root = arn(args["partition"], "iam", "root", region=None, account=args["account_id"])
        # The account's principals (the publish role, the intake function, operators reading the
        # dead-letter queue) use the key only through SNS and SQS in this region, never directly, and
        # through the storage services given (DynamoDB for the tables, Kinesis for the engine's stream).
        def via(services: list[str]) -> dict[str, Any]:
            return {
                "StringEquals": {
                    "kms:CallerAccount": args["account_id"],
                    "kms:ViaService": [
                        pulumi.Output.format("{0}.{1}.{2}", service, args["region"], args["dns_suffix"])
                        for service in services
                    ],
                },
            }

        storage = sorted(set(args["storage_services"]))
        key_statements = [
            statement(KEY_ADMIN_ACTIONS, ["*"], sid="AccountAdministersKey"),
            statement(KEY_USE_ACTIONS, ["*"], sid="AccountPrincipalsUseKeyViaMessaging",
                      condition=via(["sns", "sqs", *storage])),
        ]
        if "dynamodb" in storage:
            # DynamoDB encrypts a table's items under a grant it creates with the creator's permissions,
            # and reads the key's description to check it; the grant only ever serves the table.
            grant = via(["dynamodb"])
            grant["Bool"] = {"kms:GrantIsForAWSResource": "true"}
            key_statements.append(statement(
                DYNAMODB_GRANT_ACTIONS, ["*"], sid="AccountPrincipalsLetDynamoDbUseKey", condition=grant,
            ))
        for key_statement in key_statements:
            key_statement["Principal"] = {"AWS": account_root}
        scoped = sorted(set(args["key_user_services"]) & SERVICES_SENDING_SOURCE_ACCOUNT)
        unscoped = sorted(set(args["key_user_services"]) - SERVICES_SENDING_SOURCE_ACCOUNT)
        if scoped:
            scoped_use = statement(
                KEY_USE_ACTIONS, ["*"], sid="AwsServicesUseKeyForThisAccount",
                condition={"StringEquals": {"aws:SourceAccount": args["account_id"]}},
            )
            scoped_use["Principal"] = {"Service": scoped}
            key_statements.append(scoped_use)
        if unscoped:
            # AWS documents these grants without conditions; a condition KMS cannot evaluate would make
            # alarms and findings fail silently. Who may publish is limited by the topic policy instead.
            unscoped_use = statement(KEY_USE_ACTIONS, ["*"], sid="AwsServicesPublishToEncryptedTopics")
            unscoped_use["Principal"] = {"Service": unscoped}
            key_statements.append(unscoped_use)
        self.key = aws.kms.Key(
            f"{name}-key",
            description="fleetguard: encrypts Device Defender alerts and incident-response queues",
            enable_key_rotation=True,
            deletion_window_in_days=args["key_deletion_window_days"],
            policy=policy_document(*key_statements),
            tags=args["tags"],
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.key.key_id, opts=child)
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=name,
            kms_master_key_id=self.key.arn,
            tags=args["tags"],
            opts=child,
        )
        self.responders_topic = aws.sns.Topic(
            f"{name}-responders",
            name=f"{name}-responders",
            kms_master_key_id=self.key.arn,
            tags=args["tags"],
            opts=child,
        )
        self.publish_role = service_role(
            f"{name}-publish-role", "iot.amazonaws.com", account_id=args["account_id"],
            description="Assumed by AWS IoT Device Defender to publish alerts and audit notifications",
            # The retained audit configuration points at this role: its ARN must survive a destroy and up.
            name=stable_role_name(f"{name}-publish", args["region"]),
            tags=args["tags"], opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-publish-policy",
            role=self.publish_role.id,
            policy=policy_document(
                statement(["sns:Publish"], [self.topic.arn], sid="PublishAlerts"),
                statement(KEY_USE_ACTIONS, [self.key.arn], sid="EncryptAlerts"),
            ),
            opts=child,
        )
        self.register_outputs({
            "topicArn": self.topic.arn,
            "respondersTopicArn": self.responders_topic.arn,
            "keyArn": self.key.arn,
            "publishRoleArn": self.publish_role.arn,
        })

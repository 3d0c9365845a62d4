"""Security Hub: enabled here only when this stack owns it, the Device Defender Audit and Detect
integrations, and an EventBridge rule that sends new critical/high Device Defender findings to the
responders topic as a readable message.

The component also owns the responders topic's resource policy. SNS keeps one policy per topic, so
one place must write it: it admits this stack's finding rule (EventBridge) and this stack's CloudWatch
alarms (matched by name prefix, e.g. the fleet KPI alarms), each only on behalf of this account.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.arns import arn
from components.deployment import DeploymentArgs
from components.iam import policy_document, statement
from settings.facts import DEVICE_DEFENDER_PRODUCTS
from settings.security_hub import SecurityHubSettings

FINDINGS_SOURCE: Final = "aws.securityhub"
FINDINGS_IMPORTED: Final = "Security Hub Findings - Imported"
ROUTED_WORKFLOW_STATUSES: Final = ("NEW",)
"""Only findings nobody has triaged yet; NOTIFIED/SUPPRESSED/RESOLVED ones were already handled."""
ROUTED_RECORD_STATES: Final = ("ACTIVE",)
"""Detect findings are archived when the alarm clears; those are not news to responders."""

# EventBridge input transformer: Security Hub puts one finding in each imported-finding event, so the
# first element is the finding. The template is a JSON string, hence the surrounding quotes.
FINDING_INPUT_PATHS: Final[dict[str, str]] = {
    "severity": "$.detail.findings[0].Severity.Label",
    "product": "$.detail.findings[0].ProductName",
    "title": "$.detail.findings[0].Title",
    "description": "$.detail.findings[0].Description",
    "resourceType": "$.detail.findings[0].Resources[0].Type",
    "resourceId": "$.detail.findings[0].Resources[0].Id",
    "account": "$.detail.findings[0].AwsAccountId",
    "region": "$.detail.findings[0].Region",
    "findingId": "$.detail.findings[0].Id",
}
FINDING_MESSAGE_TEMPLATE: Final = (
    '"[<severity>] <product> finding in account <account> (<region>): <title>. '
    'Resource: <resourceType> <resourceId>. <description> Finding id: <findingId>"'
)


class SecurityHubArgs(DeploymentArgs):
    """Inputs of the Security Hub component."""

    settings: SecurityHubSettings
    """Validated Security Hub settings (ownership, products, routed severities)."""
    responders_topic_arn: pulumi.Input[str]
    """The responders topic (KMS-encrypted; its key must let events.amazonaws.com and
    cloudwatch.amazonaws.com encrypt)."""
    alarm_name_prefix: str
    """CloudWatch alarms whose names start with this may publish to the responders topic."""
    incident_manager_publishes: bool
    """Incident Manager notifies the responders topic (response plan notification target)."""
    ops_center_publishes: bool
    """OpsCenter notifies the responders topic (the OpsItems' notification target) as Systems Manager."""


def product_arn(partition: pulumi.Input[str], region: pulumi.Input[str], product: str) -> pulumi.Output[str]:
    """The Security Hub product ARN of a Device Defender integration (no account: AWS owns it)."""
    return arn(
        partition, "securityhub", f"product/aws/{DEVICE_DEFENDER_PRODUCTS[product]}", region=region, account=None
    )


def finding_event_pattern(
    product_arns: list[pulumi.Output[str]], severities: tuple[str, ...]
) -> pulumi.Output[str]:
    """Imported findings from the given products that are new, active and of a routed severity."""
    pattern: dict[str, Any] = {
        "source": [FINDINGS_SOURCE],
        "detail-type": [FINDINGS_IMPORTED],
        "detail": {
            "findings": {
                "ProductArn": product_arns,
                "Severity": {"Label": list(severities)},
                "Workflow": {"Status": list(ROUTED_WORKFLOW_STATUSES)},
                "RecordState": list(ROUTED_RECORD_STATES),
            }
        },
    }
    return pulumi.Output.json_dumps(pattern)


class SecurityHubComponent(pulumi.ComponentResource):
    """Security Hub ownership, Device Defender product subscriptions, finding routing and the
    responders topic policy."""

    account: aws.securityhub.Account | None
    subscriptions: dict[str, aws.securityhub.ProductSubscription]
    finding_rule: aws.cloudwatch.EventRule | None
    responders_topic_policy: aws.sns.TopicPolicy

    def __init__(self, name: str, args: SecurityHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:securityhub:SecurityHub", name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)

        self.account = None
        if settings.manage_account:
            self.account = aws.securityhub.Account(
                f"{name}-account",
                enable_default_standards=settings.enable_default_standards,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.retain_account_on_delete),
            )

        arns = {product: product_arn(args["partition"], args["region"], product) for product in settings.products}
        self.subscriptions = {}
        if settings.subscribe_products:
            # Subscribing fails until Security Hub is on; order after the hub when this stack enables it.
            after_hub = pulumi.ResourceOptions(parent=self, depends_on=[self.account] if self.account else None)
            self.subscriptions = {
                product: aws.securityhub.ProductSubscription(f"{name}-{product}", product_arn=arn, opts=after_hub)
                for product, arn in arns.items()
            }

        self.finding_rule = None
        rule_arns: list[pulumi.Output[str]] = []
        if settings.route_findings:
            self.finding_rule = aws.cloudwatch.EventRule(
                f"{name}-findings",
                name=f"{name}-findings",
                description="fleetguard: new Device Defender findings of the routed severities -> responders",
                event_pattern=finding_event_pattern(list(arns.values()), settings.severities),
                tags=args["tags"],
                opts=child,
            )
            rule_arns.append(self.finding_rule.arn)

        self.responders_topic_policy = aws.sns.TopicPolicy(
            f"{name}-responders-topic-policy",
            arn=args["responders_topic_arn"],
            policy=policy_document(*self._publisher_statements(args, rule_arns)),
            opts=child,
        )

        if self.finding_rule is not None:
            aws.cloudwatch.EventTarget(
                f"{name}-findings-to-responders",
                rule=self.finding_rule.name,
                arn=args["responders_topic_arn"],
                input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                    input_paths=FINDING_INPUT_PATHS,
                    input_template=FINDING_MESSAGE_TEMPLATE,
                ),
                # Delivery needs the topic policy; without it the first findings would be dropped.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.responders_topic_policy]),
            )

        self.register_outputs({
            "findingRuleArn": self.finding_rule.arn if self.finding_rule else None,
            "productSubscriptions": sorted(self.subscriptions),
        })

    @staticmethod
    def _publisher_statements(args: SecurityHubArgs, rule_arns: list[pulumi.Output[str]]) -> list[dict[str, Any]]:
        """sns:Publish for AWS services acting for this account only (the confused-deputy guard)."""
        topic = args["responders_topic_arn"]
        this_account = {"aws:SourceAccount": args["account_id"]}
        alarms = arn(
            args["partition"], "cloudwatch", f"alarm:{args['alarm_name_prefix']}*",
            region=args["region"], account=args["account_id"],
        )
        statements = [
            statement(["sns:Publish"], [topic], sid="StackAlarmsPublish", condition={
                "StringEquals": this_account, "ArnLike": {"aws:SourceArn": alarms},
            }),
        ]
        statements[0]["Principal"] = {"Service": "cloudwatch.amazonaws.com"}
        if rule_arns:
            findings = statement(["sns:Publish"], [topic], sid="FindingRulePublishes", condition={
                "StringEquals": this_account, "ArnEquals": {"aws:SourceArn": rule_arns},
            })
            findings["Principal"] = {"Service": "events.amazonaws.com"}
            statements.append(findings)
        if args["incident_manager_publishes"]:
            incidents = statement(["sns:Publish"], [topic], sid="IncidentManagerNotifies", condition={
                "StringEquals": this_account,
            })
            incidents["Principal"] = {"Service": "ssm-incidents.amazonaws.com"}
            statements.append(incidents)
        if args["ops_center_publishes"]:
            ops_items = statement(["sns:Publish"], [topic], sid="OpsCenterNotifies", condition={
                "StringEquals": this_account,
            })
            ops_items["Principal"] = {"Service": "ssm.amazonaws.com"}
            statements.append(ops_items)
        return statements

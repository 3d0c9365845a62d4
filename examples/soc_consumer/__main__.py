"""A security operations team's program that consumes fleetguard's stack outputs.

It reads the fleetguard stack with ``pulumi.StackReference`` and forwards responder notifications to
the SOC's SIEM webhook. Output names are fleetguard's public contract (``stack_outputs.py`` there).
"""

import pulumi
import pulumi_aws as aws

config = pulumi.Config()
fleetguard = pulumi.StackReference(config.require("fleetguardStack"))

responders_topic_arn = fleetguard.require_output("respondersTopicArn")
alert_topic_arn = fleetguard.require_output("alertTopicArn")

aws.sns.TopicSubscription(
    "siem-responders",
    topic=responders_topic_arn,
    protocol="https",
    endpoint=config.require("siemWebhookUrl"),
    # The SIEM acknowledges the subscription itself; retries follow the topic's delivery policy.
    endpoint_auto_confirms=True,
)

pulumi.export("subscribedTopicArn", responders_topic_arn)
pulumi.export("fleetguardAlertTopicArn", alert_topic_arn)

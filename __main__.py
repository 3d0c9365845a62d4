"""fleetguard: an AWS IoT fleet's security posture and automated incident response.

Reads and validates the stack configuration once (a bad value stops here, before any resource is
registered), composes the components, and exports the outputs other teams consume.
"""

import pulumi
import pulumi_aws as aws

import stack_outputs as out
from components.alerts import AlertTopicComponent
from components.audit import AuditComponent
from components.detect import DetectComponent
from settings import load_from_pulumi

settings = load_from_pulumi()
prefix = f"fleetguard-{settings.environment}"
account_id = aws.get_caller_identity_output().account_id
region = aws.get_region_output().region
partition = aws.get_partition_output().partition

alerts = AlertTopicComponent(f"{prefix}-alerts", {
    "account_id": account_id,
    "partition": partition,
    "key_deletion_window_days": settings.alerts.key_deletion_window_days,
    "key_user_services": ["sns.amazonaws.com"],
    "tags": settings.tags,
})
pulumi.export(out.ALERT_TOPIC_ARN, alerts.topic.arn)
pulumi.export(out.ALERT_KEY_ARN, alerts.key.arn)
pulumi.export(out.RESPONDERS_TOPIC_ARN, alerts.responders_topic.arn)
pulumi.export(out.ALERT_PUBLISH_ROLE_ARN, alerts.publish_role.arn)

audit = AuditComponent(f"{prefix}-audit", {
    "settings": settings.audit,
    "account_id": account_id,
    "partition": partition,
    "notification_topic_arn": alerts.topic.arn,
    "notification_role_arn": alerts.publish_role.arn,
    "tags": settings.tags,
})
pulumi.export(out.AUDIT_ROLE_ARN, audit.role.arn)
pulumi.export(out.AUDIT_SCHEDULE_NAMES, [schedule.name for schedule in settings.audit.schedules])

pulumi.export(out.DETECT_ENABLED, settings.detect.enabled)
if settings.detect.enabled:
    detect = DetectComponent(f"{prefix}-detect", {
        "settings": settings.detect,
        "account_id": account_id,
        "region": region,
        "partition": partition,
        "alert_topic_arn": alerts.topic.arn,
        "alert_role_arn": alerts.publish_role.arn,
        "tags": settings.tags,
    })
    pulumi.export(out.RULE_PROFILE_NAME, settings.detect.rule_profile_name)
    pulumi.export(out.RULE_PROFILE_ARN, detect.rule_profile.security_profile_arn)
    if detect.ml_profile is not None:
        pulumi.export(out.ML_PROFILE_NAME, settings.detect.ml_profile_name)
        pulumi.export(out.ML_PROFILE_ARN, detect.ml_profile.security_profile_arn)

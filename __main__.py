"""fleetguard: an AWS IoT fleet's security posture and automated incident response.

Reads and validates the stack configuration once (a bad value stops here, before any resource is
registered), composes the components, and exports the outputs other teams consume.
"""

import pulumi
import pulumi_aws as aws

import stack_outputs as out
from components.alerts import AlertTopicComponent
from components.audit import AuditComponent
from components.audit_mitigation import AuditMitigationComponent
from components.contacts import ContactsComponent
from components.deployment import DeploymentArgs
from components.detect import DetectComponent
from components.detect_engine import DetectEngineComponent
from components.escalation import EscalationComponent
from components.fleet import FleetComponent
from components.function import powertools_layer_arn
from components.intake import IntakeComponent, OpsCenterWiring
from components.on_demand_audit import OnDemandAuditComponent
from components.quarantine import QuarantineComponent
from components.response import ResponseComponent
from components.security_hub import SecurityHubComponent
from components.tunnel import TunnelComponent, tunnel_secret_prefix
from settings import load_from_pulumi
from settings.audit_mitigations import MitigationActionKey
from settings.facts import IOT_LOG_GROUP

settings = load_from_pulumi()
prefix = f"fleetguard-{settings.environment}"
account_id = aws.get_caller_identity_output().account_id
region = aws.get_region_output().region
partition = aws.get_partition_output().partition
dns_suffix = aws.get_partition_output().dns_suffix
deployment: DeploymentArgs = {
    "account_id": account_id, "region": region, "partition": partition, "tags": settings.tags,
}
# Resolved once at deploy time, so no function needs iot:DescribeEndpoint (which cannot be scoped).
iot_data_endpoint = aws.iot.get_endpoint_output(endpoint_type="iot:Data-ATS").endpoint_address

alerts = AlertTopicComponent(f"{prefix}-alerts", {
    **deployment,
    "dns_suffix": dns_suffix,
    "key_deletion_window_days": settings.alerts.key_deletion_window_days,
    # events/cloudwatch: the Security Hub finding rule and fleet KPI alarms publish to the responders topic.
    "key_user_services": ["sns.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"]
    # Incident Manager publishes incident updates to the (encrypted) responders topic; OpsCenter publishes
    # OpsItem notifications to it as Systems Manager.
    + (["ssm-incidents.amazonaws.com"] if settings.incident_response.incident_manager.enabled else [])
    + (["ssm.amazonaws.com"] if settings.incident_response.ops_center.enabled else []),
    # The tables (the intake's notice ledger, the Detect engine's state) and the engine's stream use it too.
    "storage_services": ["dynamodb", "kinesis"] if settings.detect.fleetguard_engine else ["dynamodb"],
})
pulumi.export(out.ALERT_TOPIC_ARN, alerts.topic.arn)
pulumi.export(out.ALERT_KEY_ARN, alerts.key.arn)
pulumi.export(out.RESPONDERS_TOPIC_ARN, alerts.responders_topic.arn)
pulumi.export(out.ALERT_PUBLISH_ROLE_ARN, alerts.publish_role.arn)

audit = AuditComponent(f"{prefix}-audit", {
    **deployment,
    "settings": settings.audit,
    "notification_topic_arn": alerts.topic.arn,
    "notification_role_arn": alerts.publish_role.arn,
})
if audit.role is not None:
    pulumi.export(out.AUDIT_ROLE_ARN, audit.role.arn)
pulumi.export(out.AUDIT_SCHEDULE_NAMES, [schedule.name for schedule in settings.audit.schedules])
on_demand_audit = OnDemandAuditComponent(f"{prefix}-on-demand-audit", {
    **deployment,
    "default_checks": settings.audit.on_demand_checks,
    "allowed_checks": settings.audit.enabled_checks,
})
pulumi.export(out.ON_DEMAND_AUDIT_DOCUMENT_NAME, on_demand_audit.document.name)
pulumi.export(out.ON_DEMAND_AUDIT_ROLE_ARN, on_demand_audit.role.arn)

pulumi.export(out.DETECT_ENABLED, settings.detect.enabled)
if settings.detect.device_defender:
    detect = DetectComponent(f"{prefix}-detect", {
        **deployment,
        "settings": settings.detect,
        "alert_topic_arn": alerts.topic.arn,
        "alert_role_arn": alerts.publish_role.arn,
    })
    pulumi.export(out.RULE_PROFILE_NAME, settings.detect.rule_profile_name)
    pulumi.export(out.RULE_PROFILE_ARN, detect.rule_profile.security_profile_arn)
    if detect.ml_profile is not None:
        pulumi.export(out.ML_PROFILE_NAME, settings.detect.ml_profile_name)
        pulumi.export(out.ML_PROFILE_ARN, detect.ml_profile.security_profile_arn)

security_hub = SecurityHubComponent(f"{prefix}-security-hub", {
    **deployment,
    "settings": settings.security_hub,
    "responders_topic_arn": alerts.responders_topic.arn,
    "alarm_name_prefix": f"{prefix}-",
    "incident_manager_publishes": settings.incident_response.incident_manager.enabled,
    "ops_center_publishes": settings.incident_response.ops_center.enabled,
})
if security_hub.finding_rule is not None:
    pulumi.export(out.SECURITY_HUB_FINDING_RULE_ARN, security_hub.finding_rule.arn)

fleet = FleetComponent(f"{prefix}-fleet", {
    **deployment,
    "settings": settings.fleet,
    "dns_suffix": dns_suffix,
    "alarm_topic_arn": alerts.responders_topic.arn,
})
pulumi.export(out.FLEET_DYNAMIC_GROUP_NAMES, fleet.dynamic_group_names)
pulumi.export(out.FLEET_METRIC_NAMES, fleet.fleet_metric_names)
if fleet.recovery_template_arn is not None:
    pulumi.export(out.RECOVERY_JOB_TEMPLATE_ARN, fleet.recovery_template_arn)
if fleet.continuous_job is not None:
    pulumi.export(out.CONTINUOUS_PATCH_JOB_ID, fleet.continuous_job.job_id)
    pulumi.export(out.CONTINUOUS_PATCH_JOB_ARN, fleet.continuous_job.job_arn)

ops_center = settings.incident_response.ops_center
layer_arn = powertools_layer_arn(partition, region, settings.quarantine.powertools_layer_version)
incident_response_plan_name = (
    settings.incident_response.incident_manager.response_plan_name
    if settings.incident_response.incident_manager.enabled else None
)
# The stack's prefix names it: the tag its OpsItems carry.
ops_item_stack_tag = prefix if ops_center.enabled else None
quarantine = QuarantineComponent(f"{prefix}-quarantine", {
    **deployment,
    "settings": settings.quarantine,
    "iot_data_endpoint": iot_data_endpoint,
    "incident_response_plan_name": incident_response_plan_name,
    "ops_item_stack_tag": ops_item_stack_tag,
    "tunnel_secret_prefix": tunnel_secret_prefix(prefix) if settings.quarantine.tunnel.enabled else None,
})
pulumi.export(out.QUARANTINE_GROUP_NAME, quarantine.group.name)
pulumi.export(out.QUARANTINE_GROUP_ARN, quarantine.group.arn)
pulumi.export(out.QUARANTINE_POLICY_NAME, quarantine.policy.name)
pulumi.export(out.ADD_TO_QUARANTINE_ACTION_NAME, quarantine.add_to_quarantine_action.action_name)
pulumi.export(out.ADD_TO_QUARANTINE_ACTION_ARN, quarantine.add_to_quarantine_action.mitigation_action_arn)
pulumi.export(out.DEACTIVATE_CERTIFICATE_ACTION_NAME, quarantine.deactivate_certificate_action.action_name)
pulumi.export(out.DEACTIVATE_CERTIFICATE_ACTION_ARN, quarantine.deactivate_certificate_action.mitigation_action_arn)
pulumi.export(out.ENABLE_LOGGING_ACTION_NAME, quarantine.enable_logging_action.action_name)
pulumi.export(out.ENABLE_LOGGING_ACTION_ARN, quarantine.enable_logging_action.mitigation_action_arn)
pulumi.export(out.CONTAIN_FUNCTION_NAME, quarantine.contain_function.function.name)
pulumi.export(out.CONTAIN_FUNCTION_ARN, quarantine.contain_function.function.arn)
pulumi.export(out.RELEASE_FUNCTION_NAME, quarantine.release_function.function.name)
pulumi.export(out.RELEASE_FUNCTION_ARN, quarantine.release_function.function.arn)
tunnel = None
if settings.quarantine.tunnel.enabled:
    tunnel = TunnelComponent(f"{prefix}-tunnel", {
        **deployment,
        "settings": settings.quarantine,
        "secret_prefix": tunnel_secret_prefix(prefix),
        "quarantine_group_name": quarantine.group.name,
        "quarantine_group_arn": quarantine.group.arn,
        "release_role_arn": quarantine.release_function.role.arn,
        "key_arn": alerts.key.arn,
        "layer_arn": layer_arn,
        "incident_response_plan_name": incident_response_plan_name,
        "ops_item_stack_tag": ops_item_stack_tag,
    })
    pulumi.export(out.TUNNEL_FUNCTION_ARN, tunnel.function.function.arn)
    pulumi.export(out.TUNNEL_SECRET_PREFIX, tunnel.secret_prefix)
    pulumi.export(out.TUNNEL_APPROVAL_TOPIC_ARN, tunnel.approval_topic.arn)

audit_mitigation = AuditMitigationComponent(f"{prefix}-audit-mitigation", {
    **deployment,
    "mitigations": settings.audit.mitigations,
    "quarantine_actions": {
        MitigationActionKey.ADD_TO_QUARANTINE: quarantine.add_to_quarantine_action,
        MitigationActionKey.DEACTIVATE_DEVICE_CERTIFICATE: quarantine.deactivate_certificate_action,
        MitigationActionKey.ENABLE_LOGGING: quarantine.enable_logging_action,
    },
    "responders_topic_arn": alerts.responders_topic.arn,
    "key_arn": alerts.key.arn,
})
pulumi.export(out.AUDIT_MITIGATION_ACTION_ARNS, pulumi.Output.all(*[
    pulumi.Output.all(action.action_name, action.mitigation_action_arn) for action in audit_mitigation.own_actions
]).apply(dict))
if audit_mitigation.document is not None:
    pulumi.export(out.AUDIT_MITIGATION_DOCUMENT_NAME, audit_mitigation.document.name)

if settings.detect.fleetguard_engine:
    engine = DetectEngineComponent(f"{prefix}-detect-engine", {
        **deployment,
        "settings": settings.detect,
        "key_arn": alerts.key.arn,
        "alert_topic_arn": alerts.topic.arn,
        "iot_log_group_name": IOT_LOG_GROUP,
        "iot_log_group": quarantine.iot_log_group,
        "layer_arn": powertools_layer_arn(partition, region, settings.quarantine.powertools_layer_version),
    })
    pulumi.export(out.ENGINE_PROFILE_NAME, settings.detect.engine.profile_name)
    pulumi.export(out.ENGINE_STREAM_ARN, engine.stream.arn)
    pulumi.export(out.ENGINE_REPORT_TOPIC, engine.report_topic_template)
    pulumi.export(out.ENGINE_STATE_TABLE_NAME, engine.state_table.name)
    pulumi.export(out.ENGINE_DEVICE_POLICY_NAME, engine.device_policy.name)
    pulumi.export(out.ENGINE_DEAD_LETTER_QUEUE_ARNS, [engine.rule_errors_queue.arn, engine.dead_letter_queue.arn])

incident_manager = settings.incident_response.incident_manager
pulumi.export(out.INCIDENT_MANAGER_ENABLED, incident_manager.enabled)
contacts = None
if incident_manager.enabled:
    contacts = ContactsComponent(f"{prefix}-contacts", {"settings": incident_manager, "tags": settings.tags})
    pulumi.export(out.CONTACT_ARNS, {alias: contact.arn for alias, contact in contacts.contacts.items()})
    if contacts.escalation_plan is not None:
        pulumi.export(out.ESCALATION_PLAN_ARN, contacts.escalation_plan.arn)

response = ResponseComponent(f"{prefix}-response", {
    **deployment,
    "settings": settings.incident_response,
    "engagement_arns": contacts.engagement_arns if contacts else [],
    "contain_function_arn": quarantine.contain_function.function.arn,
    "release_function_name": quarantine.release_function.function.name,
    "containment_log_groups": [
        quarantine.contain_function.log_group.name, quarantine.release_function.log_group.name,
    ],
    "quarantine_group_name": quarantine.group_name,
    "responders_topic_arn": alerts.responders_topic.arn,
    "tunnel": tunnel.wiring if tunnel else None,
    "on_demand_audit_document_name": on_demand_audit.document_name,
    "audit_mitigation_document_name": audit_mitigation.document_name,
})
if response.runbook is not None:
    pulumi.export(out.RUNBOOK_NAME, response.runbook.name)
if response.response_plan is not None:
    pulumi.export(out.RESPONSE_PLAN_ARN, response.response_plan.arn)

pulumi.export(out.OPS_CENTER_ENABLED, ops_center.enabled)
ops_center_wiring: OpsCenterWiring | None = None
escalation_query_names: list[str] = []
if ops_center.enabled and response.runbook is not None and response.runbook_role is not None:
    escalation = EscalationComponent(f"{prefix}-escalation", {
        **deployment,
        "settings": ops_center,
        "stack_tag": prefix,
        "key_arn": alerts.key.arn,
        "responders_topic_arn": alerts.responders_topic.arn,
        "layer_arn": layer_arn,
        "log_level": settings.incident_response.intake.log_level,
        "log_retention_days": settings.incident_response.log_retention_days,
    })
    ops_center_wiring = {
        "runbook_name": response.runbook.name,
        "runbook_role_arn": response.runbook_role.arn,
        "schedule_group_name": escalation.schedule_group.name,
        "escalation_function_arn": escalation.function.function.arn,
        "scheduler_role_arn": escalation.scheduler_role.arn,
        "escalation_stages": escalation.stages_json,
        "stack_tag": prefix,
    }
    pulumi.export(out.ESCALATION_SCHEDULE_GROUP_NAME, escalation.schedule_group.name)
    stage_names = [stage.name for stage in ops_center.escalation]
    pulumi.export(out.ESCALATION_STAGE_TOPIC_ARNS, dict(zip(stage_names, escalation.stage_topic_arns, strict=True)))
    pulumi.export(out.ESCALATION_FUNCTION_ARN, escalation.function.function.arn)
    escalation_query_names.append(escalation.query_name)

intake = IntakeComponent(f"{prefix}-intake", {
    **deployment,
    "settings": settings.incident_response,
    "iot_data_endpoint": iot_data_endpoint,
    "alert_topic_arn": alerts.topic.arn,
    "key_arn": alerts.key.arn,
    "responders_topic_arn": alerts.responders_topic.arn,
    "response_plan_arn": response.response_plan.arn if response.response_plan else None,
    "response_plan_name": incident_manager.response_plan_name,
    "quarantine_group_name": quarantine.group.name,
    "quarantine_group_arn": quarantine.group.arn,
    "add_to_quarantine_action_name": quarantine.add_to_quarantine_action.action_name,
    "add_to_quarantine_action_arn": quarantine.add_to_quarantine_action.mitigation_action_arn,
    "security_profile_names": settings.detect.profile_names,
    "engine_profile_names": settings.detect.engine_profile_names,
    "iot_log_group_name": IOT_LOG_GROUP,
    "layer_arn": layer_arn,
    "ops_center": ops_center_wiring,
    "audit_mitigation": {
        "mitigations": audit_mitigation.mitigations_json,
        "document_name": audit_mitigation.document.name if audit_mitigation.document is not None else None,
        "automatic": audit_mitigation.automatic,
    } if settings.audit.mitigations else None,
})
pulumi.export(out.INTAKE_QUEUE_URL, intake.queue.url)
pulumi.export(out.INTAKE_QUEUE_ARN, intake.queue.arn)
pulumi.export(out.INTAKE_DEAD_LETTER_QUEUE_ARN, intake.dead_letter_queue.arn)
pulumi.export(out.INTAKE_FUNCTION_ARN, intake.function.function.arn)
pulumi.export(out.QUERY_DEFINITION_NAMES, [*response.query_names, intake.query_name, *escalation_query_names])

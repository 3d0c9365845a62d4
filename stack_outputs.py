"""Every stack output name, in one place: other teams read these with StackReference, so they are a
contract. Renaming one, changing its shape or when it is present is a breaking change; tests pin the
contract against the dev and prod stacks, and README.md's outputs table is generated from ``CONTRACT``."""

from dataclasses import dataclass
from typing import Final, Literal

ALERT_TOPIC_ARN: Final = "alertTopicArn"
ALERT_KEY_ARN: Final = "alertKeyArn"
RESPONDERS_TOPIC_ARN: Final = "respondersTopicArn"
ALERT_PUBLISH_ROLE_ARN: Final = "alertPublishRoleArn"
AUDIT_ROLE_ARN: Final = "auditRoleArn"
AUDIT_SCHEDULE_NAMES: Final = "auditScheduleNames"
DETECT_ENABLED: Final = "detectEnabled"
RULE_PROFILE_NAME: Final = "ruleSecurityProfileName"
RULE_PROFILE_ARN: Final = "ruleSecurityProfileArn"
ML_PROFILE_NAME: Final = "mlSecurityProfileName"
ML_PROFILE_ARN: Final = "mlSecurityProfileArn"
SECURITY_HUB_FINDING_RULE_ARN: Final = "securityHubFindingRuleArn"
FLEET_DYNAMIC_GROUP_NAMES: Final = "fleetDynamicGroupNames"
FLEET_METRIC_NAMES: Final = "fleetMetricNames"
RECOVERY_JOB_TEMPLATE_ARN: Final = "recoveryJobTemplateArn"
QUARANTINE_GROUP_NAME: Final = "quarantineGroupName"
QUARANTINE_GROUP_ARN: Final = "quarantineGroupArn"
QUARANTINE_POLICY_NAME: Final = "quarantinePolicyName"
ADD_TO_QUARANTINE_ACTION_NAME: Final = "addToQuarantineActionName"
ADD_TO_QUARANTINE_ACTION_ARN: Final = "addToQuarantineActionArn"
DEACTIVATE_CERTIFICATE_ACTION_NAME: Final = "deactivateCertificateActionName"
DEACTIVATE_CERTIFICATE_ACTION_ARN: Final = "deactivateCertificateActionArn"
ENABLE_LOGGING_ACTION_NAME: Final = "enableLoggingActionName"
ENABLE_LOGGING_ACTION_ARN: Final = "enableLoggingActionArn"
CONTAIN_FUNCTION_NAME: Final = "containFunctionName"
CONTAIN_FUNCTION_ARN: Final = "containFunctionArn"
RELEASE_FUNCTION_NAME: Final = "releaseFunctionName"
RELEASE_FUNCTION_ARN: Final = "releaseFunctionArn"
INCIDENT_MANAGER_ENABLED: Final = "incidentManagerEnabled"
INTAKE_QUEUE_URL: Final = "intakeQueueUrl"
INTAKE_QUEUE_ARN: Final = "intakeQueueArn"
INTAKE_DEAD_LETTER_QUEUE_ARN: Final = "intakeDeadLetterQueueArn"
INTAKE_FUNCTION_ARN: Final = "intakeFunctionArn"
RUNBOOK_NAME: Final = "runbookName"
RESPONSE_PLAN_ARN: Final = "responsePlanArn"
OPS_CENTER_ENABLED: Final = "opsCenterEnabled"
ESCALATION_SCHEDULE_GROUP_NAME: Final = "escalationScheduleGroupName"
ESCALATION_STAGE_TOPIC_ARNS: Final = "escalationStageTopicArns"
ESCALATION_FUNCTION_ARN: Final = "escalationFunctionArn"
ESCALATION_PLAN_ARN: Final = "escalationPlanArn"
CONTACT_ARNS: Final = "contactArns"
QUERY_DEFINITION_NAMES: Final = "queryDefinitionNames"
ENGINE_PROFILE_NAME: Final = "detectEngineProfileName"
ENGINE_STREAM_ARN: Final = "detectEngineStreamArn"
ENGINE_REPORT_TOPIC: Final = "detectEngineReportTopic"
ENGINE_STATE_TABLE_NAME: Final = "detectEngineStateTableName"
ENGINE_DEVICE_POLICY_NAME: Final = "detectEngineDevicePolicyName"
ENGINE_DEAD_LETTER_QUEUE_ARNS: Final = "detectEngineDeadLetterQueueArns"
ON_DEMAND_AUDIT_DOCUMENT_NAME: Final = "onDemandAuditDocumentName"
ON_DEMAND_AUDIT_ROLE_ARN: Final = "onDemandAuditRoleArn"
CONTINUOUS_PATCH_JOB_ID: Final = "continuousPatchJobId"
CONTINUOUS_PATCH_JOB_ARN: Final = "continuousPatchJobArn"
TUNNEL_FUNCTION_ARN: Final = "tunnelFunctionArn"
TUNNEL_SECRET_PREFIX: Final = "tunnelSecretPrefix"
TUNNEL_APPROVAL_TOPIC_ARN: Final = "tunnelApprovalTopicArn"
AUDIT_MITIGATION_ACTION_ARNS: Final = "auditMitigationActionArns"
AUDIT_MITIGATION_DOCUMENT_NAME: Final = "auditMitigationDocumentName"

Shape = Literal["string", "boolean", "list of strings", "map of strings"]

ALWAYS: Final = "always"
WITH_DETECT: Final = "`detect.enabled` with `deviceDefender` in `detect.engine`"
WITH_ML: Final = f"{WITH_DETECT} and `detect.ml.enabled`"
WITH_ENGINE: Final = "`detect.enabled` with `fleetguard` in `detect.engine`"
WITH_INCIDENT_MANAGER: Final = "`incidentResponse.incidentManager.enabled`"
WITH_OPS_CENTER: Final = "`incidentResponse.opsCenter.enabled` (the default without Incident Manager)"
WITH_CONTINUOUS_PATCHING: Final = "`fleet.recovery.continuous`"
WITH_TUNNEL: Final = "`quarantine.tunnel.enabled`"


@dataclass(frozen=True)
class OutputSpec:
    """What one output holds and when the stack exports it."""

    shape: Shape
    present: str
    """``ALWAYS``, or the configuration that must hold for the output to exist."""
    description: str


CONTRACT: Final[dict[str, OutputSpec]] = {
    ALERT_TOPIC_ARN: OutputSpec("string", ALWAYS, "SNS topic Device Defender publishes alerts and audit results to"),
    ALERT_KEY_ARN: OutputSpec("string", ALWAYS, "customer-managed KMS key encrypting the alert and responders "
                                                "topics and the intake queues (grant kms:Decrypt to subscribers)"),
    RESPONDERS_TOPIC_ARN: OutputSpec("string", ALWAYS, "SNS topic of human-readable notifications for responders "
                                                       "(subscribe a pager, chat or SIEM)"),
    ALERT_PUBLISH_ROLE_ARN: OutputSpec("string", ALWAYS, "role Device Defender assumes to publish to the alert topic"),
    AUDIT_ROLE_ARN: OutputSpec("string", "`audit.manageAccountConfiguration`",
                               "role Device Defender Audit assumes to read the IoT configuration"),
    AUDIT_SCHEDULE_NAMES: OutputSpec("list of strings", ALWAYS, "scheduled audit names"),
    DETECT_ENABLED: OutputSpec("boolean", ALWAYS, "whether this stack runs Detect (Device Defender security "
                                                  "profiles, the fleetguard engine, or both)"),
    RULE_PROFILE_NAME: OutputSpec("string", WITH_DETECT, "rule-based security profile name"),
    RULE_PROFILE_ARN: OutputSpec("string", WITH_DETECT, "rule-based security profile ARN"),
    ML_PROFILE_NAME: OutputSpec("string", WITH_ML, "ML Detect security profile name"),
    ML_PROFILE_ARN: OutputSpec("string", WITH_ML, "ML Detect security profile ARN"),
    SECURITY_HUB_FINDING_RULE_ARN: OutputSpec("string", "`securityHub.routeFindings`",
                                              "EventBridge rule routing new Device Defender findings to responders"),
    FLEET_DYNAMIC_GROUP_NAMES: OutputSpec("map of strings", ALWAYS,
                                          "dynamic thing group name by purpose (inViolation, disconnected, "
                                          "watchedFirmware); empty when none is configured"),
    FLEET_METRIC_NAMES: OutputSpec("map of strings", ALWAYS, "fleet metric name by KPI (also its CloudWatch metric "
                                                             "name in the AWS/IoT namespace)"),
    RECOVERY_JOB_TEMPLATE_ARN: OutputSpec("string", "`fleet.recovery.enabled`",
                                          "job template for the staged firmware recovery rollout"),
    QUARANTINE_GROUP_NAME: OutputSpec("string", ALWAYS, "static thing group that holds quarantined devices"),
    QUARANTINE_GROUP_ARN: OutputSpec("string", ALWAYS, "ARN of the quarantine thing group"),
    QUARANTINE_POLICY_NAME: OutputSpec("string", ALWAYS, "restrictive IoT policy attached to the quarantine group"),
    ADD_TO_QUARANTINE_ACTION_NAME: OutputSpec("string", ALWAYS,
                                              "mitigation action adding things to the quarantine group"),
    ADD_TO_QUARANTINE_ACTION_ARN: OutputSpec("string", ALWAYS, "ARN of that mitigation action"),
    DEACTIVATE_CERTIFICATE_ACTION_NAME: OutputSpec("string", ALWAYS,
                                                   "mitigation action deactivating a device certificate "
                                                   "(audit findings)"),
    DEACTIVATE_CERTIFICATE_ACTION_ARN: OutputSpec("string", ALWAYS, "ARN of that mitigation action"),
    ENABLE_LOGGING_ACTION_NAME: OutputSpec("string", ALWAYS,
                                           "mitigation action enabling IoT logging (LOGGING_DISABLED_CHECK)"),
    ENABLE_LOGGING_ACTION_ARN: OutputSpec("string", ALWAYS, "ARN of that mitigation action"),
    CONTAIN_FUNCTION_NAME: OutputSpec("string", ALWAYS, "Lambda function that quarantines one device"),
    CONTAIN_FUNCTION_ARN: OutputSpec("string", ALWAYS, "ARN of the contain function"),
    RELEASE_FUNCTION_NAME: OutputSpec("string", ALWAYS, "Lambda function that releases one device"),
    RELEASE_FUNCTION_ARN: OutputSpec("string", ALWAYS, "ARN of the release function"),
    INCIDENT_MANAGER_ENABLED: OutputSpec("boolean", ALWAYS, "whether alerts open Incident Manager incidents "
                                                            "(otherwise the intake contains and notifies)"),
    INTAKE_QUEUE_URL: OutputSpec("string", ALWAYS, "SQS queue between the alert topic and the intake function"),
    INTAKE_QUEUE_ARN: OutputSpec("string", ALWAYS, "ARN of the intake queue"),
    INTAKE_DEAD_LETTER_QUEUE_ARN: OutputSpec("string", ALWAYS, "where alerts rest after their retries "
                                                               "(alarm on its depth)"),
    INTAKE_FUNCTION_ARN: OutputSpec("string", ALWAYS, "ARN of the intake function"),
    RUNBOOK_NAME: OutputSpec("string", f"{WITH_INCIDENT_MANAGER} or {WITH_OPS_CENTER}",
                             "SSM Automation runbook the response plan (or, with OpsCenter, the intake) starts per "
                             "incident"),
    RESPONSE_PLAN_ARN: OutputSpec("string", WITH_INCIDENT_MANAGER, "Incident Manager response plan ARN"),
    ESCALATION_PLAN_ARN: OutputSpec("string", f"{WITH_INCIDENT_MANAGER} with an `escalation`",
                                    "escalation plan the response plan engages"),
    CONTACT_ARNS: OutputSpec("map of strings", WITH_INCIDENT_MANAGER, "SSM Contacts contact ARN by alias"),
    OPS_CENTER_ENABLED: OutputSpec("boolean", ALWAYS, "whether alerts open OpsCenter OpsItems, start the runbook "
                                                      "and schedule escalation (Incident Manager off)"),
    ESCALATION_SCHEDULE_GROUP_NAME: OutputSpec("string", WITH_OPS_CENTER,
                                               "EventBridge Scheduler group holding each open OpsItem's pending "
                                               "escalation stages (`<OpsItem id>-<stage>`)"),
    ESCALATION_STAGE_TOPIC_ARNS: OutputSpec("map of strings", WITH_OPS_CENTER,
                                            "SNS topic ARN each escalation stage notifies, by stage name "
                                            "(subscribe more responders)"),
    ESCALATION_FUNCTION_ARN: OutputSpec("string", WITH_OPS_CENTER,
                                        "Lambda function that notifies a stage or cancels the rest once the "
                                        "OpsItem is acknowledged"),
    QUERY_DEFINITION_NAMES: OutputSpec("list of strings", ALWAYS, "saved CloudWatch Logs Insights queries "
                                                                  "for forensics"),
    ENGINE_PROFILE_NAME: OutputSpec("string", WITH_ENGINE, "securityProfileName of the fleetguard Detect engine's "
                                                           "violations"),
    ENGINE_STREAM_ARN: OutputSpec("string", WITH_ENGINE, "Kinesis data stream the engine's sources write to"),
    ENGINE_REPORT_TOPIC: OutputSpec("string", WITH_ENGINE, "Basic Ingest topic devices publish metrics reports "
                                                           "to, with <thingName> to replace"),
    ENGINE_STATE_TABLE_NAME: OutputSpec("string", WITH_ENGINE, "DynamoDB table of each device's behavior state"),
    ENGINE_DEVICE_POLICY_NAME: OutputSpec("string", WITH_ENGINE, "IoT policy letting a device publish its own "
                                                                 "metrics reports (attach beside its own policy)"),
    ENGINE_DEAD_LETTER_QUEUE_ARNS: OutputSpec("list of strings", WITH_ENGINE,
                                              "queues keeping the engine's failures: topic rule errors; "
                                              "unreadable records and failed batches (alarm on their depth)"),
    ON_DEMAND_AUDIT_DOCUMENT_NAME: OutputSpec("string", ALWAYS,
                                              "SSM Automation document that runs an on-demand audit (default: the "
                                              "enabled critical checks) and summarises its findings by check"),
    ON_DEMAND_AUDIT_ROLE_ARN: OutputSpec("string", ALWAYS,
                                         "role that document runs as (its AutomationAssumeRole default; starting "
                                         "it needs iam:PassRole on it)"),
    CONTINUOUS_PATCH_JOB_ID: OutputSpec("string", WITH_CONTINUOUS_PATCHING,
                                        "continuous IoT job sending the recovery firmware to every device that "
                                        "joins the watched-firmware dynamic group"),
    CONTINUOUS_PATCH_JOB_ARN: OutputSpec("string", WITH_CONTINUOUS_PATCHING, "ARN of that job"),
    TUNNEL_FUNCTION_ARN: OutputSpec("string", WITH_TUNNEL, "Lambda function the runbook's OnlineForensics step "
                                                           "invokes to open SSH secure tunnels"),
    TUNNEL_SECRET_PREFIX: OutputSpec("string", WITH_TUNNEL, "name prefix of the secrets holding tunnels' source "
                                                            "access tokens (`<prefix><tunnel id>`)"),
    TUNNEL_APPROVAL_TOPIC_ARN: OutputSpec("string", WITH_TUNNEL, "SNS topic announcing tunnel approval requests "
                                                                 "(subscribe the approvers)"),
    AUDIT_MITIGATION_ACTION_ARNS: OutputSpec("map of strings", ALWAYS,
                                             "ARN by name of the audit-only mitigation actions (deactivate CA "
                                             "certificate, blank default policy version, publish finding)"),
    AUDIT_MITIGATION_DOCUMENT_NAME: OutputSpec("string", "`audit.mitigations` with a check whose `approval` is "
                                                         "`required`",
                                               "SSM Automation document a responder runs (AuditTaskId, CheckName) "
                                               "to approve a check's mitigation"),
}

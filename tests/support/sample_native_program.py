"""A Pulumi program registering one valid example of each aws-native resource fleetguard uses.

The schema tests run it under mocks (as ``__main__.py`` of a scratch project) so their inputs are
exactly what the pulumi-aws-native SDK sends, spelling included, rather than hand-written guesses.
"""

import pulumi
import pulumi_aws_native as native

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fleetguard-defender"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:fleetguard-alerts"

native.iot.SecurityProfile(
    "rules",
    security_profile_name="fleetguard-rules",
    security_profile_description="Listening ports and message volume",
    alert_targets={"SNS": native.iot.SecurityProfileAlertTargetArgs(alert_target_arn=TOPIC_ARN, role_arn=ROLE_ARN)},
    behaviors=[
        native.iot.SecurityProfileBehaviorArgs(
            name="ListeningTcpPorts",
            metric="aws:listening-tcp-ports",
            criteria=native.iot.SecurityProfileBehaviorCriteriaArgs(
                comparison_operator=native.iot.SecurityProfileBehaviorCriteriaComparisonOperator.IN_PORT_SET,
                value=native.iot.SecurityProfileMetricValueArgs(ports=[22, 443]),
                duration_seconds=300,
                consecutive_datapoints_to_alarm=2,
                consecutive_datapoints_to_clear=2,
            ),
        ),
        native.iot.SecurityProfileBehaviorArgs(
            name="MessagesSent",
            metric="aws:num-messages-sent",
            criteria=native.iot.SecurityProfileBehaviorCriteriaArgs(
                comparison_operator=native.iot.SecurityProfileBehaviorCriteriaComparisonOperator.GREATER_THAN,
                statistical_threshold=native.iot.SecurityProfileStatisticalThresholdArgs(
                    statistic=native.iot.SecurityProfileStatisticalThresholdStatistic.P90
                ),
                duration_seconds=900,
            ),
        ),
    ],
    tags=[native.TagArgs(key="owner", value=pulumi.Output.secret("security-team"))],
)

native.iot.SecurityProfile(
    "ml",
    security_profile_name="fleetguard-ml",
    behaviors=[
        native.iot.SecurityProfileBehaviorArgs(
            name="BytesOut",
            metric="aws:all-bytes-out",
            criteria=native.iot.SecurityProfileBehaviorCriteriaArgs(
                ml_detection_config=native.iot.SecurityProfileMachineLearningDetectionConfigArgs(
                    confidence_level=native.iot.SecurityProfileMachineLearningDetectionConfigConfidenceLevel.HIGH
                )
            ),
        )
    ],
)

native.iot.AccountAuditConfiguration(
    "audit",
    account_id=ACCOUNT,
    role_arn=ROLE_ARN,
    audit_check_configurations=native.iot.AccountAuditConfigurationAuditCheckConfigurationsArgs(
        io_t_policy_potential_mis_configuration_check=native.iot.AccountAuditConfigurationAuditCheckConfigurationArgs(
            enabled=True
        ),
        iot_policy_overly_permissive_check=native.iot.AccountAuditConfigurationAuditCheckConfigurationArgs(
            enabled=True
        ),
        device_certificate_expiring_check=native.iot.AccountAuditConfigurationDeviceCertExpirationAuditCheckConfigurationArgs(
            enabled=True,
            configuration=native.iot.AccountAuditConfigurationCertExpirationCheckCustomConfigurationArgs(
                cert_expiration_threshold_in_days="30"
            ),
        ),
    ),
    audit_notification_target_configurations=native.iot.AccountAuditConfigurationAuditNotificationTargetConfigurationsArgs(
        sns=native.iot.AccountAuditConfigurationAuditNotificationTargetArgs(
            enabled=True, role_arn=ROLE_ARN, target_arn=TOPIC_ARN
        )
    ),
)

native.iot.ScheduledAudit(
    "weekly",
    scheduled_audit_name="fleetguard-weekly",
    frequency=native.iot.ScheduledAuditFrequency.WEEKLY,
    day_of_week=native.iot.ScheduledAuditDayOfWeek.MON,
    target_check_names=["IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "DEVICE_CERTIFICATE_EXPIRING_CHECK"],
)

native.iot.MitigationAction(
    "quarantine",
    action_name="fleetguard-quarantine",
    role_arn=ROLE_ARN,
    action_params=native.iot.MitigationActionActionParamsArgs(
        add_things_to_thing_group_params=native.iot.MitigationActionAddThingsToThingGroupParamsArgs(
            thing_group_names=["QUARANTINED"], override_dynamic_groups=True
        )
    ),
)

native.iot.ResourceSpecificLogging(
    "quarantine-logging",
    target_type=native.iot.ResourceSpecificLoggingTargetType.THING_GROUP,
    target_name="QUARANTINED",
    log_level=native.iot.ResourceSpecificLoggingLogLevel.DEBUG,
)

native.ssmcontacts.Contact(
    "oncall",
    alias="fleetguard-oncall",
    display_name="Fleet security on call",
    type=native.ssmcontacts.ContactType.PERSONAL,
)

native.ssmincidents.ResponsePlan(
    "device-compromise",
    name="fleetguard-device-compromise",
    incident_template=native.ssmincidents.ResponsePlanIncidentTemplateArgs(
        title="Device behaving anomalously", impact=2, dedupe_string="fleetguard-device"
    ),
    engagements=[f"arn:aws:ssm-contacts:us-east-1:{ACCOUNT}:contact/fleetguard-oncall"],
    actions=[
        native.ssmincidents.ResponsePlanActionArgs(
            ssm_automation=native.ssmincidents.ResponsePlanSsmAutomationArgs(
                document_name="fleetguard-contain",
                role_arn=ROLE_ARN,
                parameters=[native.ssmincidents.ResponsePlanSsmParameterArgs(key="Mode", values=["contain"])],
                dynamic_parameters=[
                    native.ssmincidents.ResponsePlanDynamicSsmParameterArgs(
                        key="IncidentRecordArn",
                        value=native.ssmincidents.ResponsePlanDynamicSsmParameterValueArgs(
                            variable=native.ssmincidents.ResponsePlanVariableType.INCIDENT_RECORD_ARN
                        ),
                    )
                ],
            )
        )
    ],
)

native.securityhub.Hub("hub", enable_default_standards=False, tags={"team": "fleet-security"})

"""A device team's IoT stack, the kind the organisation's policy pack is attached to.

Devices connect with X.509 certificates on the account's endpoint or with a signed token on the team's
own domain (a custom authorizer); they publish telemetry, which a topic rule forwards to an encrypted
Kinesis stream, and run jobs. New devices register themselves by fleet provisioning through a claim
certificate, vetted by a pre-provisioning hook; on the device, the credentials provider exchanges the
certificate for short-lived AWS credentials through a role alias to upload logs. Job template rollouts
abort when too many devices fail, and account-wide IoT logging is on.

Every device permission is bound to the connecting thing through ``${iot:Connection.Thing.ThingName}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

config = pulumi.Config()
stack = pulumi.get_stack()
prefix = f"device-fleet-{stack}"
tags = {"Project": "device-fleet", "Environment": stack, "Owner": config.require("owner")}
log_retention_days = config.require_int("logRetentionDays")
lambda_sources = Path(__file__).resolve().parent / "lambdas"

account = aws.get_caller_identity_output().account_id
region = aws.get_region_output().region
# Devices substitute their own thing name here when AWS IoT evaluates the policy.
THING = "${iot:Connection.Thing.ThingName}"


def iot_arn(resource: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:aws:iot:", region, ":", account, ":", resource)


def policy_document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def trusted_by(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
    }]})


def service_role(name: str, service: str, *statements: dict[str, Any]) -> aws.iam.Role:
    """A role the service assumes, with its one inline policy."""
    role = aws.iam.Role(name, name=f"{prefix}-{name}", assume_role_policy=trusted_by(service), tags=tags)
    aws.iam.RolePolicy(name, role=role.id, policy=policy_document(*statements))
    return role


def function(name: str, source: str) -> aws.lambda_.Function:
    """A small Lambda function, its log group and an execution role that can write to that group only."""
    function_name = f"{prefix}-{name}"
    logs = aws.cloudwatch.LogGroup(
        name, name=f"/aws/lambda/{function_name}", retention_in_days=log_retention_days, tags=tags)
    role = service_role(
        f"{name}-exec", "lambda.amazonaws.com",
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [pulumi.Output.concat(logs.arn, ":*")]),
    )
    return aws.lambda_.Function(
        name, name=function_name, role=role.arn, runtime="python3.12", handler=f"{source}.handler",
        code=pulumi.AssetArchive({f"{source}.py": pulumi.FileAsset(str(lambda_sources / f"{source}.py"))}),
        timeout=5, memory_size=128, tags=tags, opts=pulumi.ResourceOptions(depends_on=[logs]),
    )


# -- Device policies: one for telemetry and commands, one for jobs ---------------------------------------

connect_as_thing = allow(["iot:Connect"], [iot_arn(f"client/{THING}")])
telemetry_policy = aws.iot.Policy("telemetry", name=f"{prefix}-telemetry", tags=tags, policy=policy_document(
    connect_as_thing,
    allow(["iot:Publish"], [iot_arn(f"topic/fleet/{THING}/telemetry")]),
    allow(["iot:Subscribe"], [iot_arn(f"topicfilter/fleet/{THING}/commands")]),
    allow(["iot:Receive"], [iot_arn(f"topic/fleet/{THING}/commands")]),
    # Its own shadow only, over HTTPS as over MQTT.
    allow(["iot:GetThingShadow", "iot:UpdateThingShadow"], [iot_arn(f"thing/{THING}")]),
))
jobs_topics = f"$aws/things/{THING}/jobs"
jobs_policy = aws.iot.Policy("jobs", name=f"{prefix}-jobs", tags=tags, policy=policy_document(
    connect_as_thing,
    allow(["iot:Publish", "iot:Receive"], [iot_arn(f"topic/{jobs_topics}/*")]),
    allow(["iot:Subscribe"], [iot_arn(f"topicfilter/{jobs_topics}/*")]),
    allow(["iot:DescribeJobExecution", "iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution",
           "iot:UpdateJobExecution"], [iot_arn(f"thing/{THING}")]),
))

# -- Telemetry: a topic rule into an encrypted stream; failures go to a log group ------------------------

stream_key = aws.kms.Key("telemetry", description=f"{prefix} telemetry stream", enable_key_rotation=True,
                         deletion_window_in_days=30, tags=tags)
stream = aws.kinesis.Stream("telemetry", name=f"{prefix}-telemetry", shard_count=1, retention_period=24,
                            encryption_type="KMS", kms_key_id=stream_key.arn, tags=tags)
rule_errors = aws.cloudwatch.LogGroup("rule-errors", name=f"/{prefix}/topic-rule-errors",
                                      retention_in_days=log_retention_days, tags=tags)
rule_role = service_role(
    "telemetry-rule", "iot.amazonaws.com",
    allow(["kinesis:PutRecord"], [stream.arn]),
    allow(["kms:GenerateDataKey"], [stream_key.arn]),
    allow(["logs:CreateLogStream", "logs:PutLogEvents"], [pulumi.Output.concat(rule_errors.arn, ":*")]),
)
aws.iot.TopicRule(
    "telemetry", name=f"{prefix.replace('-', '_')}_telemetry", enabled=True, tags=tags,
    description="Device telemetry into the fleet's Kinesis stream",
    sql="SELECT *, topic(2) AS thing_name FROM 'fleet/+/telemetry'", sql_version="2016-03-23",
    kineses=[{"stream_name": stream.name, "role_arn": rule_role.arn, "partition_key": "${topic(2)}"}],
    error_action={"cloudwatch_logs": {"log_group_name": rule_errors.name, "role_arn": rule_role.arn}},
)

# -- Token-signed custom authorizer on the team's own domain ----------------------------------------------

authorizer_function = function("authorizer", "authorizer")
authorizer = aws.iot.Authorizer(
    "devices", name=f"{prefix}-devices", authorizer_function_arn=authorizer_function.arn, status="ACTIVE",
    signing_disabled=False, token_key_name=config.require("tokenKeyName"),
    token_signing_public_keys={"fleet-signing-key-1": config.require("tokenSigningPublicKey")}, tags=tags,
)
aws.lambda_.Permission("authorizer-invoke", action="lambda:InvokeFunction", function=authorizer_function.name,
                       principal="iot.amazonaws.com", source_arn=authorizer.arn)
aws.iot.DomainConfiguration(
    "devices", name=f"{prefix}-devices", domain_name=config.require("domainName"),
    server_certificate_arns=[config.require("serverCertificateArn")], service_type="DATA",
    authentication_type="CUSTOM_AUTH", application_protocol="SECURE_MQTT",
    authorizer_config={"default_authorizer_name": authorizer.name, "allow_authorizer_override": False},
    tls_config={"security_policy": config.require("tlsSecurityPolicy")}, status="ENABLED", tags=tags,
)

# -- Credentials provider: devices upload logs to their own prefix with short-lived credentials ----------

upload_bucket = config.require("uploadBucket")
upload_role = service_role(
    "device-uploads", "credentials.iot.amazonaws.com",
    allow(["s3:PutObject"], [f"arn:aws:s3:::{upload_bucket}/device-logs/${{credentials-iot:ThingName}}/*"]),
)
aws.iot.RoleAlias("device-uploads", alias=f"{prefix}-device-uploads", role_arn=upload_role.arn,
                  credential_duration=3600, tags=tags)

# -- Fleet provisioning by claim, vetted by a pre-provisioning hook ---------------------------------------

hook_function = function("provisioning-hook", "pre_provisioning_hook")
provisioning_role = service_role(
    "provisioning", "iot.amazonaws.com",
    allow(["iot:CreateThing", "iot:DescribeThing"], [iot_arn(f"thing/{prefix}-*")]),
    allow(["iot:AttachThingPrincipal", "iot:DescribeCertificate", "iot:UpdateCertificate"],
          [iot_arn("cert/*")]),
    allow(["iot:AttachPolicy"], [telemetry_policy.arn, jobs_policy.arn]),
)
template_body = pulumi.Output.json_dumps({
    "Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Fn::Join": ["", [f"{prefix}-", {"Ref": "SerialNumber"}]]}}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
        "telemetry": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": telemetry_policy.name}},
        "jobs": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": jobs_policy.name}},
    },
})
provisioning_template = aws.iot.ProvisioningTemplate(
    "claim", name=f"{prefix}-claim", description="Devices register themselves with the factory claim certificate",
    enabled=True, type="FLEET_PROVISIONING", provisioning_role_arn=provisioning_role.arn,
    template_body=template_body, tags=tags,
    pre_provisioning_hook={"target_arn": hook_function.arn, "payload_version": "2020-04-01"},
)
aws.lambda_.Permission("provisioning-hook-invoke", action="lambda:InvokeFunction", function=hook_function.name,
                       principal="iot.amazonaws.com", source_arn=provisioning_template.arn)

# -- Jobs: firmware rollouts stop themselves when devices fail --------------------------------------------

aws_native.iot.JobTemplate(
    "firmware", job_template_id=f"{prefix}-firmware", description="Firmware rollout to the fleet",
    document_source=config.require("firmwareJobDocument"),
    abort_config=aws_native.iot.AbortConfigPropertiesArgs(criteria_list=[aws_native.iot.JobTemplateAbortCriteriaArgs(
        action=aws_native.iot.JobTemplateAction.CANCEL, failure_type=aws_native.iot.JobTemplateFailureType.FAILED,
        min_number_of_executed_things=10, threshold_percentage=10.0,
    )]),
    timeout_config=aws_native.iot.TimeoutConfigPropertiesArgs(in_progress_timeout_in_minutes=60),
    job_executions_rollout_config=aws_native.iot.JobExecutionsRolloutConfigPropertiesArgs(maximum_per_minute=50),
    tags=[{"key": key, "value": value} for key, value in tags.items()],
)

# -- Account-wide IoT v2 logging --------------------------------------------------------------------------

logging_role = service_role(
    "iot-logging", "iot.amazonaws.com",
    allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:PutMetricFilter",
           "logs:PutRetentionPolicy"],
          [pulumi.Output.concat("arn:aws:logs:", region, ":", account, ":log-group:AWSIotLogsV2:*")]),
)
aws.iot.LoggingOptions("account", default_log_level="WARN", disable_all_logs=False, role_arn=logging_role.arn)

pulumi.export("telemetryPolicyName", telemetry_policy.name)
pulumi.export("jobsPolicyName", jobs_policy.name)
pulumi.export("provisioningTemplateName", provisioning_template.name)

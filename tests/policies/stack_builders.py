"""Realistic resources as the engine presents them to the pack (camelCase inputs, outputs with ARNs),
compliant by default; tests mutate them to violate one rule at a time."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi.output import UNKNOWN, Unknown

from harness.analyzer import (
    POLICY_CONFIG_DIR,
    AnalyzeResult,
    AnalyzerResource,
    PolicyPackProcess,
    PreviewReport,
    urn_for,
)
from settings.facts import (
    AUDIT_CHECKS_BY_NAME,
    CRITICAL_AUDIT_CHECKS,
    DEVICE_DEFENDER_PRODUCTS,
    ESCALATION_ROLE,
    ESCALATION_STAGES_TAG_KEY,
    QUARANTINE_ROLE,
    ROLE_TAG_KEY,
)

STACK = "policytest"
PROJECT = "fleetguard"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}"
THING = "${iot:Connection.Thing.ThingName}"
TAGS = {"Project": "fleetguard", "Environment": "test", "Owner": "iot-security"}
NATIVE_TAGS = [{"key": key, "value": value} for key, value in TAGS.items()]

CRITICAL_CHECKS = {name: AUDIT_CHECKS_BY_NAME[name].native_property for name in CRITICAL_AUDIT_CHECKS}
"""Critical checks by API name, with their key under auditCheckConfigurations (checked against the SDK's
input names by test_policy_builders_match_sdk)."""


def unknown() -> Unknown:
    """A value computed by another resource, unknown at preview (sent as the engine's sentinel)."""
    return UNKNOWN


def resource(
    resource_type: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    computed: Mapping[str, Any] | None = None,
    property_dependencies: Mapping[str, Sequence[str]] | None = None,
) -> AnalyzerResource:
    """A resource whose outputs are its inputs plus what the provider computes (``computed``)."""
    return AnalyzerResource(
        urn=urn_for(STACK, PROJECT, resource_type, name),
        type=resource_type,
        name=name,
        inputs=dict(inputs),
        outputs={**inputs, **(computed or {})},
        property_dependencies=dict(property_dependencies or {}),
    )


def changed(base: AnalyzerResource, **inputs: Any) -> AnalyzerResource:
    """``base`` with some inputs replaced (``None`` removes one); outputs follow."""
    new_inputs = {**copy.deepcopy(dict(base.inputs)), **inputs}
    new_inputs = {key: value for key, value in new_inputs.items() if value is not None}
    computed = {key: value for key, value in (base.outputs or {}).items() if key not in base.inputs}
    return AnalyzerResource(
        urn=base.urn, type=base.type, name=base.name, inputs=new_inputs, outputs={**new_inputs, **computed},
        parent=base.parent, provider=base.provider, dependencies=base.dependencies,
        property_dependencies=base.property_dependencies,
    )


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: Any, resources: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def deny(actions: Any, resources: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


# -- IoT ------------------------------------------------------------------------------------------------

DEVICE_POLICY_DOCUMENT = document(
    allow("iot:Connect", f"{PREFIX}:client/{THING}"),
    allow(["iot:Publish", "iot:Receive"], f"{PREFIX}:topic/fleet/{THING}/*"),
    allow("iot:Subscribe", f"{PREFIX}:topicfilter/fleet/{THING}/*"),
)


def device_policy(policy_document: Any = DEVICE_POLICY_DOCUMENT, name: str = "device") -> AnalyzerResource:
    return resource("aws:iot/policy:Policy", f"fleetguard-{name}-policy",
                    {"name": f"fleetguard-{name}", "policy": policy_document, "tags": TAGS},
                    computed={"arn": f"{PREFIX}:policy/fleetguard-{name}"})


QUARANTINE_MARK = {ROLE_TAG_KEY: QUARANTINE_ROLE}
"""The tag the program puts on its quarantine group."""


def quarantine_group(name: str = "fleetguard-test-quarantine", *, marked: bool = True) -> AnalyzerResource:
    tags = {**TAGS, **QUARANTINE_MARK} if marked else TAGS
    return resource("aws:iot/thingGroup:ThingGroup", name, {"name": name, "tags": tags},
                    computed={"arn": f"{PREFIX}:thinggroup/{name}"})


QUARANTINE_DENY_DOCUMENT = document(deny(["iot:Publish", "iot:Subscribe", "iot:Receive"], "*"))


def quarantine_policy(policy_document: Any = QUARANTINE_DENY_DOCUMENT) -> AnalyzerResource:
    return device_policy(policy_document, name="quarantine-deny")


def policy_attachment(policy: AnalyzerResource, group: AnalyzerResource) -> AnalyzerResource:
    return resource("aws:iot/policyAttachment:PolicyAttachment", f"{group.name}-deny-attachment",
                    {"policy": policy.inputs["name"], "target": (group.outputs or {})["arn"]},
                    property_dependencies={"policy": [policy.urn], "target": [group.urn]})


def group_logging(group: AnalyzerResource, level: str = "DEBUG") -> AnalyzerResource:
    return resource("aws-native:iot:ResourceSpecificLogging", f"{group.name}-logging",
                    {"targetType": "THING_GROUP", "targetName": group.inputs["name"], "logLevel": level},
                    property_dependencies={"targetName": [group.urn]})


def mitigation_action(group: AnalyzerResource) -> AnalyzerResource:
    return resource("aws-native:iot:MitigationAction", "fleetguard-quarantine-action", {
        "actionName": "fleetguard-quarantine",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-mitigation",
        "actionParams": {"addThingsToThingGroupParams": {
            "thingGroupNames": [group.inputs["name"]], "overrideDynamicGroups": True,
        }},
        "tags": NATIVE_TAGS,
    }, property_dependencies={"actionParams": [group.urn]})


def logging_options(**overrides: Any) -> AnalyzerResource:
    inputs = {"defaultLogLevel": "INFO", "disableAllLogs": False,
              "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-iot-logging", **overrides}
    return resource("aws:iot/loggingOptions:LoggingOptions", "fleetguard-iot-logging", inputs)


def containment(group_name: str = "fleetguard-test-quarantine", *, marked: bool = True) -> list[AnalyzerResource]:
    group = quarantine_group(group_name, marked=marked)
    policy = quarantine_policy()
    return [group, policy, policy_attachment(policy, group), group_logging(group), mitigation_action(group),
            logging_options()]


# -- audit and detect -----------------------------------------------------------------------------------

def audit_configuration(disabled: Sequence[str] = (), **overrides: Any) -> AnalyzerResource:
    checks = {key: {"enabled": name not in disabled} for name, key in CRITICAL_CHECKS.items()}
    checks["ioTPolicyPotentialMisConfigurationCheck"] = {"enabled": True}
    checks["deviceCertificateAgeCheck"] = {"enabled": False}
    inputs = {
        "accountId": ACCOUNT,
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-audit",
        "auditCheckConfigurations": checks,
        "auditNotificationTargetConfigurations": {"sns": {
            "targetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-alerts-publish",
            "enabled": True,
        }},
        **overrides,
    }
    return resource("aws-native:iot:AccountAuditConfiguration", "fleetguard-audit-configuration", inputs)


def scheduled_audit(frequency: str = "DAILY", checks: Sequence[str] = tuple(CRITICAL_CHECKS),
                    name: str = "critical") -> AnalyzerResource:
    inputs: dict[str, Any] = {"scheduledAuditName": f"fleetguard-{name}", "frequency": frequency,
                              "targetCheckNames": list(checks), "tags": NATIVE_TAGS}
    if frequency in ("WEEKLY", "BIWEEKLY"):
        inputs["dayOfWeek"] = "MON"
    if frequency == "MONTHLY":
        inputs["dayOfMonth"] = "1"
    return resource("aws-native:iot:ScheduledAudit", f"fleetguard-{name}-audit", inputs)


RULE_BEHAVIOR = {"name": "AuthorizedListeningTcpPorts", "metric": "aws:listening-tcp-ports",
                 "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443, 8883]}}}
ML_BEHAVIOR = {"name": "MlBytesOut", "metric": "aws:all-bytes-out",
               "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}}


def security_profile(name: str = "rules", behaviors: Sequence[dict[str, Any]] = (RULE_BEHAVIOR,),
                     **overrides: Any) -> AnalyzerResource:
    inputs = {
        "securityProfileName": f"fleetguard-{name}",
        "alertTargets": {"SNS": {"alertTargetArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts",
                                 "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-alerts-publish"}},
        "targetArns": [f"{PREFIX}:all/things"],
        "behaviors": list(behaviors),
        "tags": NATIVE_TAGS,
        **overrides,
    }
    return resource("aws-native:iot:SecurityProfile", f"fleetguard-{name}-profile", inputs)


# -- encryption and messaging ---------------------------------------------------------------------------

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_key(**overrides: Any) -> AnalyzerResource:
    return resource("aws:kms/key:Key", "fleetguard-key",
                    {"description": "fleetguard alerts", "enableKeyRotation": True, "tags": TAGS, **overrides},
                    computed={"arn": KEY_ARN})


def topic(**overrides: Any) -> AnalyzerResource:
    return resource("aws:sns/topic:Topic", "fleetguard-alerts",
                    {"name": "fleetguard-alerts", "kmsMasterKeyId": KEY_ARN, "tags": TAGS, **overrides},
                    computed={"arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:fleetguard-alerts"})


def queue(name: str, **overrides: Any) -> AnalyzerResource:
    return resource("aws:sqs/queue:Queue", name,
                    {"name": name, "kmsMasterKeyId": KEY_ARN, "tags": TAGS, **overrides},
                    computed={"arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"})


def work_and_dead_letter_queues() -> list[AnalyzerResource]:
    dead_letter = queue("fleetguard-events-dlq")
    work = queue("fleetguard-events", redrivePolicy=json.dumps({
        "deadLetterTargetArn": (dead_letter.outputs or {})["arn"], "maxReceiveCount": 5,
    }))
    return [work, dead_letter]


def log_group(retention: Any = 365) -> AnalyzerResource:
    inputs: dict[str, Any] = {"name": "/fleetguard/containment", "tags": TAGS}
    if retention is not None:
        inputs["retentionInDays"] = retention
    return resource("aws:cloudwatch/logGroup:LogGroup", "fleetguard-containment-logs", inputs)


# -- incident response and Security Hub -----------------------------------------------------------------

def contact(alias: str, contact_type: str) -> AnalyzerResource:
    return resource("aws:ssmcontacts/contact:Contact", alias, {"alias": alias, "type": contact_type, "tags": TAGS},
                    computed={"arn": f"arn:aws:ssm-contacts:{REGION}:{ACCOUNT}:contact/{alias}"})


def engagement_plan(for_contact: AnalyzerResource, stages: int) -> AnalyzerResource:
    stage = {"durationInMinutes": 5, "targets": [{"contactTargetInfo": {
        "contactId": f"arn:aws:ssm-contacts:{REGION}:{ACCOUNT}:contact/oncall", "isEssential": True}}]}
    return resource("aws:ssmcontacts/plan:Plan", f"{for_contact.name}-plan",
                    {"contactId": (for_contact.outputs or {})["arn"], "stages": [stage] * stages},
                    property_dependencies={"contactId": [for_contact.urn]})


def response_plan(**overrides: Any) -> AnalyzerResource:
    inputs = {
        "name": "fleetguard-device-compromise",
        "incidentTemplate": {"title": "Device compromise", "impact": 2},
        "engagements": [f"arn:aws:ssm-contacts:{REGION}:{ACCOUNT}:contact/security-escalation"],
        "action": {"ssmAutomations": [{
            "documentName": "fleetguard-contain-device",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleetguard-runbook",
            "parameters": [{"name": "Environment", "values": ["test"]}],
        }]},
        "tags": TAGS,
        **overrides,
    }
    return resource("aws:ssmincidents/responsePlan:ResponsePlan", "fleetguard-response-plan", inputs)


def incident_manager() -> list[AnalyzerResource]:
    escalation = contact("security-escalation", "ESCALATION")
    return [response_plan(), contact("oncall", "PERSONAL"), escalation, engagement_plan(escalation, 2)]


def escalation_schedule_group(stages: Any = "2", *, marked: bool = True) -> AnalyzerResource:
    """The schedule group the intake escalates OpsItems from, declared with its stage count."""
    tags: dict[str, Any] = {**TAGS, ESCALATION_STAGES_TAG_KEY: stages}
    if marked:
        tags[ROLE_TAG_KEY] = ESCALATION_ROLE
    return resource("aws:scheduler/scheduleGroup:ScheduleGroup", "fleetguard-escalation",
                    {"name": "fleetguard-escalation", "tags": tags},
                    computed={"arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/fleetguard-escalation"})


def runbook(document_type: str = "Automation") -> AnalyzerResource:
    return resource("aws:ssm/document:Document", "fleetguard-runbook",
                    {"name": "fleetguard-iot-incident", "documentType": document_type, "documentFormat": "YAML",
                     "content": "schemaVersion: '0.3'", "tags": TAGS})


def ops_center() -> list[AnalyzerResource]:
    """OpsCenter incidents instead of Incident Manager: the runbook and a two-stage escalation."""
    return [runbook(), escalation_schedule_group()]


def security_hub(products: Sequence[str] = tuple(DEVICE_DEFENDER_PRODUCTS.values()),
                 ) -> list[AnalyzerResource]:
    hub = resource("aws:securityhub/account:Account", "fleetguard-security-hub", {"enableDefaultStandards": False})
    return [hub] + [
        resource("aws:securityhub/productSubscription:ProductSubscription", product,
                 {"productArn": f"arn:aws:securityhub:{REGION}::product/aws/{product}"})
        for product in products
    ]


# -- device fleet: device policies, topic rules, authorizers, role aliases (RULES-A) --------------------

IAM_PREFIX = f"arn:aws:iam::{ACCOUNT}"
IOT_TRUST = document({"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"})
CREDENTIALS_TRUST = document({"Effect": "Allow", "Principal": {"Service": "credentials.iot.amazonaws.com"},
                              "Action": "sts:AssumeRole"})
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/fleet-telemetry"
ERRORS_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/fleet-rule-errors"


def native_device_policy(policy_document: dict[str, Any], name: str = "native-device") -> AnalyzerResource:
    return resource("aws-native:iot:Policy", f"{name}-policy", {"policyName": name, "policyDocument": policy_document},
                    computed={"arn": f"{PREFIX}:policy/{name}"})


def iam_role(name: str, trust: str = IOT_TRUST, **overrides: Any) -> AnalyzerResource:
    return resource("aws:iam/role:Role", name, {"name": name, "assumeRolePolicy": trust, **overrides},
                    computed={"arn": f"{IAM_PREFIX}:role/{name}"})


def role_policy_for(role: AnalyzerResource, policy_document: Any, *, by_dependency: bool = False) -> AnalyzerResource:
    """A role policy naming ``role`` by name, or (``by_dependency``) by an id unknown at preview."""
    target: Any = unknown() if by_dependency else role.inputs["name"]
    return resource("aws:iam/rolePolicy:RolePolicy", f"{role.name}-policy", {"role": target, "policy": policy_document},
                    property_dependencies={"role": [role.urn]})


def rule_role(name: str = "fleet-rule-actions", actions: Any = ("kinesis:PutRecord", "sqs:SendMessage"),
              ) -> list[AnalyzerResource]:
    role = iam_role(name)
    errors_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:fleet-rule-errors"
    return [role, role_policy_for(role, document(allow(list(actions), [STREAM_ARN, errors_queue])))]


def topic_rule(role_arn: Any = f"{IAM_PREFIX}:role/fleet-rule-actions", **overrides: Any) -> AnalyzerResource:
    inputs = {
        "name": "fleet_telemetry",
        "enabled": True,
        "sql": "SELECT * FROM 'dt/+/telemetry'",
        "sqlVersion": "2016-03-23",
        "kineses": [{"streamName": "fleet-telemetry", "partitionKey": "${topic(2)}", "roleArn": role_arn}],
        "errorAction": {"sqs": {"queueUrl": ERRORS_QUEUE_URL, "roleArn": role_arn, "useBase64": False}},
        "tags": TAGS,
        **overrides,
    }
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource("aws:iot/topicRule:TopicRule", "fleet-telemetry-rule", inputs,
                    computed={"arn": f"{PREFIX}:rule/fleet_telemetry"})


def native_topic_rule(role_arn: Any = f"{IAM_PREFIX}:role/fleet-rule-actions", **payload: Any) -> AnalyzerResource:
    body = {
        "sql": "SELECT * FROM 'dt/+/telemetry'",
        "awsIotSqlVersion": "2016-03-23",
        "ruleDisabled": False,
        "actions": [{"kinesis": {"streamName": "fleet-telemetry", "roleArn": role_arn}}],
        "errorAction": {"sqs": {"queueUrl": ERRORS_QUEUE_URL, "roleArn": role_arn}},
        **payload,
    }
    body = {key: value for key, value in body.items() if value is not None}
    return resource("aws-native:iot:TopicRule", "fleet-telemetry-native-rule",
                    {"ruleName": "fleet_telemetry_native", "topicRulePayload": body},
                    computed={"arn": f"{PREFIX}:rule/fleet_telemetry_native"})


AUTHORIZER_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fleet-authorizer"
SIGNING_KEYS = {"key1": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq...\n-----END PUBLIC KEY-----"}


def authorizer_function() -> AnalyzerResource:
    return resource("aws:lambda/function:Function", "fleet-authorizer",
                    {"name": "fleet-authorizer", "runtime": "python3.12", "handler": "index.handler",
                     "role": f"{IAM_PREFIX}:role/fleet-authorizer-function"},
                    computed={"arn": AUTHORIZER_FUNCTION_ARN})


def authorizer(resource_type: str = "aws:iot/authorizer:Authorizer", **overrides: Any) -> AnalyzerResource:
    name_key = "name" if resource_type == "aws:iot/authorizer:Authorizer" else "authorizerName"
    inputs = {name_key: "fleet-authorizer", "authorizerFunctionArn": AUTHORIZER_FUNCTION_ARN,
              "signingDisabled": False, "tokenKeyName": "x-fleet-token", "tokenSigningPublicKeys": SIGNING_KEYS,
              "status": "ACTIVE", **overrides}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource(resource_type, "fleet-authorizer", inputs,
                    computed={"arn": f"{PREFIX}:authorizer/fleet-authorizer"},
                    property_dependencies={"authorizerFunctionArn": [authorizer_function().urn]})


def authorizer_permission(**overrides: Any) -> AnalyzerResource:
    inputs = {"function": "fleet-authorizer", "action": "lambda:InvokeFunction", "principal": "iot.amazonaws.com",
              "sourceArn": f"{PREFIX}:authorizer/fleet-authorizer", **overrides}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource("aws:lambda/permission:Permission", "fleet-authorizer-invoke", inputs,
                    property_dependencies={"function": [authorizer_function().urn],
                                           "sourceArn": [authorizer().urn]})


def role_alias(resource_type: str = "aws:iot/roleAlias:RoleAlias", duration: Any = 3600,
               role_arn: Any = f"{IAM_PREFIX}:role/fleet-device-credentials") -> AnalyzerResource:
    classic = resource_type == "aws:iot/roleAlias:RoleAlias"
    inputs: dict[str, Any] = {"alias" if classic else "roleAlias": "fleet-device-credentials", "roleArn": role_arn}
    if duration is not None:
        inputs["credentialDuration" if classic else "credentialDurationSeconds"] = duration
    return resource(resource_type, "fleet-device-credentials-alias", inputs,
                    computed={"arn": f"{PREFIX}:rolealias/fleet-device-credentials"})


def credentials_role(actions: Any = ("s3:PutObject",)) -> list[AnalyzerResource]:
    role = iam_role("fleet-device-credentials", CREDENTIALS_TRUST)
    uploads = "arn:aws:s3:::fleet-uploads/${credentials-iot:ThingName}/*"
    return [role, role_policy_for(role, document(allow(list(actions), uploads)))]


def device_fleet_resources() -> list[AnalyzerResource]:
    """One compliant resource of every type the device fleet rules govern, as a team's IoT stack has them."""
    return [device_policy(), *rule_role(), topic_rule(), native_topic_rule(), authorizer_function(), authorizer(),
            authorizer("aws-native:iot:Authorizer"), authorizer_permission(), role_alias(),
            role_alias("aws-native:iot:RoleAlias"), *credentials_role()]


def compliant_stack() -> list[AnalyzerResource]:
    """A small stack that satisfies every rule under the pack's default config."""
    return [
        device_policy(),
        *containment(),
        audit_configuration(),
        scheduled_audit(),
        security_profile(),
        security_profile("ml", behaviors=[ML_BEHAVIOR]),
        kms_key(),
        topic(),
        *work_and_dead_letter_queues(),
        log_group(),
        *incident_manager(),
        *security_hub(),
    ]


def replace(stack: Sequence[AnalyzerResource], *replacements: AnalyzerResource) -> list[AnalyzerResource]:
    """``stack`` with the resources of the same URN swapped for ``replacements``."""
    by_urn = {item.urn: item for item in replacements}
    return [by_urn.get(item.urn, item) for item in stack]


def without(stack: Sequence[AnalyzerResource], *resource_types: str) -> list[AnalyzerResource]:
    return [item for item in stack if item.type not in resource_types]


def judge_shipped(pack: PolicyPackProcess, stack: str, resources: Sequence[AnalyzerResource], *,
                  config: Mapping[str, Any] | Path | None = None) -> PreviewReport:
    """One run of the pack over ``resources`` as one of the shipped stacks: that stack's name, and its own
    policy config unless ``config`` says otherwise."""
    pack.configure(POLICY_CONFIG_DIR / f"{stack}.json" if config is None else config)
    pack.configure_stack(stack, PROJECT)
    return pack.preview(resources)


def violations(result: AnalyzeResult | PreviewReport, policy: str) -> list[str]:
    """The messages ``policy`` reported (without the description line the SDK puts first)."""
    return [diagnostic.message.split("\n", 1)[-1] for diagnostic in result.diagnostics
            if diagnostic.policy_name == policy]


# -- device fleet: domain configurations, provisioning templates, jobs, OTA updates, CA certificates -----

ACM_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
HOOK_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fleet-pre-provisioning"
PROVISIONING_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fleet-provisioning"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def domain_configuration(*, native: bool = False, authorizer_resource: AnalyzerResource | None = None,
                         **overrides: Any) -> AnalyzerResource:
    """A custom domain with TLS 1.2, an ACM server certificate and (optionally) a default authorizer."""
    inputs: dict[str, Any] = {
        "domainName": "mqtt.fleet.example.com",
        "serverCertificateArns": [ACM_ARN],
        "serviceType": "DATA",
        "tlsConfig": {"securityPolicy": "IoTSecurityPolicy_TLS13_1_2_2022_10"},
        **({"domainConfigurationName": "fleet-mqtt"} if native else {"name": "fleet-mqtt"}),
    }
    dependencies: dict[str, list[str]] = {}
    if authorizer_resource is not None:
        inputs["authorizerConfig"] = {"defaultAuthorizerName": authorizer_resource.name,
                                      "allowAuthorizerOverride": False}
        dependencies["authorizerConfig"] = [authorizer_resource.urn]
    inputs.update(overrides)
    inputs = {key: value for key, value in inputs.items() if value is not None}
    resource_type = ("aws-native:iot:DomainConfiguration" if native
                     else "aws:iot/domainConfiguration:DomainConfiguration")
    return resource(resource_type, "fleet-mqtt-domain", inputs, property_dependencies=dependencies)


def acm_certificate(*, private_ca: bool = False) -> AnalyzerResource:
    inputs: dict[str, Any] = {"domainName": "mqtt.fleet.example.com"}
    if private_ca:
        inputs["certificateAuthorityArn"] = f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/fleet"
    else:
        inputs["validationMethod"] = "DNS"
    return resource("aws:acm/certificate:Certificate", "fleet-mqtt-certificate", inputs, computed={"arn": ACM_ARN})


def provisioning_body(*policy_documents: Any) -> str:
    """A fleet provisioning template body creating a thing, activating its certificate and (for each
    document) an IoT policy with that document."""
    resources: dict[str, Any] = {
        "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    }
    for position, policy_document in enumerate(policy_documents, start=1):
        resources[f"policy{position}"] = {"Type": "AWS::IoT::Policy",
                                          "Properties": {"PolicyDocument": policy_document}}
    return json.dumps({"Parameters": {"SerialNumber": {"Type": "String"}}, "Resources": resources})


def provisioning_template(*, native: bool = False, body: Any = None, **overrides: Any) -> AnalyzerResource:
    inputs: dict[str, Any] = {
        "description": "Fleet provisioning by claim",
        "enabled": True,
        "provisioningRoleArn": PROVISIONING_ROLE_ARN,
        "templateBody": body if body is not None else provisioning_body(DEVICE_POLICY_DOCUMENT),
        "preProvisioningHook": {"targetArn": HOOK_ARN, "payloadVersion": "2020-04-01"},
        **({"templateName": "fleet-claim", "templateType": "FLEET_PROVISIONING"} if native
           else {"name": "fleet-claim", "type": "FLEET_PROVISIONING"}),
        **overrides,
    }
    inputs = {key: value for key, value in inputs.items() if value is not None}
    resource_type = ("aws-native:iot:ProvisioningTemplate" if native
                     else "aws:iot/provisioningTemplate:ProvisioningTemplate")
    return resource(resource_type, "fleet-claim-template", inputs)


ABORT_CONFIG = {"criteriaList": [{"action": "CANCEL", "failureType": "ALL", "thresholdPercentage": 10,
                                  "minNumberOfExecutedThings": 10}]}


def job_template(**overrides: Any) -> AnalyzerResource:
    inputs = {"jobTemplateId": "fleet-firmware", "description": "Firmware rollout",
              "document": json.dumps({"operation": "install"}), "abortConfig": ABORT_CONFIG,
              "timeoutConfig": {"inProgressTimeoutInMinutes": 120}, **overrides}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource("aws-native:iot:JobTemplate", "fleet-firmware-template", inputs,
                    computed={"arn": f"{PREFIX}:jobtemplate/fleet-firmware"})


def job(**overrides: Any) -> AnalyzerResource:
    inputs = {"jobId": "fleet-firmware-1", "targets": [f"{PREFIX}:thinggroup/fleet"],
              "document": json.dumps({"operation": "install"}), "abortConfig": ABORT_CONFIG,
              "timeoutConfig": {"inProgressTimeoutInMinutes": 120}, **overrides}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource("aws-native:iot:Job", "fleet-firmware-job", inputs)


SIGNED_FILE = {"fileName": "firmware.bin", "fileLocation": {"s3Location": {
    "bucket": "fleet-firmware", "key": "firmware.bin", "version": "1"}},
    "codeSigning": {"startSigningJobParameter": {"signingProfileName": "fleet_firmware",
                                                 "destination": {"s3Destination": {"bucket": "fleet-signed"}}}}}


def ota_update(files: Sequence[Any] = (SIGNED_FILE,), **overrides: Any) -> AnalyzerResource:
    inputs = {"otaUpdateId": "fleet-ota-1", "targets": [f"{PREFIX}:thinggroup/fleet"], "protocols": ["MQTT"],
              "roleArn": f"arn:aws:iam::{ACCOUNT}:role/fleet-ota", "files": list(files),
              "awsJobAbortConfig": {"abortCriteriaList": ABORT_CONFIG["criteriaList"]},
              "awsJobTimeoutConfig": {"inProgressTimeoutInMinutes": 240}, **overrides}
    inputs = {key: value for key, value in inputs.items() if value is not None}
    return resource("aws-native:iot:OtaUpdate", "fleet-ota", inputs)


def ca_certificate(*, native: bool = False, auto_registration: bool = False, template: Any = None,
                   **overrides: Any) -> AnalyzerResource:
    inputs: dict[str, Any] = {"caCertificatePem": CA_PEM, "verificationCertificatePem": CA_PEM}
    if native:
        inputs.update(status="ACTIVE", autoRegistrationStatus="ENABLE" if auto_registration else "DISABLE")
    else:
        inputs.update(active=True, allowAutoRegistration=auto_registration)
    if template is not None:
        inputs["registrationConfig"] = {"templateBody": template, "roleArn": PROVISIONING_ROLE_ARN}
    inputs.update(overrides)
    resource_type = "aws-native:iot:CaCertificate" if native else "aws:iot/caCertificate:CaCertificate"
    return resource(resource_type, "fleet-ca", inputs)

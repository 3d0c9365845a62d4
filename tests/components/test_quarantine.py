"""The quarantine component as the dev and prod programs register it: the group, its IoT policy (parsed
and evaluated the way AWS IoT evaluates it), the policy attachment, logging, mitigation actions, the
contain/release functions and their roles."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest
import regex  # type: ignore[import-untyped]
from botocore.loaders import Loader  # type: ignore[import-untyped]

import stack_outputs as out
from components.quarantine import IOT_POLICY_MAX_CHARS, quarantine_policy_document
from functions.contract import EnvVar
from harness.mockstack import ACCOUNT_ID, REGION, RegisteredResource, StackRun, run_stack
from settings.facts import QUARANTINE_ROLE, ROLE_TAG_KEY

IOT = f"arn:aws:iot:{REGION}:{ACCOUNT_ID}"
THING_VARIABLE = "${iot:Connection.Thing.ThingName}"
THINGS = f"{IOT}:thing/*"
OPS_ITEMS = f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:opsitem/*"
MANAGED = "arn:aws:iam::aws:policy/service-role/"

# A device certificate policy that allows everything: the quarantine policy must still bound it.
ALLOW_EVERYTHING = {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
ALLOW_NOTHING: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}


def document(text: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(text) if isinstance(text, str) else text


def component(stack: StackRun) -> RegisteredResource:
    return stack.one("fleetguard:quarantine:Quarantine")


def descendants(stack: StackRun, root: RegisteredResource) -> list[RegisteredResource]:
    """Every resource whose parent chain reaches ``root``."""
    found: list[RegisteredResource] = []
    urns = {root.urn}
    for resource in stack.resources:  # registration order: parents come before their children
        if resource.parent in urns:
            found.append(resource)
            urns.add(resource.urn)
    return found


def named(stack: StackRun, suffix: str) -> RegisteredResource:
    root = component(stack)
    matches = [r for r in descendants(stack, root) if r.name == f"{root.name}-{suffix}"]
    assert len(matches) == 1, suffix
    return matches[0]


def quarantine_policy(stack: StackRun) -> dict[str, Any]:
    return document(stack.one("aws:iot/policy:Policy").inputs["policy"])


# --- a small evaluator of AWS IoT policy semantics, to check what the policy actually permits -----------

def _matches(pattern: str, resource: str, thing: str) -> bool:
    """IoT resource matching: policy variables substituted, ``*`` any run of characters, ``?`` one."""
    expanded = pattern.replace(THING_VARIABLE, thing)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in expanded)
    return re.fullmatch(regex, resource) is not None


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _applies(entry: dict[str, Any], action: str, resource: str, thing: str) -> bool:
    if not any(_matches(a, action, thing) for a in _as_list(entry["Action"])):
        return False
    if "NotResource" in entry:
        return not any(_matches(r, resource, thing) for r in _as_list(entry["NotResource"]))
    return any(_matches(r, resource, thing) for r in _as_list(entry["Resource"]))


def allowed(policies: list[dict[str, Any]], action: str, resource: str, thing: str) -> bool:
    """An explicit Deny in any policy wins; otherwise any Allow grants; otherwise implicitly denied."""
    entries = [entry for policy in policies for entry in policy["Statement"]]
    if any(e["Effect"] == "Deny" and _applies(e, action, resource, thing) for e in entries):
        return False
    return any(e["Effect"] == "Allow" and _applies(e, action, resource, thing) for e in entries)


def topic(name: str) -> str:
    return f"{IOT}:topic/{name}"


def topic_filter(name: str) -> str:
    return f"{IOT}:topicfilter/{name}"


# --- the group, its policy and the attachment --------------------------------------------------------

def test_quarantine_group_is_a_static_group_named_quarantined_and_tagged(any_stack: StackRun) -> None:
    group = any_stack.one("aws:iot/thingGroup:ThingGroup")
    assert group.inputs["name"] == "QUARANTINED"
    assert group.parent == component(any_stack).urn
    assert group.inputs["tags"]["Environment"] == any_stack.stack
    assert "parentGroupName" not in group.inputs
    assert any_stack.of_type("aws:iot/thingGroup:ThingGroup") == [group]


def role_of(resource: RegisteredResource) -> str | None:
    tags = resource.inputs.get("tags") or {}
    if isinstance(tags, list):
        return next((tag["value"] for tag in tags if tag["key"] == ROLE_TAG_KEY), None)
    role: str | None = tags.get(ROLE_TAG_KEY)
    return role


def test_only_the_quarantine_group_declares_the_quarantine_role(any_stack: StackRun) -> None:
    # The policy pack judges whichever thing group carries this tag as the quarantine group.
    group = any_stack.one("aws:iot/thingGroup:ThingGroup")
    assert group.inputs["tags"][ROLE_TAG_KEY] == QUARANTINE_ROLE

    # Other resources declare other roles (the escalation schedule group and stage topics), never this one.
    assert [r for r in any_stack.resources if role_of(r) == QUARANTINE_ROLE] == [group]


def test_the_role_tag_is_one_aws_iot_accepts() -> None:
    shapes = Loader().load_service_model("iot", "service-2")["shapes"]
    key_shape, value_shape = shapes["TagKey"], shapes["TagValue"]

    assert key_shape["min"] <= len(ROLE_TAG_KEY) <= key_shape["max"]
    # The model's pattern uses \p{...} classes, which only the regex module understands.
    assert regex.fullmatch(key_shape["pattern"], ROLE_TAG_KEY)
    assert not ROLE_TAG_KEY.lower().startswith("aws:")  # AWS reserves that prefix
    # CloudFormation (aws-native resources) also refuses an empty value.
    assert max(value_shape.get("min", 0), 1) <= len(QUARANTINE_ROLE) <= value_shape["max"]


def test_policy_is_attached_to_the_group_and_is_the_groups_only_policy(any_stack: StackRun) -> None:
    group = any_stack.one("aws:iot/thingGroup:ThingGroup")
    policy = any_stack.one("aws:iot/policy:Policy")
    attachments = [
        a for a in any_stack.of_type("aws:iot/policyAttachment:PolicyAttachment")
        if a.inputs["target"] == group.outputs["arn"]
    ]
    assert [a.inputs["policy"] for a in attachments] == [policy.outputs["name"]]
    assert policy.outputs["name"] == f"fleetguard-{any_stack.stack}-quarantine"


def test_policy_denies_explicitly_and_allows_only_the_listed_paths(any_stack: StackRun) -> None:
    statements = quarantine_policy(any_stack)["Statement"]
    by_sid = {entry["Sid"]: entry for entry in statements}
    own = f"$aws/things/{THING_VARIABLE}"
    forensics = topic(f"fleetguard/forensics/{THING_VARIABLE}/*")
    assert by_sid["InvestigationAndRepair"] == {
        "Sid": "InvestigationAndRepair",
        "Effect": "Allow",
        "Action": ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"],
        "Resource": [
            f"{IOT}:client/{THING_VARIABLE}", topic(f"{own}/*"), topic_filter(f"{own}/*"), forensics,
        ],
    }
    assert by_sid["DenyPublishElsewhere"]["Effect"] == "Deny"
    assert by_sid["DenyPublishElsewhere"]["Action"] == ["iot:Publish"]
    assert set(by_sid["DenyPublishElsewhere"]["NotResource"]) == {
        topic(f"{own}/shadow/get"), topic(f"{own}/shadow/update"), topic(f"{own}/jobs/*"),
        topic(f"{own}/defender/metrics/*"), forensics,
    }
    assert by_sid["DenyOtherSubscriptions"]["Action"] == ["iot:Receive", "iot:Subscribe"]
    subscriptions = by_sid["DenyOtherSubscriptions"]["NotResource"]
    assert set(subscriptions) == {topic(f"{own}/*"), topic_filter(f"{own}/*")}
    assert by_sid["DenyOtherClientIds"]["NotResource"] == [f"{IOT}:client/{THING_VARIABLE}"]
    assert by_sid["DenyRetainedMessages"] == {
        "Sid": "DenyRetainedMessages", "Effect": "Deny", "Action": ["iot:RetainPublish"], "Resource": ["*"],
    }
    assert len(statements) == 5
    for entry in statements:
        assert all("*" not in action for action in entry["Action"])
        if entry["Effect"] == "Deny" and "NotResource" in entry:
            assert "Resource" not in entry


@pytest.mark.parametrize(
    "certificate_policy", [ALLOW_EVERYTHING, ALLOW_NOTHING], ids=["allow-all", "no-grant"]
)
def test_quarantined_device_keeps_only_investigation_and_repair(
    dev_stack: StackRun, certificate_policy: dict[str, Any]
) -> None:
    policies = [certificate_policy, quarantine_policy(dev_stack)]
    me, other = "sensor-17", "sensor-18"

    def can(action: str, resource: str) -> bool:
        return allowed(policies, action, resource, me)

    assert can("iot:Connect", f"{IOT}:client/{me}")
    for request in ("get", "update"):
        assert can("iot:Publish", topic(f"$aws/things/{me}/shadow/{request}"))
    assert can("iot:Subscribe", topic_filter(f"$aws/things/{me}/shadow/update/delta"))
    assert can("iot:Receive", topic(f"$aws/things/{me}/shadow/get/accepted"))
    assert can("iot:Publish", topic(f"$aws/things/{me}/jobs/start-next"))
    assert can("iot:Publish", topic(f"$aws/things/{me}/jobs/job-42/update"))
    assert can("iot:Subscribe", topic_filter(f"$aws/things/{me}/jobs/notify-next"))
    assert can("iot:Receive", topic(f"$aws/things/{me}/jobs/notify-next"))
    assert can("iot:Publish", topic(f"$aws/things/{me}/defender/metrics/json"))
    assert can("iot:Publish", topic(f"fleetguard/forensics/{me}/process-list"))
    # Online forensics: the device agent hears of a secure tunnel (and its destination token) here.
    assert can("iot:Subscribe", topic_filter(f"$aws/things/{me}/tunnels/notify"))
    assert can("iot:Receive", topic(f"$aws/things/{me}/tunnels/notify"))

    assert not can("iot:Connect", f"{IOT}:client/{other}")
    assert not can("iot:Publish", topic(f"$aws/things/{me}/shadow/delete"))
    assert not can("iot:Publish", topic(f"$aws/things/{me}/shadow/name/config/update"))
    assert not can("iot:Publish", topic(f"$aws/things/{other}/shadow/update"))
    assert not can("iot:Publish", topic(f"$aws/things/{other}/jobs/start-next"))
    assert not can("iot:Publish", topic(f"fleetguard/forensics/{other}/process-list"))
    assert not can("iot:Publish", topic(f"fleetguard/forensics/{me}-spoof/process-list"))
    assert not can("iot:Publish", topic(f"telemetry/{me}"))
    assert not can("iot:Publish", topic("$aws/rules/ingest_telemetry"))
    assert not can("iot:RetainPublish", topic(f"fleetguard/forensics/{me}/process-list"))
    assert not can("iot:Subscribe", topic_filter("#"))
    assert not can("iot:Subscribe", topic_filter(f"$aws/things/{other}/shadow/update/delta"))
    assert not can("iot:Receive", topic(f"commands/{me}"))
    assert not can("iot:Subscribe", topic_filter(f"$aws/things/{other}/tunnels/notify"))
    assert not can("iot:Receive", topic(f"$aws/things/{other}/tunnels/notify"))
    assert not can("iot:Publish", topic(f"$aws/things/{me}/tunnels/notify"))


def test_policy_fits_the_iot_size_limit_in_every_partition() -> None:
    for prefix in (f"arn:aws:iot:{REGION}:{ACCOUNT_ID}", f"arn:aws-us-gov:iot:us-gov-west-1:{ACCOUNT_ID}",
                   f"arn:aws-cn:iot:cn-northwest-1:{ACCOUNT_ID}"):
        text = quarantine_policy_document(prefix, "f" * 64)
        assert len(re.sub(r"\s", "", text)) <= IOT_POLICY_MAX_CHARS


def test_policy_document_over_the_size_limit_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at most 2048 \(shorten forensicTopicPrefix\)"):
        quarantine_policy_document(f"arn:aws:iot:{REGION}:{ACCOUNT_ID}", "f" * 400)


def test_forensic_topic_prefix_is_configurable() -> None:
    stack = run_stack("dev", {"quarantine": {"forensicTopicPrefix": "evidence/iot"}})
    text = json.dumps(quarantine_policy(stack))
    assert f"topic/evidence/iot/{THING_VARIABLE}/*" in text
    assert "fleetguard/forensics" not in text


# --- logging ---------------------------------------------------------------------------------------

def test_group_logs_at_debug_once_account_logging_is_on(any_stack: StackRun) -> None:
    group_logging = any_stack.one("aws-native:iot:ResourceSpecificLogging")
    assert group_logging.inputs == {
        "targetType": "THING_GROUP", "targetName": "QUARANTINED", "logLevel": "DEBUG",
    }
    account_logging = any_stack.one("aws:iot/loggingOptions:LoggingOptions")
    assert account_logging.urn in group_logging.dependencies
    assert account_logging.inputs["disableAllLogs"] is False
    assert account_logging.inputs["defaultLogLevel"] == {"dev": "WARN", "prod": "ERROR"}[any_stack.stack]
    role = named(any_stack, "iot-logging-role")
    assert account_logging.inputs["roleArn"] == role.outputs["arn"]


def test_iot_log_group_is_created_with_retention(any_stack: StackRun) -> None:
    log_group = named(any_stack, "iot-logs")
    assert log_group.inputs["name"] == "AWSIotLogsV2"
    assert log_group.inputs["retentionInDays"] == {"dev": 14, "prod": 365}[any_stack.stack]
    assert log_group.urn in any_stack.one("aws:iot/loggingOptions:LoggingOptions").dependencies


def test_logging_role_trusts_iot_for_this_account_and_writes_only_iot_logs(any_stack: StackRun) -> None:
    role = named(any_stack, "iot-logging-role")
    trust = document(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{
        "Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    }]
    grant = named(any_stack, "iot-logging-policy")
    assert grant.inputs["role"] == role.id
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:AWSIotLogsV2"
    statements = document(grant.inputs["policy"])["Statement"]
    assert {(tuple(s["Action"]), tuple(s["Resource"])) for s in statements} == {
        (("logs:CreateLogGroup", "logs:PutRetentionPolicy"), (log_group,)),
        (("logs:CreateLogStream", "logs:PutLogEvents"), (f"{log_group}:*",)),
    }


def test_a_stack_that_does_not_own_account_logging_still_logs_the_group() -> None:
    stack = run_stack("dev", {"quarantine": {"manageAccountLogging": False, "groupName": "ISOLATED"}})
    assert stack.of_type("aws:iot/loggingOptions:LoggingOptions") == []
    log_groups = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert all(r.inputs.get("name") != "AWSIotLogsV2" for r in log_groups)
    assert stack.one("aws-native:iot:ResourceSpecificLogging").inputs["targetName"] == "ISOLATED"
    logging_params = named(stack, "enable-logging").inputs["actionParams"]["enableIoTLoggingParams"]
    assert logging_params["roleArnForLogging"] == named(stack, "iot-logging-role").outputs["arn"]
    # The group name reaches everything that names the group.
    assert stack.one("aws:iot/thingGroup:ThingGroup").inputs["name"] == "ISOLATED"
    add_params = named(stack, "add-things").inputs["actionParams"]["addThingsToThingGroupParams"]
    assert add_params["thingGroupNames"] == ["ISOLATED"]
    for function in ("contain", "release"):
        variables = named(stack, f"{function}-function").inputs["environment"]["variables"]
        assert variables[EnvVar.QUARANTINE_GROUP_NAME] == "ISOLATED"
    assert stack.outputs[out.QUARANTINE_GROUP_NAME] == "ISOLATED"


# --- mitigation actions ----------------------------------------------------------------------------

def mitigation_role(stack: StackRun, action: RegisteredResource) -> tuple[RegisteredResource, str]:
    role = next(r for r in stack.of_type("aws:iam/role:Role") if r.outputs["arn"] == action.inputs["roleArn"])
    trust = document(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    attachments = [
        a for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs.get("role") == role.id
    ]
    assert len(attachments) == 1
    assert attachments[0].urn in action.dependencies
    assert not [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs.get("role") == role.id]
    return role, attachments[0].inputs["policyArn"]


def test_add_to_quarantine_action_overrides_dynamic_groups(any_stack: StackRun) -> None:
    action = named(any_stack, "add-things")
    assert action.type == "aws-native:iot:MitigationAction"
    assert action.inputs["actionName"] == f"fleetguard-{any_stack.stack}-quarantine-add-things"
    assert action.inputs["actionParams"] == {
        "addThingsToThingGroupParams": {"thingGroupNames": ["QUARANTINED"], "overrideDynamicGroups": True},
    }
    _, managed = mitigation_role(any_stack, action)
    assert managed == f"{MANAGED}AWSIoTDeviceDefenderAddThingsToThingGroupMitigationAction"
    assert {"key": "Project", "value": "fleetguard"} in action.inputs["tags"]


def test_deactivate_certificate_action(any_stack: StackRun) -> None:
    action = named(any_stack, "deactivate-cert")
    assert action.inputs["actionParams"] == {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}
    _, managed = mitigation_role(any_stack, action)
    assert managed == f"{MANAGED}AWSIoTDeviceDefenderUpdateDeviceCertMitigationAction"


def test_enable_logging_action_uses_the_iot_logging_role(any_stack: StackRun) -> None:
    action = named(any_stack, "enable-logging")
    assert action.inputs["actionParams"] == {"enableIoTLoggingParams": {
        "logLevel": {"dev": "INFO", "prod": "ERROR"}[any_stack.stack],
        "roleArnForLogging": named(any_stack, "iot-logging-role").outputs["arn"],
    }}
    role, managed = mitigation_role(any_stack, action)
    assert managed == f"{MANAGED}AWSIoTDeviceDefenderEnableIoTLoggingMitigationAction"
    assert role.outputs["arn"] != action.inputs["actionParams"]["enableIoTLoggingParams"]["roleArnForLogging"]


@pytest.mark.parametrize("suffix", ["add-things", "deactivate-cert", "enable-logging"])
def test_the_first_mitigation_actions_keep_their_logical_names_and_parent(any_stack: StackRun, suffix: str) -> None:
    """Created by a shared helper now; a changed name or parent would make the engine replace them."""
    root = component(any_stack)
    for resource_suffix, type_token in (
        (suffix, "aws-native:iot:MitigationAction"),
        (f"{suffix}-role", "aws:iam/role:Role"),
        (f"{suffix}-role-policy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
    ):
        resource = any_stack.by_name(f"{root.name}-{resource_suffix}")
        assert (resource.type, resource.parent) == (type_token, root.urn)


def test_each_mitigation_action_has_its_own_role(any_stack: StackRun) -> None:
    actions = [
        r for r in descendants(any_stack, component(any_stack)) if r.type == "aws-native:iot:MitigationAction"
    ]
    assert len(actions) == 3
    assert len({a.inputs["roleArn"] for a in actions}) == 3


# --- the contain and release functions --------------------------------------------------------------

def role_statements(stack: StackRun, function: str) -> dict[str, dict[str, Any]]:
    grant = named(stack, f"{function}-policy")
    assert grant.inputs["role"] == named(stack, f"{function}-role").id
    return {entry["Sid"]: entry for entry in document(grant.inputs["policy"])["Statement"]}


def grants(statements: dict[str, dict[str, Any]]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        sid: (entry["Action"], entry["Resource"])
        for sid, entry in statements.items()
        if sid != "WriteOwnLogs"
    }


def test_contain_role_can_do_exactly_what_the_handler_calls(any_stack: StackRun) -> None:
    group_arn = any_stack.one("aws:iot/thingGroup:ThingGroup").outputs["arn"]
    expected = {
        "AddToQuarantineGroup": (["iot:AddThingToThingGroup"], [group_arn, THINGS]),
        "ReadThingGroups": (["iot:DescribeThing", "iot:ListThingGroupsForThing"], [THINGS]),
        "FlagQuarantineInShadow": (["iot:UpdateThingShadow"], [THINGS]),
    }
    if any_stack.stack == "prod":  # Incident Manager is enabled in prod only
        # IAM authorises ListRelatedItems against the incident record and the plan that opened it.
        plan = any_stack.one("aws:ssmincidents/responsePlan:ResponsePlan")
        expected["ReadIncidentDevices"] = (
            ["ssm-incidents:ListRelatedItems"],
            [f"arn:aws:ssm-incidents::{ACCOUNT_ID}:incident-record/{plan.inputs['name']}/*", plan.outputs["arn"]],
        )
    else:  # dev opens OpsCenter incidents: contain reads the device from one and records progress on it
        expected["RecordOnOwnOpsItems"] = (["ssm:GetOpsItem", "ssm:UpdateOpsItem"], [OPS_ITEMS])
    assert grants(role_statements(any_stack, "contain")) == expected


def test_release_role_can_do_exactly_what_the_handler_calls(any_stack: StackRun) -> None:
    group_arn = any_stack.one("aws:iot/thingGroup:ThingGroup").outputs["arn"]
    expected = {
        "RemoveFromQuarantineGroup": (["iot:RemoveThingFromThingGroup"], [group_arn, THINGS]),
        "ReadThingGroups": (["iot:DescribeThing", "iot:ListThingGroupsForThing"], [THINGS]),
        "FlagQuarantineInShadow": (["iot:UpdateThingShadow"], [THINGS]),
    }
    if any_stack.stack == "dev":  # release resolves the OpsItem
        expected["RecordOnOwnOpsItems"] = (["ssm:UpdateOpsItem"], [OPS_ITEMS])
    else:  # prod opens secure tunnels: release closes the device's and deletes their token secrets
        expected["ListDeviceTunnels"] = (["iot:ListTunnels"], ["*"])
        expected["CloseDeviceTunnels"] = (["iot:CloseTunnel", "iot:DescribeTunnel"], [f"{IOT}:tunnel/*"])
        expected["DeleteTunnelTokens"] = (
            ["secretsmanager:DeleteSecret"],
            [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:fleetguard-prod-tunnel/*"],
        )
    assert grants(role_statements(any_stack, "release")) == expected


@pytest.mark.parametrize("function", ["contain", "release"])
def test_opsitem_access_is_limited_to_the_stacks_own_opsitems(dev_stack: StackRun, function: str) -> None:
    granted = role_statements(dev_stack, function)["RecordOnOwnOpsItems"]
    assert granted["Condition"] == {"StringEquals": {"aws:ResourceTag/fleetguard:stack": "fleetguard-dev"}}


@pytest.mark.parametrize(("function", "retry_mode"), [("contain", "adaptive"), ("release", "standard")])
def test_function_environment_runtime_and_handler(
    any_stack: StackRun, function: str, retry_mode: str
) -> None:
    lambda_function = named(any_stack, f"{function}-function")
    inputs = lambda_function.inputs
    assert inputs["environment"]["variables"] == {
        EnvVar.QUARANTINE_GROUP_NAME: "QUARANTINED",
        EnvVar.POWERTOOLS_SERVICE_NAME: f"fleetguard-{function}",
        EnvVar.POWERTOOLS_LOG_LEVEL: {"dev": "DEBUG", "prod": "INFO"}[any_stack.stack],
        EnvVar.AWS_RETRY_MODE: retry_mode,
        EnvVar.IOT_DATA_ENDPOINT: "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com",
        # Only release, only with tunnels on: it closes the device's tunnels and deletes their secrets.
        **({EnvVar.TUNNEL_SECRET_PREFIX: "fleetguard-prod-tunnel/"}
           if (any_stack.stack, function) == ("prod", "release") else {}),
    }
    assert inputs["runtime"] == "python3.13"
    assert inputs["layers"] == [
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:36"
    ]
    assert inputs["timeout"] == {"dev": 60, "prod": 120}[any_stack.stack]
    assert inputs["memorySize"] == {"dev": 256, "prod": 512}[any_stack.stack]
    module_name, attribute = inputs["handler"].rsplit(".", 1)
    assert module_name == f"functions.{function}"
    assert callable(getattr(importlib.import_module(module_name), attribute))
    log_group = named(any_stack, f"{function}-logs")
    assert log_group.inputs["retentionInDays"] == {"dev": 14, "prod": 365}[any_stack.stack]


# --- wiring and outputs ----------------------------------------------------------------------------

def test_outputs_name_the_group_policy_actions_and_functions(any_stack: StackRun) -> None:
    env = any_stack.stack
    prefix = f"fleetguard-{env}-quarantine"
    outputs = any_stack.outputs
    assert outputs[out.QUARANTINE_GROUP_NAME] == "QUARANTINED"
    assert outputs[out.QUARANTINE_GROUP_ARN] == f"{IOT}:thinggroup/QUARANTINED"
    assert outputs[out.QUARANTINE_POLICY_NAME] == prefix
    for name_key, arn_key, suffix in (
        (out.ADD_TO_QUARANTINE_ACTION_NAME, out.ADD_TO_QUARANTINE_ACTION_ARN, "add-things"),
        (out.DEACTIVATE_CERTIFICATE_ACTION_NAME, out.DEACTIVATE_CERTIFICATE_ACTION_ARN, "deactivate-cert"),
        (out.ENABLE_LOGGING_ACTION_NAME, out.ENABLE_LOGGING_ACTION_ARN, "enable-logging"),
    ):
        assert outputs[name_key] == f"{prefix}-{suffix}"
        assert outputs[arn_key] == f"{IOT}:mitigationaction/{prefix}-{suffix}"
    for name_key, arn_key, function in (
        (out.CONTAIN_FUNCTION_NAME, out.CONTAIN_FUNCTION_ARN, "contain"),
        (out.RELEASE_FUNCTION_NAME, out.RELEASE_FUNCTION_ARN, "release"),
    ):
        assert outputs[name_key] == f"{prefix}-{function}"
        assert outputs[arn_key] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{prefix}-{function}"


def test_every_quarantine_resource_belongs_to_the_component(any_stack: StackRun) -> None:
    root = component(any_stack)
    children = descendants(any_stack, root)
    assert all(r.name.startswith(root.name) for r in children)
    taggable = [r for r in children if r.custom and "tags" in r.inputs]
    assert taggable
    for resource in taggable:
        tags = resource.inputs["tags"]
        keys = {t["key"] for t in tags} if isinstance(tags, list) else set(tags)
        assert {"Project", "Environment", "Owner"} <= keys, resource.name


def _policy_documents(stack: StackRun) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for resource in stack.resources:
        for key in ("policy", "assumeRolePolicy"):
            text = resource.inputs.get(key)
            if isinstance(text, str) and text.lstrip().startswith("{"):
                documents.append((f"{resource.name}.{key}", json.loads(text)))
    return documents


def test_no_policy_the_project_writes_has_a_wildcard_action(any_stack: StackRun) -> None:
    documents = _policy_documents(any_stack)
    assert any(name.endswith("quarantine-policy.policy") for name, _ in documents)
    for name, policy in documents:
        statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
        for entry in statements:
            assert "NotAction" not in entry, name
            assert all("*" not in action for action in _as_list(entry["Action"])), name

"""The incident runbook: the SSM Automation document (schema 0.3) an incident runs, as YAML.

Contain (automated), CheckContainment, ContainManually, Analysis and Recovery (people); with online
forensics, ApproveTunnel (aws:approve) and OnlineForensics (the tunnel function) between Analysis and
Recovery. Every step output a later step uses is declared with a selector (the reference sample referenced
one it never declared). The Analysis step's text is a numbered list built from parts, so further
investigation aids append a part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

from components.automation import automation_yaml
from functions.contract import OUTPUT_TYPES, OutputKey, RequestField, Status
from functions.contract_tunnel import TUNNEL_OUTPUT_TYPES, TunnelOutputKey
from settings.facts import IOT_LOG_GROUP
from settings.tunnel import TunnelSettings

CONTAIN_STEP: Final = "Contain"
INCIDENT_PARAMETER: Final = "IncidentRecordArn"
OPS_ITEM_PARAMETER: Final = "OpsItemId"
ROLE_PARAMETER: Final = "AutomationAssumeRole"
CONTAIN_STEP_TIMEOUT_SECONDS: Final = 300
"""The longest an ``aws:invokeLambdaFunction`` step waits (and the contain function's own ceiling)."""
# Each incident parameter is optional (a run gets one or the other), so each pattern also takes "".
INCIDENT_RECORD_ARN_PATTERN: Final = (
    r"^(arn:aws(-cn|-us-gov)?:ssm-incidents:[a-z0-9-]*:[0-9]{12}:incident-record/.+)?$"
)
OPS_ITEM_ID_PATTERN: Final = r"^(oi-[0-9a-f]{12})?$"
"""The ssm model's OpsItemId pattern (``^(oi)-[0-9a-f]{12}$``), or empty."""
ROLE_ARN_PATTERN: Final = r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/.+$"
K = TypeVar("K", bound=StrEnum)
APPROVE_STEP: Final = "ApproveTunnel"
TUNNEL_STEP: Final = "OnlineForensics"
RECOVERY_STEP: Final = "Recovery"


CONSOLE_HOSTS: Final[Mapping[str, str]] = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
"""The AWS Management Console's host per partition, for links in the runbook's instructions."""


@dataclass(frozen=True)
class AuditDocuments:
    """The audit Automation documents a responder runs by hand, linked from the Analysis step."""

    on_demand: str
    """Runs an on-demand audit and summarises its findings by check."""
    mitigation: str | None
    """Starts an approved audit mitigation task (None when no check's mitigation needs approval)."""
    partition: str
    region: str

    def link(self, document_name: str) -> str:
        """A Markdown link that opens the console's Execute automation page for the document."""
        host = CONSOLE_HOSTS.get(self.partition, CONSOLE_HOSTS["aws"])
        return (f"[{document_name}](https://{host}/systems-manager/automation/execute/{document_name}"
                f"?region={self.region})")


@dataclass(frozen=True)
class TunnelSteps:
    """What the approval and OnlineForensics steps need: who approves, where they hear of it, the function."""

    settings: TunnelSettings
    function_arn: str
    approval_topic_arn: str


def runbook_document(
    *,
    contain_function_arn: str,
    release_function_name: str,
    quarantine_group_name: str,
    query_names: Sequence[str],
    runbook_name: str,
    tunnel: TunnelSteps | None = None,
    audit_documents: AuditDocuments | None = None,
) -> dict[str, Any]:
    """The Automation runbook (schema 0.3): Contain (automated), then Analysis and Recovery (people); with
    ``tunnel``, an approval and the OnlineForensics step between them; the Analysis step links
    ``audit_documents``."""
    after_analysis = APPROVE_STEP if tunnel else RECOVERY_STEP
    return {
        "schemaVersion": "0.3",
        "description": (
            f"# {runbook_name}\n\n"
            "Response to an AWS IoT Device Defender violation: quarantine the incident's devices, "
            "investigate them, then recover them. Started by Incident Manager with the incident record, or "
            "by the fleetguard intake with the OpsCenter OpsItem."
        ),
        "assumeRole": f"{{{{ {ROLE_PARAMETER} }}}}",
        "parameters": {
            INCIDENT_PARAMETER: {
                "type": "String",
                "description": "The incident record (Incident Manager passes INCIDENT_RECORD_ARN).",
                "default": "",
                "allowedPattern": INCIDENT_RECORD_ARN_PATTERN,
            },
            OPS_ITEM_PARAMETER: {
                "type": "String",
                "description": "The OpsCenter OpsItem (the intake passes it when Incident Manager is not used).",
                "default": "",
                "allowedPattern": OPS_ITEM_ID_PATTERN,
            },
            ROLE_PARAMETER: {
                "type": "String",
                "description": (
                    "Role the runbook assumes; it may only invoke the contain function (and, with online "
                    "forensics, request the approval and invoke the tunnel function)."
                ),
                "allowedPattern": ROLE_ARN_PATTERN,
            },
        },
        "outputs": [f"{CONTAIN_STEP}.{key}" for key in OUTPUT_TYPES]
        + ([f"{TUNNEL_STEP}.{key}" for key in TUNNEL_OUTPUT_TYPES] if tunnel else []),
        "mainSteps": [
            {
                "name": CONTAIN_STEP,
                "action": "aws:invokeLambdaFunction",
                "description": (
                    "Quarantine the devices named in the incident's related items: the contain function "
                    f"adds each to the `{quarantine_group_name}` thing group (whose policy denies all but "
                    "investigation traffic) and marks its shadow."
                ),
                "timeoutSeconds": CONTAIN_STEP_TIMEOUT_SECONDS,
                # Containing twice is safe, so one retry rides out a transient failure.
                "maxAttempts": 2,
                "onFailure": "step:ContainManually",
                "inputs": _incident_invocation(contain_function_arn, runbook_name),
                "outputs": _payload_outputs(OUTPUT_TYPES),
                "nextStep": "CheckContainment",
            },
            {
                "name": "CheckContainment",
                "action": "aws:branch",
                # A contain function that raised can leave Contain.status unresolved: people take over.
                "onFailure": "step:ContainManually",
                "description": (
                    "Continue to analysis when every device is confirmed quarantined, or when the incident "
                    "names none (audit finding, or an alert storm contained in bulk)."
                ),
                "inputs": {
                    "Choices": [
                        {
                            "NextStep": "Analysis",
                            "Variable": f"{{{{ {CONTAIN_STEP}.{OutputKey.STATUS} }}}}",
                            "StringEquals": status.value,
                        }
                        for status in (Status.CONTAINED, Status.NO_DEVICES)
                    ],
                    "Default": "ContainManually",
                },
            },
            {
                "name": "ContainManually",
                "action": "aws:pause",
                "description": (
                    "## Automatic containment did not complete\n\n"
                    "The devices are the incident's *Involved resources*, or the OpsItem's *Related resources* "
                    "(IoT thing ARNs). For each:\n\n"
                    f"1. `aws iot add-thing-to-thing-group --thing-group-name {quarantine_group_name} "
                    "--thing-name <thing>`\n"
                    "2. If the thing is missing from the registry, revoke its certificate instead: "
                    "`aws iot update-certificate --certificate-id <id> --new-status REVOKED`\n\n"
                    "Resume this automation when every device is isolated."
                ),
                "inputs": {},
                "nextStep": "Analysis",
            },
            {
                "name": "Analysis",
                "action": "aws:pause",
                "description": analysis_text(query_names, tunnel is not None, audit_documents),
                "inputs": {},
                "nextStep": after_analysis,
            },
            *(tunnel_steps(tunnel, runbook_name) if tunnel else []),
            {
                "name": RECOVERY_STEP,
                "action": "aws:pause",
                "description": (
                    "## Recovery\n\n"
                    "Decide per device: is it mission critical, is it redundant, does it hold sensitive data, "
                    "can it be reached physically?\n\n"
                    "1. Return it to a known state: a firmware update job to the device (`aws iot create-job "
                    "--job-id <id> --targets <thing ARN> --job-template-arn <recovery job template ARN>`), or a "
                    "factory reset on site.\n"
                    "2. Rotate its credentials if they may have leaked: a new certificate, and "
                    "`aws iot update-certificate --new-status REVOKED` for the old one.\n"
                    "3. Release it from quarantine: `aws lambda invoke --function-name "
                    f"{release_function_name} --cli-binary-format raw-in-base64-out "
                    "--payload '{\"thingName\": \"<thing>\"}' release.json`; add "
                    "`\"opsItemId\": \"<OpsItem id>\"` to the payload to resolve the OpsItem with it.\n"
                    "4. Resolve the incident and start the post-incident analysis.\n\n"
                    "Resume to finish this automation."
                ),
                "inputs": {},
                "isEnd": True,
            },
        ],
    }


def analysis_text(query_names: Sequence[str], tunnel_step: bool, audit_documents: AuditDocuments | None = None) -> str:
    """The Analysis step's instructions: a numbered list, so further investigation aids append an item."""
    queries = "\n".join(f"   - `{query}`" for query in query_names)
    online = (
        f"Online analysis, if needed: resume this step; the next one ({APPROVE_STEP}) asks the approvers to "
        f"open an SSH secure tunnel, and {TUNNEL_STEP} opens it and names the secret holding its token "
        f"(`{TUNNEL_STEP}.{TunnelOutputKey.SECRET_ARNS}`)."
        if tunnel_step else
        "Online analysis, if needed: open a secure tunnel (`aws iotsecuretunneling open-tunnel "
        "--destination-config thingName=<thing>,services=SSH --timeout-config maxLifetimeTimeoutMinutes=60`) "
        "and connect with the local proxy."
    )
    items = [
        f"CloudWatch Logs Insights saved queries (IoT logs in `{IOT_LOG_GROUP}`; quarantined devices log at "
        f"DEBUG):\n{queries}",
        "`aws iot list-active-violations --thing-name <thing>` and "
        "`aws iot list-violation-events --thing-name <thing> --start-time <t> --end-time <t>`.",
        "Evidence the device publishes to its forensic topic while quarantined.",
        online,
    ]
    if audit_documents is not None:
        items.append(
            f"Audit the account now: run {audit_documents.link(audit_documents.on_demand)} (default: the "
            "enabled critical checks); its Summarise step lists the findings by check."
        )
    return (
        "## Analysis\n\n"
        "Contained devices: this automation's outputs (`Contain.things`) and the incident's "
        "related items. When `Contain.status` is `NO_DEVICES` the incident names no device: for an "
        "alert storm, Device Defender mitigation tasks quarantine its devices in bulk (`aws iot "
        "list-detect-mitigation-actions-executions --task-id <task>`, task ids in the timeline); "
        f"for an audit finding, {_audit_mitigation_text(audit_documents)} Answer who, what, when, where and "
        f"why, offline first:\n\n{_numbered(items)}\n\n"
        "Record findings in the incident timeline (or the OpsItem's operational data), then resume."
    )


def _audit_mitigation_text(audit_documents: AuditDocuments | None) -> str:
    automatic = "the mitigation tasks started for its checks are in the timeline (or the OpsItem's operational data)"
    if audit_documents is None or audit_documents.mitigation is None:
        return f"{automatic}."
    return (
        f"{automatic}; a check whose mitigation needs approval is mitigated by running "
        f"{audit_documents.link(audit_documents.mitigation)} with the audit task id and the check name."
    )


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))


def tunnel_steps(tunnel: TunnelSteps, runbook_name: str) -> list[dict[str, Any]]:
    """Approval, then the tunnel. A rejection or an approval that times out fails the approval step, whose
    onFailure goes on to Recovery without a tunnel; so does a tunnel that cannot be opened."""
    settings = tunnel.settings
    return [
        {
            "name": APPROVE_STEP,
            "action": "aws:approve",
            "description": "Approve opening an SSH secure tunnel to the incident's quarantined devices.",
            "timeoutSeconds": settings.approval_timeout_minutes * 60,
            "onFailure": f"step:{RECOVERY_STEP}",
            "inputs": {
                "NotificationArn": tunnel.approval_topic_arn,
                "Message": (
                    f"{runbook_name}: approve an SSH secure tunnel (closes after "
                    f"{settings.max_lifetime_minutes} minutes) to the quarantined devices of incident "
                    f"{{{{ {INCIDENT_PARAMETER} }}}}{{{{ {OPS_ITEM_PARAMETER} }}}}; reject to recover "
                    "without one."
                ),
                "MinRequiredApprovals": settings.min_required_approvals,
                "Approvers": list(settings.approvers),
            },
            "nextStep": TUNNEL_STEP,
        },
        {
            "name": TUNNEL_STEP,
            "action": "aws:invokeLambdaFunction",
            "description": (
                "Open an SSH secure tunnel to each quarantined device of the incident. The source access "
                f"token is in the secret named by `{TUNNEL_STEP}.{TunnelOutputKey.SECRET_ARNS}` (only the "
                "responders' roles may read it); releasing a device closes its tunnels and deletes the secrets."
            ),
            "timeoutSeconds": CONTAIN_STEP_TIMEOUT_SECONDS,
            # The function finds the tunnel an earlier attempt opened for the incident instead of a second one.
            "maxAttempts": 2,
            "onFailure": f"step:{RECOVERY_STEP}",
            "inputs": _incident_invocation(tunnel.function_arn, runbook_name),
            "outputs": _payload_outputs(TUNNEL_OUTPUT_TYPES),
            "nextStep": RECOVERY_STEP,
        },
    ]


def _incident_invocation(function_arn: str, runbook_name: str) -> dict[str, Any]:
    """Inputs of a step invoking a function with the incident (record or OpsItem; SSM passes "" for the
    other): the function finds the devices from it, never from the account."""
    return {
        "FunctionName": function_arn,
        "InvocationType": "RequestResponse",
        "InputPayload": {
            RequestField.INCIDENT_RECORD_ARN.value: f"{{{{ {INCIDENT_PARAMETER} }}}}",
            RequestField.OPS_ITEM_ID.value: f"{{{{ {OPS_ITEM_PARAMETER} }}}}",
            RequestField.REASON.value: f"Incident runbook {runbook_name}",
        },
    }


def _payload_outputs(types: Mapping[K, str]) -> list[dict[str, str]]:
    """A step output per result key of the function, selected from its JSON answer."""
    return [{"Name": str(key), "Selector": f"$.Payload.{key}", "Type": kind} for key, kind in types.items()]


def runbook_yaml(**fields: Any) -> str:
    """``runbook_document`` as the YAML SSM stores."""
    return automation_yaml(runbook_document(**fields))

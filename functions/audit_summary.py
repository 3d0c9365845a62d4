"""The script step of the on-demand audit Automation document: summarise one audit task's findings by check.

SSM Automation runs this module's source as the ``aws:executeScript`` step's script (the document embeds
it verbatim), so it imports only the standard library at load time; boto3, which that runtime provides,
is imported by the handler. The step declares one output per ``SummaryKey`` with the selector
``$.Payload.<key>`` and the type in ``SUMMARY_TYPES``.

Per check, the counts come from DescribeAuditTask's ``auditDetails`` (exact, however many resources);
the findings listed come from ListAuditFindings, paginated and capped at ``FINDINGS_PER_CHECK`` per check,
suppressed ones counted apart. A task that did not complete (FAILED, CANCELED, or still IN_PROGRESS when
the wait gave up) is summarised as far as its checks got.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

HANDLER: Final = "summarise_audit"
"""The step's ``Handler``: the function SSM calls with the step's InputPayload."""
TASK_ID_FIELD: Final = "taskId"
"""The InputPayload field naming the audit task (StartOnDemandAuditTask's output)."""
FINDINGS_PER_CHECK: Final = 20
"""Findings listed per non-compliant check: enough for a responder to start on, while the step's outputs
stay small. The counts are never capped."""
PAGE_SIZE: Final = 100
"""ListAuditFindings' maxResults (the API allows 1-250)."""
UNFINISHED_CHECK_STATUSES: Final = ("FAILED", "CANCELED")


class SummaryKey(StrEnum):
    """The keys of the summary: each is an output of the document's script step."""

    TASK_STATUS = "taskStatus"
    SUMMARY = "summary"
    NON_COMPLIANT_CHECKS = "nonCompliantChecks"
    UNFINISHED_CHECKS = "unfinishedChecks"
    NON_COMPLIANT_RESOURCES = "nonCompliantResources"
    SUPPRESSED_RESOURCES = "suppressedResources"
    FINDINGS = "findings"


SUMMARY_TYPES: Final[Mapping[SummaryKey, str]] = {
    SummaryKey.TASK_STATUS: "String",
    SummaryKey.SUMMARY: "String",
    SummaryKey.NON_COMPLIANT_CHECKS: "StringList",
    SummaryKey.UNFINISHED_CHECKS: "StringList",
    SummaryKey.NON_COMPLIANT_RESOURCES: "Integer",
    SummaryKey.SUPPRESSED_RESOURCES: "Integer",
    SummaryKey.FINDINGS: "MapList",
}
"""Each summary key's SSM Automation output type."""


def summarise_audit(events: Mapping[str, Any], context: Any) -> dict[str, Any]:  # noqa: ARG001 - SSM's signature
    """The step's handler: ``events`` is the InputPayload, ``{"taskId": <audit task id>}``."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - the runtime provides it; tests never load it
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    task_id = events.get(TASK_ID_FIELD)
    if not isinstance(task_id, str) or not task_id:
        raise ValueError(f"{TASK_ID_FIELD}: expected the audit task id, got {task_id!r}")
    # aws:executeScript does not retry throttled calls itself; standard mode backs off.
    client = boto3.client("iot", config=Config(retries={"mode": "standard", "max_attempts": 8}))
    return summarise(client, task_id)


def summarise(client: Any, task_id: str, *, findings_per_check: int = FINDINGS_PER_CHECK) -> dict[str, Any]:
    """The summary of audit task ``task_id`` (keys: ``SummaryKey``)."""
    task = client.describe_audit_task(taskId=task_id)
    details: Mapping[str, Mapping[str, Any]] = task.get("auditDetails", {})
    non_compliant = sorted(name for name, check in details.items() if check.get("nonCompliantResourcesCount", 0))
    unfinished = sorted(
        name for name, check in details.items() if check.get("checkRunStatus") in UNFINISHED_CHECK_STATUSES
    )
    findings = [
        finding
        for name in non_compliant
        for finding in _check_findings(client, task_id, name, findings_per_check)
    ]
    lines = [f"Audit task {task_id}: {task['taskStatus']}"]
    for name in sorted(details):
        lines.append(f"{name}: {_check_line(details[name])}")
    return {
        SummaryKey.TASK_STATUS.value: task["taskStatus"],
        SummaryKey.SUMMARY.value: "\n".join(lines),
        SummaryKey.NON_COMPLIANT_CHECKS.value: non_compliant,
        SummaryKey.UNFINISHED_CHECKS.value: unfinished,
        SummaryKey.NON_COMPLIANT_RESOURCES.value: sum(
            _unsuppressed(check) for check in details.values()
        ),
        SummaryKey.SUPPRESSED_RESOURCES.value: sum(
            int(check.get("suppressedNonCompliantResourcesCount", 0)) for check in details.values()
        ),
        SummaryKey.FINDINGS.value: findings,
    }


def _unsuppressed(check: Mapping[str, Any]) -> int:
    """Non-compliant resources nobody suppressed (the suppressed ones are a subset of the non-compliant)."""
    return int(check.get("nonCompliantResourcesCount", 0)) - int(check.get("suppressedNonCompliantResourcesCount", 0))


def _check_line(check: Mapping[str, Any]) -> str:
    status = str(check.get("checkRunStatus", "UNKNOWN"))
    if status in UNFINISHED_CHECK_STATUSES:
        reason = check.get("message") or check.get("errorCode") or "no reason given"
        return f"{status} ({reason})"
    suppressed = int(check.get("suppressedNonCompliantResourcesCount", 0))
    return (
        f"{status}, {_unsuppressed(check)} of {int(check.get('totalResourcesCount', 0))} resources non-compliant"
        + (f", {suppressed} more suppressed" if suppressed else "")
    )


def _check_findings(client: Any, task_id: str, check_name: str, limit: int) -> list[dict[str, str]]:
    """Up to ``limit`` unsuppressed findings of one check, then as many suppressed ones as fit."""
    unsuppressed: list[dict[str, str]] = []
    suppressed: list[dict[str, str]] = []
    request: dict[str, Any] = {"taskId": task_id, "checkName": check_name, "maxResults": PAGE_SIZE}
    while len(unsuppressed) < limit:
        page = client.list_audit_findings(**request)
        for finding in page.get("findings", []):
            (suppressed if finding.get("isSuppressed") else unsuppressed).append(_finding(finding))
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    return (unsuppressed + suppressed)[:limit]


def _finding(finding: Mapping[str, Any]) -> dict[str, str]:
    """One finding as a MapList entry (SSM maps of strings): the check, the resource, why, and whether
    someone suppressed it."""
    resource = finding.get("nonCompliantResource", {})
    identifier = resource.get("resourceIdentifier", {})
    return {
        "checkName": str(finding.get("checkName", "")),
        "severity": str(finding.get("severity", "")),
        "resourceType": str(resource.get("resourceType", "")),
        "resource": ", ".join(f"{key}={_identifier_text(value)}" for key, value in sorted(identifier.items())),
        "reason": str(finding.get("reasonForNonComplianceCode", "")),
        "suppressed": "true" if finding.get("isSuppressed") else "false",
        "findingId": str(finding.get("findingId", "")),
    }


def _identifier_text(value: Any) -> str:
    """A resource identifier part; the structured ones (policy version, issuer certificate) joined."""
    if isinstance(value, Mapping):
        return "/".join(str(part) for _, part in sorted(value.items()))
    return str(value)

"""The on-demand audit document's summary script against a stubbed IoT client (moto has no Device Defender
audit APIs): counts per check from DescribeAuditTask, findings from ListAuditFindings paginated and capped,
suppressed findings counted apart, and a clear error for a payload without a task id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from functions.audit_summary import FINDINGS_PER_CHECK, PAGE_SIZE, SUMMARY_TYPES, SummaryKey, summarise, summarise_audit
from tests.functions.conftest import EVENTS_DIR

TASK_ID = json.loads((EVENTS_DIR / "on-demand-audit-summary-request.json").read_text())["taskId"]
SHARED = "DEVICE_CERTIFICATE_SHARED_CHECK"
PERMISSIVE = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"


def audit_task() -> dict[str, Any]:
    task: dict[str, Any] = json.loads((EVENTS_DIR / "on-demand-audit-task.json").read_text())
    return task


def finding(check: str, number: int, *, suppressed: bool = False) -> dict[str, Any]:
    return {
        "findingId": f"{check[:6]}-{number}",
        "taskId": TASK_ID,
        "checkName": check,
        "severity": "CRITICAL",
        "nonCompliantResource": {
            "resourceType": "DEVICE_CERTIFICATE",
            "resourceIdentifier": {"deviceCertificateId": f"{number:064x}"},
        },
        "reasonForNonComplianceCode": "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
        "isSuppressed": suppressed,
    }


def policy_finding() -> dict[str, Any]:
    return {
        "findingId": "policy-1", "checkName": PERMISSIVE, "severity": "CRITICAL",
        "nonCompliantResource": {
            "resourceType": "IOT_POLICY",
            "resourceIdentifier": {"policyVersionIdentifier": {"policyName": "lab-open", "policyVersionId": "3"}},
        },
        "reasonForNonComplianceCode": "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        "isSuppressed": False,
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, Any]]:
    client = boto3.client("iot", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield stubber, client
        stubber.assert_no_pending_responses()


def expect_task(stubber: Stubber, task: dict[str, Any]) -> None:
    stubber.add_response("describe_audit_task", task, {"taskId": TASK_ID})


def expect_findings(stubber: Stubber, check: str, findings: list[dict[str, Any]], *, token: str | None = None,
                    next_token: str | None = None) -> None:
    request: dict[str, Any] = {"taskId": TASK_ID, "checkName": check, "maxResults": PAGE_SIZE}
    if token:
        request["nextToken"] = token
    response: dict[str, Any] = {"findings": findings}
    if next_token:
        response["nextToken"] = next_token
    stubber.add_response("list_audit_findings", response, request)


def test_counts_come_per_check_from_the_task_and_findings_from_the_non_compliant_checks_only(
    stubbed: tuple[Stubber, Any],
) -> None:
    stubber, client = stubbed
    expect_task(stubber, audit_task())
    expect_findings(stubber, SHARED, [finding(SHARED, 1, suppressed=True), finding(SHARED, 2), finding(SHARED, 3)])
    expect_findings(stubber, PERMISSIVE, [policy_finding()])

    summary = summarise(client, TASK_ID)

    assert summary[SummaryKey.TASK_STATUS] == "COMPLETED"
    assert summary[SummaryKey.NON_COMPLIANT_CHECKS] == [SHARED, PERMISSIVE]
    assert summary[SummaryKey.UNFINISHED_CHECKS] == ["UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"]
    # 3 + 1 non-compliant, of which 1 suppressed.
    assert summary[SummaryKey.NON_COMPLIANT_RESOURCES] == 3
    assert summary[SummaryKey.SUPPRESSED_RESOURCES] == 1
    findings = summary[SummaryKey.FINDINGS]
    # Unsuppressed first within a check; the suppressed one is kept and marked.
    assert [(item["findingId"], item["suppressed"]) for item in findings] == [
        ("DEVICE-2", "false"), ("DEVICE-3", "false"), ("DEVICE-1", "true"), ("policy-1", "false"),
    ]
    assert findings[-1]["resource"] == "policyVersionIdentifier=lab-open/3"
    assert findings[0]["resource"] == f"deviceCertificateId={2:064x}"
    lines = summary[SummaryKey.SUMMARY].splitlines()
    assert lines[0] == f"Audit task {TASK_ID}: COMPLETED"
    assert f"{SHARED}: COMPLETED_NON_COMPLIANT, 2 of 120 resources non-compliant, 1 more suppressed" in lines
    assert "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK: FAILED (The check is not enabled in the " \
           "account audit configuration)" in lines
    assert "CA_CERTIFICATE_KEY_QUALITY_CHECK: COMPLETED_COMPLIANT, 0 of 2 resources non-compliant" in lines


def test_findings_are_paginated_and_capped_while_the_counts_are_not(stubbed: tuple[Stubber, Any]) -> None:
    stubber, client = stubbed
    task = audit_task()
    task["auditDetails"] = {SHARED: {**task["auditDetails"][SHARED], "nonCompliantResourcesCount": 500}}
    expect_findings_pages = [
        ([finding(SHARED, n) for n in range(3)], None, "page-2"),
        ([finding(SHARED, n) for n in range(3, 6)], "page-2", "page-3"),
    ]
    expect_task(stubber, task)
    for findings, token, next_token in expect_findings_pages:
        expect_findings(stubber, SHARED, findings, token=token, next_token=next_token)

    summary = summarise(client, TASK_ID, findings_per_check=5)

    # The second page filled the cap: the third is never asked for.
    assert len(summary[SummaryKey.FINDINGS]) == 5
    assert summary[SummaryKey.NON_COMPLIANT_RESOURCES] == 499


def test_a_task_that_failed_or_is_still_running_is_summarised_as_far_as_it_got(stubbed: tuple[Stubber, Any]) -> None:
    stubber, client = stubbed
    task = audit_task()
    task["taskStatus"] = "IN_PROGRESS"
    task["auditDetails"] = {SHARED: {"checkRunStatus": "IN_PROGRESS"}}
    expect_task(stubber, task)

    summary = summarise(client, TASK_ID)

    assert summary[SummaryKey.TASK_STATUS] == "IN_PROGRESS"
    assert summary[SummaryKey.NON_COMPLIANT_CHECKS] == []
    assert summary[SummaryKey.FINDINGS] == []
    assert summary[SummaryKey.SUMMARY].splitlines()[1] == f"{SHARED}: IN_PROGRESS, 0 of 0 resources non-compliant"


def test_every_summary_key_has_an_ssm_output_type() -> None:
    assert set(SUMMARY_TYPES) == set(SummaryKey)
    assert set(SUMMARY_TYPES.values()) <= {"String", "Integer", "Boolean", "StringList", "StringMap", "MapList"}
    assert FINDINGS_PER_CHECK <= PAGE_SIZE


def test_a_payload_without_the_task_id_is_refused_before_any_call() -> None:
    event = json.loads((EVENTS_DIR / "broken-on-demand-audit-summary-no-task-id.json").read_text())
    with pytest.raises(ValueError, match=r"taskId: expected the audit task id, got None"):
        summarise_audit(event, None)

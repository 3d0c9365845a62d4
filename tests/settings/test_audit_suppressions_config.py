"""``fleetguard:audit.suppressions``: what a suppression entry must be, judged against a fixed "today"."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from harness.mockstack import load_stack_config
from settings import load_settings, read_stack_config
from settings.audit import AuditSettings, parse_audit
from settings.reader import Problems, root

TODAY = date(2026, 6, 15)
CERTIFICATE_ID = "a1" * 32
SHARED_CERTIFICATE = {
    "check": "DEVICE_CERTIFICATE_SHARED_CHECK",
    "resource": {"deviceCertificateId": CERTIFICATE_ID},
    "expires": "2026-07-01",
    "reason": "Lab bench devices share one test certificate",
}


def read(suppressions: list[Any], **audit: Any) -> tuple[AuditSettings, list[str]]:
    problems = Problems()
    node = root({"audit": {**audit, "suppressions": suppressions}}, "audit", problems, "fleetguard")
    return parse_audit(node, today=TODAY), problems.items


def only_problem(entry: dict[str, Any], **audit: Any) -> str:
    _, problems = read([entry], **audit)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_dated_and_an_indefinite_suppression_are_read_as_the_api_takes_them() -> None:
    indefinite = {
        "check": "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        "resource": {"policyVersionIdentifier": {"policyName": "lab-bench", "policyVersionId": "3"}},
        "expires": "indefinite",
        "reason": "Lab bench policy is wide on purpose",
    }
    audit, problems = read([SHARED_CERTIFICATE, indefinite])
    assert problems == []
    dated, forever = audit.suppressions
    assert (dated.check, dated.resource_identifier, dated.expires) == (
        "DEVICE_CERTIFICATE_SHARED_CHECK", {"deviceCertificateId": CERTIFICATE_ID}, date(2026, 7, 1),
    )
    assert forever.resource_identifier == {
        "policyVersionIdentifier": {"policyName": "lab-bench", "policyVersionId": "3"},
    }
    assert forever.expires is None
    assert forever.reason == "Lab bench policy is wide on purpose"


def test_the_shipped_stacks_only_suppress_indefinitely_so_their_dates_never_rot() -> None:
    for stack in ("dev", "prod"):
        audit = load_settings(read_stack_config(load_stack_config(stack))).audit
        assert all(suppression.expires is None for suppression in audit.suppressions), stack
    dev = load_settings(read_stack_config(load_stack_config("dev"))).audit
    assert [suppression.check for suppression in dev.suppressions] == ["CONFLICTING_CLIENT_IDS_CHECK"]


@pytest.mark.parametrize(("expires", "why"), [
    ("2026-06-15", "today has already begun"),
    ("2026-06-01", "past"),
    ("2026-02-30", "no such day"),
    ("15/07/2026", "not ISO"),
    ("2026-07-01T00:00:00Z", "a timestamp, not a day"),
    (20260701, "a number"),
    (None, "missing"),
])
def test_expiry_is_a_day_after_today_or_indefinite(expires: Any, why: str) -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "expires": expires})
    assert problem.startswith("fleetguard:audit.suppressions[0].expires: expected a date YYYY-MM-DD after today "
                              "(2026-06-15, UTC) or indefinite"), why


def test_a_date_a_yaml_reader_already_parsed_is_accepted() -> None:
    audit, problems = read([{**SHARED_CERTIFICATE, "expires": date(2026, 6, 16)}])
    assert problems == []
    assert audit.suppressions[0].expires == date(2026, 6, 16)


def test_unknown_check() -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "check": "DEVICE_CERTIFICATE_SHARING_CHECK"})
    assert problem.startswith("fleetguard:audit.suppressions[0].check: expected one of "
                              "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK")


def test_a_disabled_check_cannot_be_suppressed() -> None:
    problem = only_problem(SHARED_CERTIFICATE, checks={
        "DEVICE_CERTIFICATE_SHARED_CHECK": {"enabled": False, "exemptionReason": "Lab bench shares a certificate"},
    })
    assert problem == ("fleetguard:audit.suppressions[0].check: a suppression needs its check enabled in "
                       "fleetguard:audit.checks (got 'DEVICE_CERTIFICATE_SHARED_CHECK')")


def test_the_resource_kind_must_be_one_the_check_reports() -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "resource": {"caCertificateId": CERTIFICATE_ID}})
    assert problem.startswith("fleetguard:audit.suppressions[0].resource: expected an object with one key, the "
                              "kind DEVICE_CERTIFICATE_SHARED_CHECK reports: deviceCertificateId (got ")


@pytest.mark.parametrize("resource", [
    {},
    {"deviceCertificateId": CERTIFICATE_ID, "clientId": "bench-1"},
    {"thingName": "bench-1"},
    "a1" * 32,
])
def test_the_resource_is_one_known_kind(resource: Any) -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "resource": resource})
    assert problem.startswith("fleetguard:audit.suppressions[0].resource: expected an object with one key")


@pytest.mark.parametrize(("check", "resource", "expected"), [
    ("DEVICE_CERTIFICATE_SHARED_CHECK", {"deviceCertificateId": "a1" * 31},
     "deviceCertificateId: expected 64..64 characters matching (0x)?[a-fA-F0-9]+"),
    ("DEVICE_CERTIFICATE_SHARED_CHECK", {"deviceCertificateId": "z" * 64},
     "deviceCertificateId: expected 64..64 characters matching (0x)?[a-fA-F0-9]+"),
    ("LOGGING_DISABLED_CHECK", {"account": "12345678901"},
     "account: expected 12..12 characters matching [0-9]+"),
    ("IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", {"roleAliasArn": "arn:aws:iam::123456789012:role/bench"},
     "roleAliasArn: expected 1..2048 characters matching"),
    ("CONFLICTING_CLIENT_IDS_CHECK", {"clientId": "c" * 129}, "clientId: expected 1..128 characters"),
    ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", {"policyVersionIdentifier": {"policyName": "bench"}},
     "policyVersionIdentifier: expected policyName, policyVersionId"),
    ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
     {"policyVersionIdentifier": {"policyName": "bench", "policyVersionId": "v1"}},
     "policyVersionIdentifier.policyVersionId: expected 1.. characters matching [0-9]+"),
])
def test_a_malformed_identifier_names_its_key_and_aws_limits(check: str, resource: Any, expected: str) -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "check": check, "resource": resource})
    assert problem.startswith(f"fleetguard:audit.suppressions[0].resource.{expected}"), problem


def test_a_second_suppression_of_the_same_finding_is_refused() -> None:
    later = {**SHARED_CERTIFICATE, "expires": "indefinite", "reason": "Same finding, said twice over"}
    _, problems = read([SHARED_CERTIFICATE, later])
    assert len(problems) == 1
    assert problems[0].startswith("fleetguard:audit.suppressions: suppression (check and resource) "
                                  "'DEVICE_CERTIFICATE_SHARED_CHECK:{\"deviceCertificateId\":")


@pytest.mark.parametrize("reason", [None, "", "   ", "x" * 1001, "Lab bench\nshares one", "Prüfstand shares one"])
def test_a_reason_is_required_and_within_what_aws_accepts_as_a_description(reason: Any) -> None:
    problem = only_problem({**SHARED_CERTIFICATE, "reason": reason})
    assert problem.startswith("fleetguard:audit.suppressions[0].reason: expected ")


def test_every_problem_of_a_broken_entry_is_reported_with_its_index() -> None:
    _, problems = read([SHARED_CERTIFICATE, {"check": "LOGGING_DISABLED_CHECK", "resource": {"account": "1"},
                                             "expires": "soon", "colour": "red"}])
    assert [problem.split(":")[1].split(" ")[0] for problem in problems] == [
        "audit.suppressions[1].colour", "audit.suppressions[1].resource.account",
        "audit.suppressions[1].expires", "audit.suppressions[1].reason",
    ]


def test_suppressions_are_validated_with_the_rest_of_the_config() -> None:
    with pytest.raises(ValueError, match=r"fleetguard:audit\.suppressions\[0\]\.expires"):
        load_settings({"environment": "test", "owner": "iot-security",
                       "audit": {"suppressions": [{**SHARED_CERTIFICATE, "expires": "2000-01-01"}]}})

"""The ``AuditSuppression`` dynamic provider against a stubbed IoT client: the exact requests create,
update, delete and read make, what diff decides, and that the provider survives the trip through the
stack state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from components import audit_suppression
from components.audit_suppression import AuditSuppressionProvider, expiry_day, identity_digest
from harness.mockstack import REPO_ROOT
from tests.components.dynamic_support import REGION, loaded_from_state, stubbed_provider
from tests.support.iam_reference import authorisation_gaps

EVENTS = Path(__file__).parents[1] / "events"
CERTIFICATE = {"deviceCertificateId": "a1" * 32}
KEY = {"checkName": "DEVICE_CERTIFICATE_SHARED_CHECK", "resourceIdentifier": CERTIFICATE}
DATED: dict[str, Any] = {
    **KEY,
    "expirationDate": "2026-07-01",
    "suppressIndefinitely": False,
    "description": "Lab bench devices share one test certificate",
    "region": REGION,
}
INDEFINITE: dict[str, Any] = {**DATED, "expirationDate": None, "suppressIndefinitely": True}
JULY_FIRST = datetime(2026, 7, 1, tzinfo=UTC)
TOKEN = identity_digest("DEVICE_CERTIFICATE_SHARED_CHECK", CERTIFICATE)
ID = f"{REGION}/DEVICE_CERTIFICATE_SHARED_CHECK/{TOKEN[:16]}"


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, list[str], AuditSuppressionProvider]]:
    yield from stubbed_provider(lambda factory: AuditSuppressionProvider(client_factory=factory))


def described(name: str) -> dict[str, Any]:
    """A DescribeAuditSuppression response from tests/events, its epoch expiry as botocore parses it."""
    response: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if "expirationDate" in response:
        response["expirationDate"] = datetime.fromtimestamp(response["expirationDate"], UTC)
    return response


def test_create_sends_the_day_as_its_midnight_utc_with_a_token_derived_from_the_suppression(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, regions, provider = stubbed
    stubber.add_response("create_audit_suppression", {}, {
        **KEY, "expirationDate": JULY_FIRST, "suppressIndefinitely": False,
        "description": "Lab bench devices share one test certificate", "clientRequestToken": TOKEN,
    })
    result = provider.create(dict(DATED))
    assert regions == [REGION]
    assert result.id == ID
    assert result.outs == DATED


def test_the_request_token_fits_the_apis_pattern() -> None:
    assert len(TOKEN) <= 64
    assert TOKEN.isalnum()
    assert identity_digest("DEVICE_CERTIFICATE_SHARED_CHECK", {"deviceCertificateId": "b2" * 32}) != TOKEN


def test_create_of_an_indefinite_suppression_sends_no_date(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("create_audit_suppression", {}, {
        **KEY, "suppressIndefinitely": True, "description": INDEFINITE["description"], "clientRequestToken": TOKEN,
    })
    assert provider.create(dict(INDEFINITE)).outs == INDEFINITE


def test_create_adopts_a_suppression_that_already_exists_and_sets_the_declared_terms(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("create_audit_suppression", "ResourceAlreadyExistsException", http_status_code=409)
    stubber.add_response("update_audit_suppression", {}, {
        **KEY, "expirationDate": JULY_FIRST, "suppressIndefinitely": False, "description": DATED["description"],
    })
    assert provider.create(dict(DATED)).id == ID


def test_create_fails_on_any_other_error(stubbed: tuple[Stubber, list[str], AuditSuppressionProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("create_audit_suppression", "InvalidRequestException", "check not enabled", 400)
    with pytest.raises(Exception, match="check not enabled"):
        provider.create(dict(DATED))


@pytest.mark.parametrize(("news", "expected_terms"), [
    ({**DATED, "expirationDate": "2026-08-15"},
     {"expirationDate": datetime(2026, 8, 15, tzinfo=UTC), "suppressIndefinitely": False,
      "description": DATED["description"]}),
    ({**DATED, "description": "Bench certificate is rotated in August"},
     {"expirationDate": JULY_FIRST, "suppressIndefinitely": False,
      "description": "Bench certificate is rotated in August"}),
    (INDEFINITE, {"suppressIndefinitely": True, "description": DATED["description"]}),
], ids=["expiry", "reason", "date-to-indefinite"])
def test_update_sets_the_new_terms_in_place(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider], news: dict[str, Any],
    expected_terms: dict[str, Any],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("update_audit_suppression", {}, {**KEY, **expected_terms})
    assert provider.update(ID, dict(DATED), dict(news)).outs == news


def test_update_from_indefinite_to_a_day_turns_indefinite_off(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("update_audit_suppression", {}, {
        **KEY, "expirationDate": JULY_FIRST, "suppressIndefinitely": False, "description": DATED["description"],
    })
    provider.update(ID, dict(INDEFINITE), dict(DATED))


def test_delete(stubbed: tuple[Stubber, list[str], AuditSuppressionProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("delete_audit_suppression", {}, KEY)
    provider.delete(ID, dict(DATED))


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "InvalidRequestException"])
def test_delete_of_a_suppression_already_gone_succeeds(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider], code: str,
) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("delete_audit_suppression", code, http_status_code=404, expected_params=KEY)
    if code != "ResourceNotFoundException":
        stubber.add_client_error("describe_audit_suppression", "ResourceNotFoundException", http_status_code=404,
                                 expected_params=KEY)
    provider.delete(ID, dict(DATED))


def test_delete_fails_when_the_suppression_is_still_there(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("delete_audit_suppression", "ThrottlingException", http_status_code=400)
    stubber.add_response("describe_audit_suppression", described("describe-audit-suppression-dated.json"), KEY)
    with pytest.raises(Exception, match="ThrottlingException"):
        provider.delete(ID, dict(DATED))


def test_read_of_an_unchanged_suppression_matches_its_inputs(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_audit_suppression", described("describe-audit-suppression-dated.json"), KEY)
    result = provider.read(ID, dict(DATED))
    assert result.id == ID
    assert result.outs == DATED
    assert not provider.diff(ID, result.outs, dict(DATED)).changes


def test_a_timestamp_botocore_returns_in_local_time_is_the_same_day() -> None:
    assert expiry_day(JULY_FIRST.astimezone(timezone(timedelta(hours=-7)))) == "2026-07-01"


def test_read_shows_drift_and_the_next_update_restores_the_declared_terms(
    stubbed: tuple[Stubber, list[str], AuditSuppressionProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_audit_suppression", described("describe-audit-suppression-drifted.json"), KEY)
    result = provider.read(ID, dict(DATED))
    assert result.outs is not None
    assert result.outs["expirationDate"] == "2026-09-30T17:00:00+00:00"
    assert result.outs["description"] == "extended by hand"
    assert result.inputs == result.outs
    diff = provider.diff(ID, result.outs, dict(DATED))
    assert (diff.changes, diff.replaces) == (True, [])


def test_read_of_an_indefinite_suppression(stubbed: tuple[Stubber, list[str], AuditSuppressionProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_audit_suppression", described("describe-audit-suppression-indefinite.json"), KEY)
    assert provider.read(ID, dict(INDEFINITE)).outs == INDEFINITE


def test_read_of_a_deleted_suppression_removes_it(stubbed: tuple[Stubber, list[str], AuditSuppressionProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("describe_audit_suppression", "ResourceNotFoundException", http_status_code=404,
                             expected_params=KEY)
    assert provider.read(ID, dict(DATED)).id is None


def test_a_malformed_describe_response_is_refused_by_the_model() -> None:
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber, pytest.raises(Exception, match="expirationDate"):
        stubber.add_response("describe_audit_suppression",
                             json.loads((EVENTS / "describe-audit-suppression-broken-expiry.json").read_text()), KEY)


@pytest.mark.parametrize(("change", "replaces", "changes"), [
    ({}, [], False),
    ({"checkName": "DEVICE_CERTIFICATE_EXPIRING_CHECK"}, ["checkName"], True),
    ({"resourceIdentifier": {"deviceCertificateId": "b2" * 32}}, ["resourceIdentifier"], True),
    ({"region": "us-east-1"}, ["region"], True),
    ({"expirationDate": "2026-08-01"}, [], True),
    ({"description": "Another reason entirely"}, [], True),
    ({"expirationDate": None, "suppressIndefinitely": True}, [], True),
])
def test_diff_replaces_on_identity_and_updates_on_terms(
    change: dict[str, Any], replaces: list[str], changes: bool,
) -> None:
    olds = {**DATED, "__provider": "serialised"}
    diff = AuditSuppressionProvider().diff(ID, olds, {**DATED, **change, "__provider": "serialised"})
    assert (diff.replaces, diff.changes) == (replaces, changes)


@pytest.mark.slow
def test_the_stored_provider_loads_in_a_fresh_interpreter_without_a_client() -> None:
    assert loaded_from_state(AuditSuppressionProvider()) == (
        "components.audit_suppression AuditSuppressionProvider {'_client_factory': None}")


def test_the_readme_lists_the_actions_the_provider_calls_and_they_are_real() -> None:
    source = Path(audit_suppression.__file__).read_text()
    called = {"iot:" + "".join(part.title() for part in name.split("_"))
              for name in re.findall(r"\.(\w+_audit_suppression)\(", source)}
    readme = (REPO_ROOT / "README.md").read_text()
    listed = set(re.findall(r"`(iot:\w+AuditSuppression)`", readme))
    assert listed == called == {"iot:CreateAuditSuppression", "iot:DescribeAuditSuppression",
                                "iot:UpdateAuditSuppression", "iot:DeleteAuditSuppression"}
    # The Service Authorization Reference gives these actions no resource type: only "*" grants them.
    assert authorisation_gaps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": sorted(listed), "Resource": "*"}]}) == []

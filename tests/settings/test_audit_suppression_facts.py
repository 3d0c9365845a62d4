"""The suppression facts against AWS's own contract: botocore's ``iot`` model (and Cognito Identity's, for
the pool id the IoT model leaves unconstrained)."""

from __future__ import annotations

from typing import Any

import botocore.session  # type: ignore[import-untyped]

from settings import facts

SESSION = botocore.session.get_session()
IOT = SESSION.get_service_model("iot")


def limits_of(shape: Any) -> tuple[int | None, int | None, str | None]:
    return shape.metadata.get("min"), shape.metadata.get("max"), shape.metadata.get("pattern")


def test_every_identifier_kind_of_the_api_is_known_and_no_other() -> None:
    assert set(facts.RESOURCE_IDENTIFIER_KINDS) == set(IOT.shape_for("ResourceIdentifier").members)


def test_identifier_limits_are_the_models_where_it_has_them() -> None:
    members = IOT.shape_for("ResourceIdentifier").members
    for name, kind in facts.RESOURCE_IDENTIFIER_KINDS.items():
        shape = members[name]
        texts = [(shape, kind.text)] if kind.text else [(shape.members[field], limits) for field, limits in kind.fields]
        if kind.fields:
            assert [field for field, _ in kind.fields] == list(shape.members), name
        for member, limits in texts:
            assert limits is not None
            low, high, pattern = limits_of(member)
            assert limits.min_length == max(low or 1, 1), name
            assert limits.max_length == high or high is None, name
            if pattern == r"[\p{Graph}\x20]*":
                assert limits.pattern == facts.PRINTABLE_TEXT, name
            elif pattern is not None:
                assert limits.pattern == pattern, name


def test_the_cognito_pool_id_is_cognito_identitys_own() -> None:
    low, high, pattern = limits_of(SESSION.get_service_model("cognito-identity").shape_for("IdentityPoolId"))
    kind = facts.RESOURCE_IDENTIFIER_KINDS["cognitoIdentityPoolId"].text
    assert kind is not None
    assert (kind.min_length, kind.max_length, kind.pattern) == (low, high, pattern)


def test_every_audit_check_reports_known_kinds() -> None:
    assert set(facts.AUDIT_CHECK_RESOURCE_KINDS) == set(facts.AUDIT_CHECKS_BY_NAME)
    for kinds in facts.AUDIT_CHECK_RESOURCE_KINDS.values():
        assert kinds
        assert set(kinds) <= set(facts.RESOURCE_IDENTIFIER_KINDS)


def test_the_description_limit_is_the_models() -> None:
    assert limits_of(IOT.shape_for("AuditDescription")) == (None, facts.AUDIT_DESCRIPTION_MAX, r"[\p{Graph}\x20]*")

"""``AuditSuppression``: a Device Defender audit finding suppression as a Pulumi dynamic resource (no
CloudFormation type exists, so neither aws-native nor classic has one).

The provider calls the IoT API from the program's process with boto3's default credential chain (the
deployer's), so the region is an input. Pulumi pickles the provider into the stack state: it holds no
client, only an optional factory a test injects.

The expiry is a day. AWS takes and returns a timestamp (epoch seconds), so a day is sent as its 00:00 UTC
and a timestamp read back at 00:00 UTC is that day again: no permanent diff from the round trip. One
changed by hand to another time of day reads back as the full timestamp, which differs from any day, so
``pulumi refresh`` shows it and the next update sets the declared day again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any, Final, TypedDict

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic_clients import ClientFactory, iot_client

REPLACE_ON: Final = ("checkName", "resourceIdentifier", "region")
"""What makes a suppression the one it is: AWS keys suppressions by check and resource, per region."""
UPDATE_ON: Final = ("expirationDate", "suppressIndefinitely", "description")
NOT_FOUND: Final = "ResourceNotFoundException"
ALREADY_EXISTS: Final = "ResourceAlreadyExistsException"


class AuditSuppressionArgs(TypedDict):
    check_name: str
    """The audit check whose finding is suppressed."""
    resource_identifier: dict[str, Any]
    """The API's ``resourceIdentifier`` of the noncompliant resource (one kind)."""
    expires: date | None
    """The day the suppression ends (00:00 UTC); ``None`` for indefinitely."""
    description: str
    """Why the finding is acceptable."""
    region: pulumi.Input[str]


def identity_digest(check_name: str, resource_identifier: dict[str, Any]) -> str:
    """A stable digest of check and identifier, for the resource id and the create's request token."""
    canonical = json.dumps([check_name, resource_identifier], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def expiry_timestamp(day: str) -> datetime:
    """The instant a suppression declared to expire on ``day`` (YYYY-MM-DD) ends: its 00:00 UTC."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)


def expiry_day(timestamp: datetime) -> str:
    """What AWS returned as the declared form: the day when it is 00:00 UTC, else the exact UTC instant."""
    instant = timestamp.astimezone(UTC)
    if instant.time() == datetime.min.time():
        return instant.date().isoformat()
    return instant.isoformat()


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _key(props: dict[str, Any]) -> dict[str, Any]:
    return {"checkName": props["checkName"], "resourceIdentifier": props["resourceIdentifier"]}


def _terms(props: dict[str, Any]) -> dict[str, Any]:
    """How long and why: the fields UpdateAuditSuppression (and create) take besides the key."""
    terms: dict[str, Any] = {"description": props["description"]}
    if props.get("suppressIndefinitely"):
        terms["suppressIndefinitely"] = True
    else:
        terms["suppressIndefinitely"] = False
        terms["expirationDate"] = expiry_timestamp(str(props["expirationDate"]))
    return terms


class AuditSuppressionProvider(ResourceProvider):
    """Create, read, diff, update and delete through the IoT audit suppression API."""

    serialize_as_secret_always = False

    def __init__(self, client_factory: ClientFactory | None = None) -> None:
        super().__init__()
        self._client_factory = client_factory

    def _client(self, props: dict[str, Any]) -> Any:
        return (self._client_factory or iot_client)(str(props["region"]))

    @staticmethod
    def _outs(props: dict[str, Any]) -> dict[str, Any]:
        return {key: props.get(key) for key in (*REPLACE_ON, *UPDATE_ON)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        digest = identity_digest(props["checkName"], props["resourceIdentifier"])
        try:
            # The token is derived from what the suppression is, so a create Pulumi retries after losing
            # its answer is the same request (max 64 characters, [a-zA-Z0-9-_]).
            client.create_audit_suppression(**_key(props), **_terms(props), clientRequestToken=digest)
        except Exception as error:
            if _error_code(error) != ALREADY_EXISTS:
                raise
            # Adopt: the config declares this suppression, and AWS keys it by check and resource, so one
            # made by hand (or by a create whose result Pulumi lost) is this one; set the declared terms.
            client.update_audit_suppression(**_key(props), **_terms(props))
        return CreateResult(f"{props['region']}/{props['checkName']}/{digest[:16]}", self._outs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What AWS has now, so ``pulumi refresh`` shows a changed expiry or description; gone when AWS
        no longer has it."""
        try:
            found = self._client(props).describe_audit_suppression(**_key(props))
        except Exception as error:
            if _error_code(error) == NOT_FOUND:
                return ReadResult(None, {})
            raise
        indefinite = bool(found.get("suppressIndefinitely"))
        expiration = found.get("expirationDate")
        outs = {
            **self._outs(props),
            "suppressIndefinitely": indefinite,
            "expirationDate": expiry_day(expiration) if expiration is not None and not indefinite else None,
            "description": found.get("description", ""),
        }
        return ReadResult(id_, outs, inputs=dict(outs))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_ON if olds.get(key) != news.get(key)]
        changed = [key for key in UPDATE_ON if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._client(news).update_audit_suppression(**_key(news), **_terms(news))
        return UpdateResult(self._outs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Already gone is done. The model lists no not-found error for delete, so whatever AWS answers
        for a missing one, a describe decides whether there is anything left to delete."""
        client = self._client(props)
        try:
            client.delete_audit_suppression(**_key(props))
        except Exception as error:
            if _error_code(error) == NOT_FOUND or not self._exists(client, props):
                return
            raise

    @staticmethod
    def _exists(client: Any, props: dict[str, Any]) -> bool:
        try:
            client.describe_audit_suppression(**_key(props))
        except Exception as error:
            if _error_code(error) == NOT_FOUND:
                return False
            raise
        return True


class AuditSuppression(Resource, module="fleetguard", name="AuditSuppression"):
    """One audit finding suppression; replaced when its check or resource changes, updated in place when
    its expiry or description does."""

    def __init__(
        self,
        name: str,
        args: AuditSuppressionArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(AuditSuppressionProvider(), name, provider_inputs(args), opts)


def provider_inputs(args: AuditSuppressionArgs) -> dict[str, Any]:
    """The properties the provider receives for ``args`` (what the stack state holds)."""
    expires = args["expires"]
    return {
        "checkName": args["check_name"],
        "resourceIdentifier": args["resource_identifier"],
        "expirationDate": expires.isoformat() if expires else None,
        "suppressIndefinitely": expires is None,
        "description": args["description"],
        "region": args["region"],
    }

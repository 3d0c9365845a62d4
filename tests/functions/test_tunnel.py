"""The tunnel function and the release function's tunnel clean-up: one tunnel per quarantined device and
incident, its token only in a secret the responders read, and never anywhere else."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.stub import ANY, Stubber  # type: ignore[import-untyped]

from functions import aws_clients, release, tunnel
from functions.contract import EnvVar
from functions.contract_tunnel import (
    CLOSED_TUNNELS_KEY,
    INCIDENT_TAG_KEY,
    THING_TAG_KEY,
    TUNNEL_RECORD_KEY,
    TunnelEnvironment,
    TunnelOutputKey,
    TunnelStatus,
    secret_name,
)
from functions.tunnel_access import TunnelError
from tests.functions.conftest import REGION

GROUP = "fleetguard-quarantine"
PREFIX = "fleetguard-test/tunnel/"
THING = "sensor-001"
TUNNEL_ID = "7f3c1b2a-0d4e-4f5a-9b6c-1d2e3f4a5b6c"
TOKEN = "AQGAAXi-source-token-Zm9yZW5zaWNz-never-leak"
INCIDENT = "arn:aws:ssm-incidents::123456789012:incident-record/fleetguard-device/6ac2d3f0-9a1b-4c5d-8e7f-0a1b2c3d4e5f"
READER = "arn:aws:iam::123456789012:role/ForensicResponder"
RELEASE_ROLE = "arn:aws:iam::123456789012:role/fleetguard-test-release-role"
TUNNEL_ARN = f"arn:aws:iot:{REGION}:123456789012:tunnel/{TUNNEL_ID}"


@pytest.fixture
def env(moto_aws: None, monkeypatch: pytest.MonkeyPatch, iot: Any) -> Any:
    for name, value in {
        EnvVar.QUARANTINE_GROUP_NAME: GROUP, EnvVar.TUNNEL_SECRET_PREFIX: PREFIX,
        EnvVar.TUNNEL_MAX_LIFETIME_MINUTES: "60", EnvVar.TUNNEL_READER_ROLE_ARNS: READER,
        EnvVar.TUNNEL_RELEASE_ROLE_ARN: RELEASE_ROLE, EnvVar.POWERTOOLS_SERVICE_NAME: "fleetguard-test",
        EnvVar.IOT_DATA_ENDPOINT: f"data-ats.iot.{REGION}.amazonaws.com",
    }.items():
        monkeypatch.setenv(name, value)
    iot.create_thing_group(thingGroupName=GROUP)
    for thing_name in (THING, "sensor-002"):
        iot.create_thing(thingName=thing_name)
    iot.add_thing_to_thing_group(thingGroupName=GROUP, thingName=THING)
    return iot


@pytest.fixture
def stubs(env: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Stubber]:
    """Stubbers for secure tunneling (moto has none) and Incident Manager, served through the client factory."""
    services = ("iotsecuretunneling", "ssm-incidents", "ssm")
    clients = {service: boto3.client(service, region_name=REGION) for service in services}
    real = aws_clients._new_client
    monkeypatch.setattr(
        aws_clients, "_new_client", lambda service, **kwargs: clients.get(service) or real(service, **kwargs)
    )
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    return stubbers


def related_devices(stubber: Stubber, *names: str) -> None:
    stubber.add_response("list_related_items", {"relatedItems": [
        {"identifier": {"type": "INVOLVED_RESOURCE",
                        "value": {"arn": f"arn:aws:iot:{REGION}:123456789012:thing/{name}"}}}
        for name in names
    ]}, {"incidentRecordArn": INCIDENT})


def listing(stubber: Stubber, *summaries: tuple[str, str]) -> None:
    stubber.add_response("list_tunnels", {"tunnelSummaries": [
        {"tunnelId": tunnel_id, "status": status} for tunnel_id, status in summaries
    ]}, {"thingName": THING, "maxResults": 100})


def described(stubber: Stubber, tunnel_id: str, tags: dict[str, str]) -> None:
    stubber.add_response("describe_tunnel", {"tunnel": {
        "tunnelId": tunnel_id, "status": "OPEN", "createdAt": datetime(2026, 12, 2, 5, 0, tzinfo=UTC),
        "timeoutConfig": {"maxLifetimeTimeoutMinutes": 60},
        "tags": [{"key": key, "value": value} for key, value in tags.items()],
    }}, {"tunnelId": tunnel_id})


def opens_one_tunnel(stubber: Stubber, incident: str = INCIDENT) -> None:
    listing(stubber)
    stubber.add_response(
        "open_tunnel",
        {"tunnelId": TUNNEL_ID, "tunnelArn": TUNNEL_ARN, "sourceAccessToken": TOKEN,
         "destinationAccessToken": "destination-token"},
        {"description": ANY,
         "tags": [{"key": INCIDENT_TAG_KEY, "value": incident}, {"key": THING_TAG_KEY, "value": THING}],
         "destinationConfig": {"thingName": THING, "services": ["SSH"]},
         "timeoutConfig": {"maxLifetimeTimeoutMinutes": 60}},
    )


def test_opens_one_ssh_tunnel_for_the_quarantined_device_only_and_hands_the_token_to_the_responders(
    stubs: dict[str, Stubber], lambda_context: LambdaContext,
) -> None:
    related_devices(stubs["ssm-incidents"], THING, "sensor-002")  # sensor-002 is not quarantined
    opens_one_tunnel(stubs["iotsecuretunneling"])
    stubs["ssm-incidents"].add_response("create_timeline_event", {"incidentRecordArn": INCIDENT, "eventId": "e1"})

    result = tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    secrets = boto3.client("secretsmanager", region_name=REGION)
    secret = secrets.describe_secret(SecretId=secret_name(PREFIX, TUNNEL_ID))
    assert result == {TunnelOutputKey.TUNNEL_STATUS.value: TunnelStatus.OPENED.value,
                      TunnelOutputKey.TUNNEL_IDS.value: [TUNNEL_ID], TunnelOutputKey.SECRET_ARNS.value: [secret["ARN"]]}
    assert secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"] == TOKEN
    assert {tag["Key"]: tag["Value"] for tag in secret["Tags"]} == {INCIDENT_TAG_KEY: INCIDENT, THING_TAG_KEY: THING}
    policy = json.loads(secrets.get_resource_policy(SecretId=secret["ARN"])["ResourcePolicy"])
    readers = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert readers["RespondersRead"]["Principal"] == {"AWS": [READER]}
    assert readers["NoOneElseReads"]["Condition"] == {"StringNotEquals": {"aws:PrincipalArn": [READER]}}
    assert readers["ReleaseDeletes"]["Principal"] == {"AWS": RELEASE_ROLE}
    for stubber in stubs.values():
        stubber.assert_no_pending_responses()


def test_a_retry_finds_the_open_tunnel_and_opens_no_second_one(
    stubs: dict[str, Stubber], lambda_context: LambdaContext,
) -> None:
    tunnels = stubs["iotsecuretunneling"]
    for _ in range(2):
        related_devices(stubs["ssm-incidents"], THING)
        stubs["ssm-incidents"].add_response("create_timeline_event", {"incidentRecordArn": INCIDENT, "eventId": "e1"})
    opens_one_tunnel(tunnels)
    first = tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)
    listing(tunnels, ("someone-elses", "OPEN"), (TUNNEL_ID, "OPEN"))
    described(tunnels, "someone-elses", {INCIDENT_TAG_KEY: "oi-0123456789ab"})
    described(tunnels, TUNNEL_ID, {INCIDENT_TAG_KEY: INCIDENT})

    second = tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    assert second == first
    tunnels.assert_no_pending_responses()


def test_a_device_outside_the_quarantine_group_gets_no_tunnel(
    stubs: dict[str, Stubber], lambda_context: LambdaContext,
) -> None:
    result = tunnel.handler({"incidentRecordArn": INCIDENT, "thingName": "sensor-002"}, lambda_context)

    assert result[TunnelOutputKey.TUNNEL_STATUS.value] == TunnelStatus.NO_DEVICES.value
    assert result[TunnelOutputKey.TUNNEL_IDS.value] == []


def test_a_tunnel_needs_an_incident(
    env: Any, load_event: Callable[[str], Any], lambda_context: LambdaContext,
) -> None:
    with pytest.raises(ValueError, match="incidentRecordArn or opsItemId: required"):
        tunnel.handler(load_event("broken-runbook-open-tunnel-no-incident.json"), lambda_context)


def test_the_tunnel_is_recorded_on_the_ops_item(
    stubs: dict[str, Stubber], load_event: Callable[[str], Any], lambda_context: LambdaContext,
) -> None:
    event = load_event("runbook-open-tunnel-ops-item.json")
    ops_item_id = event["opsItemId"]
    resources = json.dumps([{"arn": f"arn:aws:iot:{REGION}:123456789012:thing/{THING}"}])
    stubs["ssm"].add_response(
        "get_ops_item", {"OpsItem": {"OpsItemId": ops_item_id, "OperationalData": {
            "/aws/resources": {"Value": resources, "Type": "SearchableString"}}}}, {"OpsItemId": ops_item_id},
    )
    opens_one_tunnel(stubs["iotsecuretunneling"], incident=ops_item_id)
    updates: list[dict[str, Any]] = []
    stubs["ssm"].client.meta.events.register(
        "before-parameter-build.ssm.UpdateOpsItem", lambda params, **_: updates.append(params)
    )
    stubs["ssm"].add_response("update_ops_item", {})

    tunnel.handler(event, lambda_context)

    (update,) = updates
    assert update["OpsItemId"] == ops_item_id
    (record,) = json.loads(update["OperationalData"][TUNNEL_RECORD_KEY]["Value"])
    assert record["tunnelId"] == TUNNEL_ID
    assert record["thingName"] == THING
    assert record["secretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{PREFIX}")
    assert TOKEN not in json.dumps(update)
    stubs["ssm"].assert_no_pending_responses()


def open_at_debug(
    stubs: dict[str, Stubber], lambda_context: LambdaContext, caplog: pytest.LogCaptureFixture,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Run the handler as Lambda does at the DEBUG application log level (the root logger, the wire loggers
    and ours at DEBUG); its result, the timeline notes it sent, and every log line captured."""
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    tunnel.logger.setLevel(logging.DEBUG)
    related_devices(stubs["ssm-incidents"], THING)
    opens_one_tunnel(stubs["iotsecuretunneling"])
    stubs["ssm-incidents"].add_response("create_timeline_event", {"incidentRecordArn": INCIDENT, "eventId": "e1"})
    published: list[dict[str, Any]] = []
    stubs["ssm-incidents"].client.meta.events.register(
        "before-parameter-build.ssm-incidents.CreateTimelineEvent", lambda params, **_: published.append(params)
    )
    result = tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)
    lines = [f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records]
    return result, published, lines


def test_the_token_appears_in_no_log_line_result_or_record(
    stubs: dict[str, Stubber], lambda_context: LambdaContext, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, published, lines = open_at_debug(stubs, lambda_context, caplog)

    captured = capsys.readouterr()
    assert any("tunnel open" in line for line in lines), "nothing was captured: the check would pass vacuously"
    assert [line for line in lines if TOKEN in line] == []
    assert TOKEN not in captured.out + captured.err
    assert TOKEN not in json.dumps(result)
    assert published
    assert TOKEN not in json.dumps(published, default=str)


def test_without_quieting_the_wire_loggers_botocore_would_log_the_token(
    stubs: dict[str, Stubber], lambda_context: LambdaContext, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tunnel, "quiet_wire_logging", lambda: None)

    _, _, lines = open_at_debug(stubs, lambda_context, caplog)

    assert any(TOKEN in line for line in lines if line.startswith("botocore"))


def test_a_failure_to_store_the_token_closes_the_tunnel_and_quotes_no_token(
    stubs: dict[str, Stubber], lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch,
) -> None:
    related_devices(stubs["ssm-incidents"], THING)
    opens_one_tunnel(stubs["iotsecuretunneling"])
    stubs["iotsecuretunneling"].add_response("close_tunnel", {}, {"tunnelId": TUNNEL_ID, "delete": False})
    secrets = boto3.client("secretsmanager", region_name=REGION)

    def refuse(**params: Any) -> None:
        # A parameter error quotes the value it refused: here, the token.
        raise secrets.exceptions.ClientError(
            {"Error": {"Code": "InvalidParameterException", "Message": f"bad SecretString {params['SecretString']}"}},
            "PutSecretValue",
        )

    monkeypatch.setattr(secrets, "put_secret_value", refuse)
    real = aws_clients._new_client
    monkeypatch.setattr(aws_clients, "_new_client",
                        lambda service, **kwargs: secrets if service == "secretsmanager" else real(service, **kwargs))
    aws_clients.client.cache_clear()

    with pytest.raises(TunnelError) as caught:
        tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    # The half-made secret is gone with the tunnel.
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId=secret_name(PREFIX, TUNNEL_ID))
    stubs["iotsecuretunneling"].assert_no_pending_responses()


def test_a_retry_after_a_run_that_stopped_before_the_policy_protects_the_secret_first(
    stubs: dict[str, Stubber], lambda_context: LambdaContext,
) -> None:
    # The first run made the secret and died (its Lambda timed out) before the resource policy or the token.
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=secret_name(PREFIX, TUNNEL_ID))
    tunnels = stubs["iotsecuretunneling"]
    related_devices(stubs["ssm-incidents"], THING)
    stubs["ssm-incidents"].add_response("create_timeline_event", {"incidentRecordArn": INCIDENT, "eventId": "e1"})
    listing(tunnels, (TUNNEL_ID, "OPEN"))
    described(tunnels, TUNNEL_ID, {INCIDENT_TAG_KEY: INCIDENT})
    tunnels.add_response("rotate_tunnel_access_token", {"tunnelArn": TUNNEL_ARN, "sourceAccessToken": TOKEN},
                         {"tunnelId": TUNNEL_ID, "clientMode": "SOURCE"})

    result = tunnel.handler({"incidentRecordArn": INCIDENT}, lambda_context)

    arn = secrets.describe_secret(SecretId=secret_name(PREFIX, TUNNEL_ID))["ARN"]
    assert result[TunnelOutputKey.SECRET_ARNS.value] == [arn]
    policy = json.loads(secrets.get_resource_policy(SecretId=arn)["ResourcePolicy"])
    assert {statement["Sid"] for statement in policy["Statement"]} == {"RespondersRead", "ReleaseDeletes",
                                                                       "NoOneElseReads"}
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == TOKEN
    tunnels.assert_no_pending_responses()


def test_release_closes_the_incidents_tunnels_and_deletes_their_secrets(
    stubs: dict[str, Stubber], lambda_context: LambdaContext,
) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for tunnel_id in (TUNNEL_ID, "expired-tunnel"):
        secrets.create_secret(Name=secret_name(PREFIX, tunnel_id), SecretString=TOKEN)
    tunnels = stubs["iotsecuretunneling"]
    listing(tunnels, (TUNNEL_ID, "OPEN"), ("expired-tunnel", "CLOSED"), ("maintenance", "OPEN"))
    described(tunnels, TUNNEL_ID, {INCIDENT_TAG_KEY: INCIDENT})
    tunnels.add_response("close_tunnel", {}, {"tunnelId": TUNNEL_ID, "delete": False})
    described(tunnels, "expired-tunnel", {INCIDENT_TAG_KEY: INCIDENT})
    described(tunnels, "maintenance", {"team": "field-service"})

    result = release.handler({"thingName": THING}, lambda_context)

    assert result[CLOSED_TUNNELS_KEY] == [TUNNEL_ID]
    assert secrets.list_secrets()["SecretList"] == []
    tunnels.assert_no_pending_responses()


def test_release_without_tunnels_configured_makes_no_tunnel_call(
    env: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(EnvVar.TUNNEL_SECRET_PREFIX)

    result = release.handler({"thingName": THING}, lambda_context)

    assert CLOSED_TUNNELS_KEY not in result


def test_the_tunnel_environment_reads_back_what_it_renders() -> None:
    config = TunnelEnvironment(GROUP, PREFIX, 720, (READER, RELEASE_ROLE), RELEASE_ROLE, "fleetguard-tunnel")

    assert TunnelEnvironment.from_environment(config.to_environment()) == config
    with pytest.raises(ValueError, match="TUNNEL_MAX_LIFETIME_MINUTES: expected at most 720"):
        TunnelEnvironment.from_environment({**config.to_environment(), EnvVar.TUNNEL_MAX_LIFETIME_MINUTES: "721"})

"""The ``ContinuousJob`` dynamic provider against a stubbed IoT client (expected parameters checked against
the iot model by the Stubber), the job prod registers, and the provider's trip through the stack state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

import stack_outputs as out
from components.continuous_job import ContinuousJob, ContinuousJobError, ContinuousJobProvider
from harness.mockstack import StackRun, run_stack
from settings import ConfigError
from tests.components.dynamic_support import loaded_from_state

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TEMPLATE = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/fleetguard-prod-fleet-recovery-3_1_2"
GROUP = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleetguard-prod-fleet-firmware-3_1_0"
JOB_ID = "fleetguard-prod-fleet-patch-20261202061530"
JOB_TYPE = "pulumi-python:dynamic/fleetguard:ContinuousJob"
PROPS: dict[str, Any] = {
    "job_id_prefix": "fleetguard-prod-fleet-patch",
    "region": REGION,
    "target_arn": GROUP,
    "job_template_arn": TEMPLATE,
    "description": "fleetguard: devices reporting firmware 3.1.0 get 3.1.2 when they connect",
}
ABORT = {"criteriaList": [
    {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 5.0, "minNumberOfExecutedThings": 50},
]}
ROLLOUT = {"maximumPerMinute": 200, "exponentialRate": {
    "baseRatePerMinute": 5, "incrementFactor": 1.5, "rateIncreaseCriteria": {"numberOfSucceededThings": 50},
}}
PRESIGNED = {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/recovery", "expiresInSec": 1800}


def described(status: str = "IN_PROGRESS", **fields: Any) -> dict[str, Any]:
    """DescribeJob's answer for a job created from the template: it carries the template's settings."""
    job = {
        "jobArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{JOB_ID}", "jobId": JOB_ID, "status": status,
        "targetSelection": "CONTINUOUS", "targets": [GROUP], "jobTemplateArn": TEMPLATE,
        "abortConfig": ABORT, "jobExecutionsRolloutConfig": ROLLOUT, "presignedUrlConfig": PRESIGNED,
        **fields,
    }
    return {"job": {key: value for key, value in job.items() if value is not None}}


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, list[str], ContinuousJobProvider]]:
    client = boto3.client("iot", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    regions: list[str] = []

    def factory(region: str) -> Any:
        regions.append(region)
        return client

    def clock() -> datetime:
        return datetime(2026, 12, 2, 6, 15, 30, tzinfo=UTC)

    with Stubber(client) as stubber:
        yield stubber, regions, ContinuousJobProvider(client_factory=factory, clock=clock)
        stubber.assert_no_pending_responses()


def test_create_starts_a_continuous_job_from_the_template_alone(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, regions, provider = stubbed
    # No document, rollout, abort, timeout or presigned URL settings: the template is their one home.
    stubber.add_response("create_job", {"jobArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{JOB_ID}", "jobId": JOB_ID}, {
        "jobId": JOB_ID, "targets": [GROUP], "targetSelection": "CONTINUOUS", "jobTemplateArn": TEMPLATE,
        "description": PROPS["description"],
    })
    stubber.add_response("describe_job", described(), {"jobId": JOB_ID})

    result = provider.create(dict(PROPS))

    assert regions == [REGION]
    assert result.id == JOB_ID
    # What AWS reports the job inherited is what the stack state shows.
    assert result.outs == {
        **PROPS, "job_id": JOB_ID, "job_arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{JOB_ID}",
        "job_status": "IN_PROGRESS",
        "abort_config": ABORT, "rollout_config": ROLLOUT, "presigned_url_config": PRESIGNED,
    }


def test_a_job_that_inherited_no_abort_criteria_is_cancelled_and_fails_the_deploy(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("create_job", {"jobId": JOB_ID}, None)
    stubber.add_response("describe_job", described(abortConfig=None), {"jobId": JOB_ID})
    stubber.add_response("cancel_job", {"jobId": JOB_ID},
                         {"jobId": JOB_ID, "reasonCode": "NO_ABORT_CRITERIA", "force": False})

    with pytest.raises(ContinuousJobError, match=r"has no abort criteria, so it was cancelled"):
        provider.create(dict(PROPS))


def test_read_reports_the_job_and_keeps_an_aborted_one(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_job", described("CANCELED"), {"jobId": JOB_ID})

    result = provider.read(JOB_ID, dict(PROPS))

    # Recreating a job its abort criteria cancelled would undo the abort.
    assert result.id == JOB_ID
    assert result.outs is not None
    assert result.outs["job_status"] == "CANCELED"


def test_read_forgets_a_deleted_job_so_the_next_update_creates_one(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("describe_job", "ResourceNotFoundException", expected_params={"jobId": JOB_ID})
    stubber.add_response("describe_job", described("DELETION_IN_PROGRESS"), {"jobId": JOB_ID})

    assert provider.read(JOB_ID, dict(PROPS)).id == ""
    assert provider.read(JOB_ID, dict(PROPS)).id == ""


def test_read_passes_other_errors_on(stubbed: tuple[Stubber, list[str], ContinuousJobProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("describe_job", "ThrottlingException", expected_params={"jobId": JOB_ID})

    with pytest.raises(Exception, match="ThrottlingException"):
        provider.read(JOB_ID, dict(PROPS))


@pytest.mark.parametrize(("change", "replaces", "changes"), [
    ({}, [], False),
    ({"job_template_arn": TEMPLATE.replace("3_1_2", "3_1_3")}, ["job_template_arn"], True),
    ({"target_arn": GROUP.replace("3_1_0", "3_1_1")}, ["target_arn"], True),
    ({"region": "us-east-1"}, ["region"], True),
    ({"description": "new words"}, [], True),
])
def test_diff_replaces_on_a_new_template_or_target_and_updates_a_description(
    change: dict[str, Any], replaces: list[str], changes: bool,
) -> None:
    olds = {**PROPS, "job_id": JOB_ID, "job_status": "IN_PROGRESS", "__provider": "serialised"}
    diff = ContinuousJobProvider().diff(JOB_ID, olds, {**PROPS, **change, "__provider": "serialised"})
    assert diff.changes is changes
    assert diff.replaces == replaces
    # The new job exists before the old one is cancelled.
    assert diff.delete_before_replace is False


def test_update_changes_the_description_in_place(stubbed: tuple[Stubber, list[str], ContinuousJobProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("update_job", {}, {"jobId": JOB_ID, "description": "new words"})
    stubber.add_response("describe_job", described(description="new words"), {"jobId": JOB_ID})

    result = provider.update(JOB_ID, dict(PROPS), {**PROPS, "description": "new words"})

    assert result.outs is not None
    assert result.outs["description"] == "new words"


CANCEL = {"jobId": JOB_ID, "reasonCode": "FLEETGUARD_STACK_REMOVED",
          "comment": "The fleetguard stack that created it removed it", "force": False}


def test_delete_cancels_queued_executions_and_lets_installing_devices_finish(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_job", described(), {"jobId": JOB_ID})
    stubber.add_response("cancel_job", {"jobId": JOB_ID}, CANCEL)

    provider.delete(JOB_ID, dict(PROPS))


@pytest.mark.parametrize("status", ["CANCELED", "COMPLETED", "DELETION_IN_PROGRESS"])
def test_delete_of_a_job_that_has_stopped_cancels_nothing(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider], status: str,
) -> None:
    # An abort cancelled it, and the stack kept it: a new template replaces it and deletes this one.
    stubber, _, provider = stubbed
    stubber.add_response("describe_job", described(status), {"jobId": JOB_ID})

    provider.delete(JOB_ID, dict(PROPS))


def test_delete_of_a_job_that_is_gone_succeeds(stubbed: tuple[Stubber, list[str], ContinuousJobProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_client_error("describe_job", "ResourceNotFoundException")

    provider.delete(JOB_ID, dict(PROPS))


def test_delete_of_a_job_that_stops_between_the_read_and_the_cancel_succeeds(
    stubbed: tuple[Stubber, list[str], ContinuousJobProvider],
) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_job", described(), {"jobId": JOB_ID})
    stubber.add_client_error("cancel_job", "InvalidRequestException", expected_params=CANCEL)
    stubber.add_response("describe_job", described("CANCELED"), {"jobId": JOB_ID})

    provider.delete(JOB_ID, dict(PROPS))


def test_delete_passes_other_errors_on(stubbed: tuple[Stubber, list[str], ContinuousJobProvider]) -> None:
    stubber, _, provider = stubbed
    stubber.add_response("describe_job", described(), {"jobId": JOB_ID})
    stubber.add_client_error("cancel_job", "AccessDeniedException")
    stubber.add_response("describe_job", described(), {"jobId": JOB_ID})

    with pytest.raises(Exception, match="AccessDeniedException"):
        provider.delete(JOB_ID, dict(PROPS))


def test_a_prefix_that_leaves_no_room_for_the_creation_time_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at most 49 characters"):
        ContinuousJobProvider().create({**PROPS, "job_id_prefix": "p" * 50})
    with pytest.raises(ValueError, match=r"must match"):
        ContinuousJob("job", {**PROPS, "job_id_prefix": "fleet/patch"})  # type: ignore[typeddict-item]


def test_prod_patches_the_watched_firmware_group_from_the_recovery_template(prod_stack: StackRun) -> None:
    job = prod_stack.one(JOB_TYPE)
    group = prod_stack.by_name("fleetguard-prod-fleet-firmware-3_1_0")
    template = prod_stack.by_name("fleetguard-prod-fleet-recovery-3_1_2")
    assert job.inputs["target_arn"] == group.outputs["arn"]
    assert job.inputs["job_template_arn"].endswith(f":jobtemplate/{template.inputs['jobTemplateId']}")
    assert job.inputs["job_id_prefix"] == "fleetguard-prod-fleet-patch"
    assert job.parent == prod_stack.one("fleetguard:fleet:Fleet").urn
    # The group waits for the index; the job waits for the group and the template.
    assert set(job.dependencies) == {group.urn, template.urn}
    assert prod_stack.outputs[out.CONTINUOUS_PATCH_JOB_ID] == job.outputs["job_id"]
    assert prod_stack.outputs[out.CONTINUOUS_PATCH_JOB_ARN] == job.outputs["job_arn"]
    # The template the job inherits from stops a failing rollout.
    assert template.inputs["abortConfig"]["criteriaList"]


def test_dev_has_no_continuous_job(dev_stack: StackRun) -> None:
    assert dev_stack.of_type(JOB_TYPE) == []
    assert out.CONTINUOUS_PATCH_JOB_ID not in dev_stack.outputs


def test_a_continuous_job_without_a_group_to_target_stops_the_program() -> None:
    with pytest.raises(ConfigError, match=r"fleetguard:fleet.recovery.continuous: needs a group to target"):
        run_stack("prod", {"fleet": {"firmware": {"attribute": "firmwareVersion"},
                                     "recovery": {"continuous": True, "firmwareVersion": "3.1.2",
                                                  "firmwareBucket": "fleetguard-prod-firmware",
                                                  "firmwareKey": "releases/3.1.2/device-firmware.bin"}}})


@pytest.mark.slow
def test_the_stored_provider_loads_in_a_fresh_interpreter_without_registering_anything() -> None:
    assert loaded_from_state(ContinuousJobProvider()) == (
        "components.continuous_job ContinuousJobProvider {'_client_factory': None, '_clock': None}"
    )

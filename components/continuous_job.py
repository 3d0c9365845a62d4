"""``ContinuousJob``: a Pulumi dynamic resource for a continuous AWS IoT job created from a job template.

The classic aws provider has no IoT job. CloudFormation's ``AWS::IoT::Job`` (aws-native ``iot.Job``)
exists, but removes a job by deleting it (its delete handler holds ``iot:DeleteJob``, not
``iot:CancelJob``): a continuous job never reaches a terminal state, so that deletes the executions of
devices that may be installing firmware, and its fixed ``JobId`` is reused by the next create. This
provider calls the Jobs API itself (``components/dynamic_clients.py``) to cancel instead; the deploying
identity needs the permissions the README lists.

- Create: CreateJob with ``targetSelection`` CONTINUOUS on one thing group, from ``jobTemplateArn`` alone:
  the template supplies the document, the presigned-URL role, the staged rollout, the abort criteria,
  the in-progress timeout and the retries, so they have one home. DescribeJob then confirms the job
  carries abort criteria (a firmware job that cannot stop itself is cancelled and the deploy fails).
- Read: DescribeJob. A deleted job (or one being deleted) is gone, so the next update creates a new
  one; a CANCELED job (abort criteria met, or cancelled by hand) is kept as it is: recreating it would
  undo the abort. A new firmware release (a new template) replaces it.
- Diff: a new template, target or region replaces the job (a job's targets cannot change); a new
  description updates it in place.
- Delete: CancelJob without ``force``: devices already installing finish (a device cancelled mid-update
  cannot report its state), queued executions are cancelled. The job is kept, cancelled, as the record
  of the rollout; AWS discourages reusing a deleted job's id, so each job id ends in the UTC time it was
  created and a deploy after a destroy starts a new job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic_clients import ClientFactory, iot_client

JOB_ID_PATTERN: Final = r"[a-zA-Z0-9_-]+"
JOB_ID_MAX_LENGTH: Final = 64
"""CreateJob's jobId constraints (the iot model)."""
GENERATION_FORMAT: Final = "%Y%m%d%H%M%S"
GENERATION_LENGTH: Final = 14
"""The creation time that ends every job id: ``<prefix>-<yyyymmddHHMMSS>``."""
MAX_PREFIX_LENGTH: Final = JOB_ID_MAX_LENGTH - GENERATION_LENGTH - 1
REPLACE_ON: Final = ("region", "target_arn", "job_template_arn", "job_id_prefix")
UPDATE_ON: Final = ("description",)
GONE_STATUSES: Final = ("DELETION_IN_PROGRESS",)
CANCEL_REASON: Final = "FLEETGUARD_STACK_REMOVED"
"""CancelJob's reasonCode (``[\\p{Upper}\\p{Digit}_]+``, at most 128)."""
STOPPED_STATUSES: Final = ("CANCELED", "COMPLETED", *GONE_STATUSES)
"""Job statuses with nothing left to cancel (an abort cancels the job, and the stack keeps it so)."""
NOT_FOUND: Final = "ResourceNotFoundException"

Clock = Callable[[], datetime]


class ContinuousJobError(Exception):
    """The job AWS created is not the one the stack declares (e.g. without abort criteria)."""


class ContinuousJobArgs(TypedDict):
    job_id_prefix: str
    """Every job id starts with it (at most 49 characters of letters, digits, ``-`` and ``_``)."""
    region: pulumi.Input[str]
    target_arn: pulumi.Input[str]
    """The thing group (typically dynamic) whose members, present and future, get the job."""
    job_template_arn: pulumi.Input[str]
    description: str


def check_job_id_prefix(prefix: str) -> None:
    if len(prefix) > MAX_PREFIX_LENGTH or not re.fullmatch(JOB_ID_PATTERN, prefix):
        raise ValueError(
            f"job id prefix {prefix!r} must match {JOB_ID_PATTERN} and have at most {MAX_PREFIX_LENGTH} "
            f"characters (a job id is at most {JOB_ID_MAX_LENGTH}, with its {GENERATION_LENGTH}-digit creation time)"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ContinuousJobProvider(ResourceProvider):
    """Create, read, diff, update and delete one continuous job; holds no client (it is pickled)."""

    serialize_as_secret_always = False

    def __init__(self, client_factory: ClientFactory | None = None, clock: Clock | None = None) -> None:
        super().__init__()
        self._client_factory = client_factory
        self._clock = clock

    def _client(self, props: dict[str, Any]) -> Any:
        return (self._client_factory or iot_client)(str(props["region"]))

    def create(self, props: dict[str, Any]) -> CreateResult:
        prefix = str(props["job_id_prefix"])
        check_job_id_prefix(prefix)
        job_id = f"{prefix}-{(self._clock or _utc_now)().strftime(GENERATION_FORMAT)}"
        client = self._client(props)
        client.create_job(
            jobId=job_id,
            targets=[props["target_arn"]],
            targetSelection="CONTINUOUS",
            jobTemplateArn=props["job_template_arn"],
            description=props["description"],
        )
        job = client.describe_job(jobId=job_id)["job"]
        if not job.get("abortConfig", {}).get("criteriaList"):
            client.cancel_job(jobId=job_id, reasonCode="NO_ABORT_CRITERIA", force=False)
            raise ContinuousJobError(
                f"job {job_id} from {props['job_template_arn']} has no abort criteria, so it was cancelled: a "
                "continuous firmware job must stop itself on failures (check the template's abortConfig)"
            )
        return CreateResult(job_id, _outs(props, job))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            job = self._client(props).describe_job(jobId=id_)["job"]
        except Exception as error:  # botocore's ClientError, imported only with boto3
            if _error_code(error) == NOT_FOUND:
                return ReadResult("", {})
            raise
        if job.get("status") in GONE_STATUSES:
            return ReadResult("", {})
        return ReadResult(id_, _outs(props, job))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_ON if olds.get(key) != news.get(key)]
        updates = [key for key in UPDATE_ON if olds.get(key) != news.get(key)]
        # The new job (new id) is created before the old one is cancelled: devices are never without one.
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=False)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self._client(news)
        client.update_job(jobId=id_, description=news["description"])
        return UpdateResult(_outs(news, client.describe_job(jobId=id_)["job"]))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Cancel the job unless it has stopped already. CancelJob models no error of its own for a job that
        is no longer in progress, so the job's status decides: read before the cancel and, when the cancel
        fails, after it (the job may have stopped in between)."""
        client = self._client(props)
        if _stopped(client, id_):
            return
        try:
            client.cancel_job(
                jobId=id_, reasonCode=CANCEL_REASON, comment="The fleetguard stack that created it removed it",
                force=False,
            )
        except Exception:
            if not _stopped(client, id_):
                raise


def _stopped(client: Any, job_id: str) -> bool:
    try:
        status = client.describe_job(jobId=job_id)["job"].get("status")
    except Exception as error:
        if _error_code(error) == NOT_FOUND:
            return True
        raise
    return status in STOPPED_STATUSES


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _outs(props: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The inputs, plus what AWS reports: the job's ARN and status, and the rollout, abort and presigned
    URL settings it inherited from the template."""
    return {
        **{key: props[key] for key in (*REPLACE_ON, *UPDATE_ON)},
        "job_id": job["jobId"],
        "job_arn": job["jobArn"],
        "job_status": job.get("status"),
        "abort_config": job.get("abortConfig"),
        "rollout_config": job.get("jobExecutionsRolloutConfig"),
        "presigned_url_config": job.get("presignedUrlConfig"),
    }


class ContinuousJob(Resource, module="fleetguard", name="ContinuousJob"):
    """A continuous job from a template on one thing group."""

    job_id: pulumi.Output[str]
    job_arn: pulumi.Output[str]
    job_status: pulumi.Output[str]

    def __init__(self, name: str, args: ContinuousJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_job_id_prefix(args["job_id_prefix"])  # at preview, before anything is created
        super().__init__(
            ContinuousJobProvider(),
            name,
            {
                **args,
                "job_id": None,
                "job_arn": None,
                "job_status": None,
                "abort_config": None,
                "rollout_config": None,
                "presigned_url_config": None,
            },
            opts,
        )

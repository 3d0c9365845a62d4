"""Fleet-wide visibility and recovery: fleet indexing, dynamic thing groups for the questions responders
ask, fleet metrics with CloudWatch alarms into the alert path, and a firmware recovery job template with
a staged rollout that aborts itself on failures.

Fleet indexing is account-wide. When this stack owns it, the dynamic groups and fleet metrics are
ordered after it (both need the index); when another stack owns it, ``IndexingSettings`` states what
that owner indexes, and the owner must also index the firmware attribute as a String custom field.
Either way they also wait for the index to be ACTIVE (``IndexReady``): AWS builds it in the background
after every indexing change and refuses fleet metrics until it is done.
AWS refuses to downgrade the data sources or change a custom field that existing fleet metrics use, so
turning a source off (or renaming the firmware attribute) means removing the metrics that need it first.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from components.arns import arn
from components.continuous_job import ContinuousJob
from components.deployment import DeploymentArgs
from components.iam import policy_document, service_role, statement
from components.index_ready import IndexReady
from components.tags import native_tags
from settings.fleet import FirmwareSettings, FleetSettings, IndexingSettings, Kpi, MetricSettings, RecoverySettings

native = aws_native.iot

THING_INDEX: Final = "AWS_Things"
QUERY_VERSION: Final = "2017-09-30"
FLEET_METRICS_NAMESPACE: Final = "IoTFleetMetrics"
"""CloudWatch namespace fleet metrics are emitted to: the metric name is the fleet metric's name and the
one dimension, AggregationType, holds the aggregation value (here ``count``)."""
COUNT: Final = "count"

# Characters the fleet indexing query syntax treats as operators unless escaped with a backslash.
_QUERY_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')


def escape_query_term(value: str) -> str:
    """``value`` as one literal term of a fleet indexing query."""
    return _QUERY_SPECIAL.sub(r"\\\1", value)


@dataclass(frozen=True)
class KpiQuery:
    """A fleet indexing query for one KPI and the field a fleet metric counts it by."""

    slug: str
    """Name suffix for the group, fleet metric and alarm."""
    query: str
    aggregation_field: str
    """An indexed field every matching thing has, so Statistics ``count`` counts the matches."""
    description: str


def kpi_query(kpi: Kpi, firmware: FirmwareSettings) -> KpiQuery:
    """The query behind a KPI, in fleet indexing query syntax."""
    if kpi is Kpi.IN_VIOLATION:
        # deviceDefender.violationCount (managed Number field, indexed with Device Defender VIOLATIONS) is
        # the thing's number of active Detect violations: above zero means it is in violation right now.
        return KpiQuery(
            "in-violation", "deviceDefender.violationCount>0", "deviceDefender.violationCount",
            "Devices with at least one active Device Defender Detect violation",
        )
    if kpi is Kpi.DISCONNECTED:
        # connectivity.connected (managed Boolean field, indexed with connectivity STATUS) is false when
        # the thing's latest lifecycle event is a disconnect.
        return KpiQuery(
            "disconnected", "connectivity.connected:false", "connectivity.connected",
            "Devices whose latest lifecycle event is a disconnect",
        )
    version = firmware.watched_version or ""
    # attributes.<name>:<value> matches the registry attribute exactly (search is case-insensitive); the
    # version is escaped so characters such as "-" are not read as query operators.
    return KpiQuery(
        f"firmware-{_slug(version)}",
        f"attributes.{firmware.attribute}:{escape_query_term(version)}",
        f"attributes.{firmware.attribute}",
        f"Devices reporting firmware {version} in attribute {firmware.attribute}",
    )


def _slug(text: str) -> str:
    """Thing group names and job template ids allow letters, digits, "_" and "-" only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def thing_indexing_configuration(
    indexing: IndexingSettings, firmware: FirmwareSettings
) -> aws.iot.IndexingConfigurationThingIndexingConfigurationArgs:
    """Registry always (dynamic groups need it), the other sources as the environment chooses, and the
    firmware attribute as a custom field so fleet metrics can aggregate on it."""
    return aws.iot.IndexingConfigurationThingIndexingConfigurationArgs(
        thing_indexing_mode="REGISTRY_AND_SHADOW" if indexing.shadow else "REGISTRY",
        thing_connectivity_indexing_mode="STATUS" if indexing.connectivity else "OFF",
        device_defender_indexing_mode="VIOLATIONS" if indexing.device_defender_violations else "OFF",
        custom_fields=[
            aws.iot.IndexingConfigurationThingIndexingConfigurationCustomFieldArgs(
                name=f"attributes.{firmware.attribute}", type="String",
            ),
        ],
    )


def indexing_fingerprint(indexing: IndexingSettings, firmware: FirmwareSettings) -> str:
    """A digest of what the index holds: it changes exactly when the index is rebuilt, so the readiness
    wait runs again on the update that changes it."""
    described = {
        "manage": indexing.manage,
        "shadow": indexing.shadow,
        "connectivity": indexing.connectivity,
        "deviceDefenderViolations": indexing.device_defender_violations,
        "customFields": [f"attributes.{firmware.attribute}"],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def firmware_job_document(
    recovery: RecoverySettings, version_attribute: str, region: pulumi.Input[str], dns_suffix: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The job document devices receive. AWS IoT swaps the placeholder for a presigned S3 URL each time a
    device fetches the document, so devices that were offline for days still get a working link."""
    url = pulumi.Output.format(
        "${{aws:iot:s3-presigned-url:https://s3.{0}.{1}/{2}/{3}}}",
        region, dns_suffix, recovery.firmware_bucket, recovery.firmware_key,
    )
    document: dict[str, object] = {
        "operation": "firmware-update",
        "firmwareVersion": recovery.firmware_version,
        "firmwareUrl": url,
        "reportVersionInAttribute": version_attribute,
    }
    if recovery.firmware_sha256:
        document["firmwareSha256"] = recovery.firmware_sha256
    return pulumi.Output.json_dumps(document)


def rollout_config(recovery: RecoverySettings) -> native.JobExecutionsRolloutConfigPropertiesArgs:
    rollout = recovery.rollout
    return native.JobExecutionsRolloutConfigPropertiesArgs(
        exponential_rollout_rate=native.JobTemplateExponentialRolloutRateArgs(
            base_rate_per_minute=rollout.base_rate_per_minute,
            increment_factor=rollout.increment_factor,
            rate_increase_criteria=native.JobTemplateRateIncreaseCriteriaArgs(
                number_of_succeeded_things=rollout.increase_after_succeeded,
            ),
        ),
        maximum_per_minute=rollout.maximum_per_minute,
    )


def abort_config(recovery: RecoverySettings) -> native.AbortConfigPropertiesArgs:
    return native.AbortConfigPropertiesArgs(criteria_list=[
        native.JobTemplateAbortCriteriaArgs(
            action=native.JobTemplateAction.CANCEL,
            failure_type=native.JobTemplateFailureType(criterion.failure_type),
            min_number_of_executed_things=criterion.min_executed_things,
            threshold_percentage=float(criterion.threshold_percent),
        )
        for criterion in recovery.abort
    ])


def retry_config(recovery: RecoverySettings) -> native.JobExecutionsRetryConfigPropertiesArgs | None:
    if not recovery.retry:
        return None
    return native.JobExecutionsRetryConfigPropertiesArgs(retry_criteria_list=[
        native.JobTemplateRetryCriteriaArgs(
            failure_type=native.JobTemplateJobRetryFailureType(criterion.failure_type),
            number_of_retries=criterion.retries,
        )
        for criterion in recovery.retry
    ])


class FleetArgs(DeploymentArgs):
    """Inputs of the fleet component."""

    settings: FleetSettings
    """Validated fleet settings (indexing, groups, metrics, recovery)."""
    dns_suffix: pulumi.Input[str]
    """The partition's DNS suffix (amazonaws.com, amazonaws.com.cn) for the S3 endpoint (in the
    deployment's region) the firmware is downloaded from."""
    alarm_topic_arn: pulumi.Input[str]
    """Topic KPI alarms notify (the responders topic); its policy must admit these alarms."""


class FleetComponent(pulumi.ComponentResource):
    """Fleet indexing, dynamic groups, KPI fleet metrics with alarms, and the recovery job template."""

    indexing: aws.iot.IndexingConfiguration | None
    index_ready: IndexReady | None
    """Holds the deploy until the thing index is ACTIVE; registered when a group or metric needs it."""
    dynamic_groups: dict[Kpi, native.ThingGroup]
    fleet_metrics: dict[Kpi, native.FleetMetric]
    alarms: dict[Kpi, aws.cloudwatch.MetricAlarm]
    dynamic_group_names: dict[str, str]
    """KPI -> dynamic thing group name, for other teams' jobs and searches."""
    fleet_metric_names: dict[str, pulumi.Output[str]]
    """KPI -> fleet metric name (also its CloudWatch metric name in the IoTFleetMetrics namespace)."""
    recovery_role: aws.iam.Role | None
    recovery_template: native.JobTemplate | None
    recovery_template_arn: pulumi.Output[str] | None
    """The jobTemplateArn for CreateJob (e.g. a continuous job targeting the watched-firmware group)."""
    continuous_job: ContinuousJob | None
    """With ``recovery.continuous``: the job from the recovery template on the watched-firmware group."""

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:fleet:Fleet", name, None, opts)
        settings = args["settings"]
        tag_list = native_tags(args["tags"], aws_native.TagArgs)

        self.indexing = None
        if settings.indexing.manage:
            self.indexing = aws.iot.IndexingConfiguration(
                f"{name}-indexing",
                thing_indexing_configuration=thing_indexing_configuration(settings.indexing, settings.firmware),
                # Account-wide: destroying this stack must not switch indexing off under other teams'
                # dynamic groups and fleet metrics.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        self.index_ready = None
        if settings.dynamic_groups or settings.metrics:
            # Also when another stack owns indexing: it costs one DescribeIndex when the index is ready,
            # and turns "indexing is off" into a clear error instead of a failed fleet metric.
            self.index_ready = IndexReady(
                f"{name}-index-ready",
                {
                    "index_name": THING_INDEX,
                    "region": args["region"],
                    "timeout_seconds": settings.indexing.ready_timeout_seconds,
                    "indexing_fingerprint": indexing_fingerprint(settings.indexing, settings.firmware),
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.indexing] if self.indexing else None),
            )
        needs_index = pulumi.ResourceOptions(parent=self, depends_on=[self.index_ready] if self.index_ready else None)

        self.dynamic_groups = {}
        self.dynamic_group_names = {}
        for kpi in settings.dynamic_groups:
            query = kpi_query(kpi, settings.firmware)
            self.dynamic_group_names[kpi.value] = f"{name}-{query.slug}"
            self.dynamic_groups[kpi] = native.ThingGroup(
                f"{name}-{query.slug}",
                thing_group_name=self.dynamic_group_names[kpi.value],
                query_string=query.query,
                thing_group_properties=native.ThingGroupPropertiesPropertiesArgs(
                    thing_group_description=query.description,
                ),
                tags=tag_list,
                opts=needs_index,
            )

        self.fleet_metrics = {}
        self.fleet_metric_names = {}
        self.alarms = {}
        for metric in settings.metrics:
            self._kpi_metric(
                name, metric=metric, firmware=settings.firmware, args=args, tag_list=tag_list,
                needs_index=needs_index,
            )

        self.recovery_role = None
        self.recovery_template = None
        self.recovery_template_arn = None
        self.continuous_job = None
        if settings.recovery is not None:
            template = self._recovery(name, settings.recovery, settings.firmware.attribute, args)
            if settings.recovery.continuous:
                self._continuous_job(name, settings.recovery, settings.firmware, args, template)

        self.register_outputs({
            "dynamicGroupNames": self.dynamic_group_names,
            "fleetMetricNames": self.fleet_metric_names,
            "recoveryTemplateArn": self.recovery_template_arn,
            "continuousJobId": self.continuous_job.job_id if self.continuous_job else None,
        })

    def _kpi_metric(
        self,
        name: str,
        *,
        metric: MetricSettings,
        firmware: FirmwareSettings,
        args: FleetArgs,
        tag_list: list[aws_native.TagArgs],
        needs_index: pulumi.ResourceOptions,
    ) -> None:
        query = kpi_query(metric.kpi, firmware)
        fleet_metric = native.FleetMetric(
            f"{name}-{query.slug}-metric",
            metric_name=f"{name}-{query.slug}",
            description=f"{query.description} (count)",
            index_name=THING_INDEX,
            query_string=query.query,
            query_version=QUERY_VERSION,
            aggregation_field=query.aggregation_field,
            aggregation_type=native.FleetMetricAggregationTypeArgs(name="Statistics", values=[COUNT]),
            period=metric.period_seconds,
            unit="Count",
            tags=tag_list,
            opts=needs_index,
        )
        self.fleet_metrics[metric.kpi] = fleet_metric
        self.fleet_metric_names[metric.kpi.value] = fleet_metric.metric_name
        self.alarms[metric.kpi] = aws.cloudwatch.MetricAlarm(
            f"{name}-{query.slug}-alarm",
            name=f"{name}-{query.slug}",
            alarm_description=f"fleetguard KPI: {query.description} above {metric.threshold}",
            namespace=FLEET_METRICS_NAMESPACE,
            metric_name=fleet_metric.metric_name,
            dimensions={"AggregationType": COUNT},
            statistic="Maximum",
            period=metric.period_seconds,
            evaluation_periods=metric.evaluation_periods,
            datapoints_to_alarm=metric.datapoints_to_alarm,
            threshold=float(metric.threshold),
            comparison_operator="GreaterThanThreshold",
            # A count fleet metric publishes no datapoint while its query matches no thing: for these KPIs
            # that is the healthy fleet (nobody in violation, disconnected or on the watched firmware), and
            # a count of nothing is never above a threshold of 0 or more. Treating it as missing would hold
            # the alarm in INSUFFICIENT_DATA and page responders about a quiet, healthy fleet.
            treat_missing_data="notBreaching",
            alarm_actions=[args["alarm_topic_arn"]],
            ok_actions=[args["alarm_topic_arn"]],
            tags=args["tags"],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _recovery(
        self, name: str, recovery: RecoverySettings, version_attribute: str, args: FleetArgs
    ) -> tuple[native.JobTemplate, pulumi.Output[str]]:
        firmware_object = arn(
            args["partition"], "s3", f"{recovery.firmware_bucket}/{recovery.firmware_key}", region=None, account=None
        )
        self.recovery_role = service_role(
            f"{name}-recovery-role", "iot.amazonaws.com", account_id=args["account_id"],
            description="Assumed by AWS IoT Jobs to presign the recovery firmware download",
            tags=args["tags"], opts=pulumi.ResourceOptions(parent=self),
        )
        read_firmware = aws.iam.RolePolicy(
            f"{name}-recovery-read-firmware",
            role=self.recovery_role.id,
            policy=policy_document(statement(["s3:GetObject"], [firmware_object], sid="ReadRecoveryFirmware")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        template_id = f"{name}-recovery-{_slug(recovery.firmware_version)}"
        self.recovery_template = native.JobTemplate(
            template_id,
            # Every template property is create-only, so the id carries the version: a new release is
            # a new template, created before the old one is deleted.
            job_template_id=template_id,
            description=f"fleetguard recovery: roll devices to known-good firmware {recovery.firmware_version}",
            document=firmware_job_document(recovery, version_attribute, args["region"], args["dns_suffix"]),
            presigned_url_config=native.PresignedUrlConfigPropertiesArgs(
                role_arn=self.recovery_role.arn,
                expires_in_sec=recovery.presigned_url_expiry_seconds,
            ),
            job_executions_rollout_config=rollout_config(recovery),
            abort_config=abort_config(recovery),
            timeout_config=native.TimeoutConfigPropertiesArgs(
                in_progress_timeout_in_minutes=recovery.in_progress_timeout_minutes,
            ),
            job_executions_retry_config=retry_config(recovery),
            tags=native_tags(args["tags"], aws_native.CreateOnlyTagArgs),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[read_firmware]),
        )
        self.recovery_template_arn = arn(
            args["partition"], "iot", pulumi.Output.concat("jobtemplate/", self.recovery_template.job_template_id),
            region=args["region"], account=args["account_id"],
        )
        return self.recovery_template, self.recovery_template_arn

    def _continuous_job(
        self, name: str, recovery: RecoverySettings, firmware: FirmwareSettings, args: FleetArgs,
        template: tuple[native.JobTemplate, pulumi.Output[str]],
    ) -> None:
        """Patch devices as they come online: every device that is, or later joins, the watched-firmware
        group gets the recovery job, with the template's rollout and abort limits."""
        group = self.dynamic_groups[Kpi.WATCHED_FIRMWARE]
        template_resource, template_arn = template
        self.continuous_job = ContinuousJob(
            f"{name}-continuous-patch",
            {
                "job_id_prefix": f"{name}-patch",
                "region": args["region"],
                "target_arn": group.arn,
                "job_template_arn": template_arn,
                "description": (
                    f"fleetguard: devices reporting firmware {firmware.watched_version} get "
                    f"{recovery.firmware_version} when they connect"
                ),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[group, template_resource]),
        )

"""Device Defender Detect: a rule-based and an ML Detect security profile, wired to the alert topic."""

from __future__ import annotations

import pulumi
import pulumi_aws_native as aws_native

from components.arns import arn
from components.deployment import DeploymentArgs
from components.tags import native_tags
from settings.detect import DetectSettings, MlBehavior, RuleBehavior

native = aws_native.iot


class DetectArgs(DeploymentArgs):
    """Inputs of the detect component. The profiles target things in the deployment's account and region."""

    settings: DetectSettings
    """Validated Detect settings (behaviors, targets, ML)."""
    alert_topic_arn: pulumi.Input[str]
    """SNS topic violations are sent to."""
    alert_role_arn: pulumi.Input[str]
    """Role Device Defender assumes to publish violations."""


def rule_behavior(behavior: RuleBehavior) -> native.SecurityProfileBehaviorArgs:
    """A rule-based behavior exactly as the SecurityProfile schema takes it."""
    value = None
    if behavior.count is not None:
        # CloudFormation types Count as a string.
        value = native.SecurityProfileMetricValueArgs(count=str(behavior.count))
    elif behavior.ports is not None:
        value = native.SecurityProfileMetricValueArgs(ports=list(behavior.ports))
    elif behavior.cidrs is not None:
        value = native.SecurityProfileMetricValueArgs(cidrs=list(behavior.cidrs))
    statistical = (
        native.SecurityProfileStatisticalThresholdArgs(
            statistic=native.SecurityProfileStatisticalThresholdStatistic(behavior.statistic)
        )
        if behavior.statistic else None
    )
    return native.SecurityProfileBehaviorArgs(
        name=behavior.name,
        metric=behavior.metric,
        suppress_alerts=behavior.suppress_alerts,
        criteria=native.SecurityProfileBehaviorCriteriaArgs(
            comparison_operator=native.SecurityProfileBehaviorCriteriaComparisonOperator(behavior.operator),
            value=value,
            statistical_threshold=statistical,
            duration_seconds=behavior.duration_seconds,
            consecutive_datapoints_to_alarm=behavior.datapoints_to_alarm,
            consecutive_datapoints_to_clear=behavior.datapoints_to_clear,
        ),
    )


def ml_behavior(behavior: MlBehavior) -> native.SecurityProfileBehaviorArgs:
    """An ML Detect behavior: no operator or value, only the confidence level."""
    return native.SecurityProfileBehaviorArgs(
        name=behavior.name,
        metric=behavior.metric,
        suppress_alerts=behavior.suppress_alerts,
        criteria=native.SecurityProfileBehaviorCriteriaArgs(
            ml_detection_config=native.SecurityProfileMachineLearningDetectionConfigArgs(
                confidence_level=native.SecurityProfileMachineLearningDetectionConfigConfidenceLevel(
                    behavior.confidence
                ),
            ),
            consecutive_datapoints_to_alarm=behavior.datapoints_to_alarm,
            consecutive_datapoints_to_clear=behavior.datapoints_to_clear,
        ),
    )


class DetectComponent(pulumi.ComponentResource):
    """The security profiles; created only when the environment has Detect enabled."""

    rule_profile: native.SecurityProfile
    ml_profile: native.SecurityProfile | None

    def __init__(self, name: str, args: DetectArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fleetguard:detect:Detect", name, None, opts)
        settings = args["settings"]
        target_resources = [f"thinggroup/{group}" for group in settings.target_groups] or ["all/things"]
        targets: list[pulumi.Input[str]] = [
            arn(args["partition"], "iot", resource, region=args["region"], account=args["account_id"])
            for resource in target_resources
        ]
        alert_targets = {
            "SNS": native.SecurityProfileAlertTargetArgs(
                alert_target_arn=args["alert_topic_arn"], role_arn=args["alert_role_arn"],
            )
        }
        tags = native_tags(args["tags"], aws_native.TagArgs)

        def profile(
            suffix: str,
            profile_name: str,
            description: str,
            behaviors: list[native.SecurityProfileBehaviorArgs],
            retained: list[native.SecurityProfileMetricToRetainArgs] | None = None,
        ) -> native.SecurityProfile:
            """A profile alerting the alert topic about the targeted things; both profiles share those."""
            return native.SecurityProfile(
                f"{name}-{suffix}",
                security_profile_name=profile_name,
                security_profile_description=description,
                behaviors=behaviors,
                alert_targets=alert_targets,
                target_arns=targets,
                additional_metrics_to_retain_v2=retained,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )

        retained = [native.SecurityProfileMetricToRetainArgs(metric=metric) for metric in settings.metrics_to_retain]
        self.rule_profile = profile(
            "rules", settings.rule_profile_name, "fleetguard rule-based behaviors: ports, message size and rates",
            [rule_behavior(behavior) for behavior in settings.rule_behaviors], retained or None,
        )
        self.ml_profile = None
        if settings.ml_enabled:
            self.ml_profile = profile(
                "ml", settings.ml_profile_name, "fleetguard ML Detect behaviors (alarms after 14 days of training)",
                [ml_behavior(behavior) for behavior in settings.ml_behaviors],
            )
        self.register_outputs({
            "ruleProfileArn": self.rule_profile.security_profile_arn,
            "mlProfileArn": self.ml_profile.security_profile_arn if self.ml_profile else None,
        })

"""DashboardStack (primary region): the operations dashboard, graphing metrics of every
region they land in (README, "Dashboards"). CdnAlarmsStack (us-east-1): the cache hit rate
alarm, which must live where CloudFront's metrics are."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.constructs.dashboard import (
    CdnRef,
    OperationsDashboard,
    ReplicationRuleRef,
    cloudfront_metric,
)


class DashboardStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        bucket_name: str,
        table_name: str,
        replication_rules: Sequence[ReplicationRuleRef] = (),
        cdn: CdnRef | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.operations = OperationsDashboard(
            self,
            "Operations",
            app_name=app_name,
            bucket_name=bucket_name,
            table_name=table_name,
            replication_rules=replication_rules,
            cdn=cdn,
        )


class CdnAlarmsStack(Stack):
    """An alarm watches only metrics of its own region and notifies only topics of its own
    region; CloudFront's metrics are in us-east-1. With the primary region elsewhere, the
    alarm gets a topic here, subscribed by the same operator email as the main topic."""

    REGION = "us-east-1"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        distribution_id: str,
        cache_hit_rate_target_percent: float,
        alarm_topic: sns.ITopic | None,
        alarm_email: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if alarm_topic is None:
            # Unencrypted: CloudWatch cannot publish under the AWS managed aws/sns key, and
            # the topic carries only this alarm's notices (a customer key would cost more).
            topic = sns.Topic(
                self, "CdnAlarmTopic", display_name=f"{app_name} CDN alarms", enforce_ssl=True
            )
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="PublishCloudwatch",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )
            alarm_topic = topic
        self.cache_hit_rate_alarm = cloudwatch.Alarm(
            self,
            "CacheHitRateAlarm",
            alarm_name=f"{app_name}-cache-hit-rate",
            alarm_description=(
                f"CloudFront's cache hit rate stayed below {cache_hit_rate_target_percent:g} %"
                " for an hour."
            ),
            metric=cloudfront_metric(distribution_id, "CacheHitRate", "Average").with_(
                period=Duration.minutes(15)
            ),
            threshold=cache_hit_rate_target_percent,
            evaluation_periods=4,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            # No requests is no evidence of a poor cache.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(alarm_topic)
        self.cache_hit_rate_alarm.add_alarm_action(action)
        self.cache_hit_rate_alarm.add_ok_action(action)

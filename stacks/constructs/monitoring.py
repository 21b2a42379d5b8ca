"""Alerts: one SNS topic with the operator's email, alarms on the bucket, a cost budget."""

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.constructs.keys import customer_key

# The S3 request-metrics filter the 5xx alarm reads (CloudWatch dimension FilterId).
REQUEST_METRICS_FILTER = "EntireBucket"

_PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


class Monitoring(Construct):
    """An encrypted, TLS-only alarm topic and the alarms and budget that notify it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        alarm_email: str,
        monthly_budget_usd: float,
        encrypted_topic: bool = True,
        budget_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        # Unencrypted only for host-only deployments, which hold no KMS key: the topic carries
        # only alarm and budget notices, and CloudWatch and Budgets cannot publish under the
        # AWS managed aws/sns key.
        self.topic_key = None
        if encrypted_topic:
            # CloudWatch and Budgets publish to an encrypted topic only if the key lets them;
            # a key of its own keeps the media key's policy free of these service principals.
            self.topic_key = customer_key(
                self,
                "TopicKey",
                alias=f"alias/{app_name}/alerts",
                description=f"Encrypts the {app_name} alarm topic.",
            )
            for service in _PUBLISHERS:
                self.topic_key.add_to_resource_policy(
                    iam.PolicyStatement(
                        sid=f"Publish{service.split('.')[0].capitalize()}",
                        principals=[iam.ServicePrincipal(service)],
                        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                        resources=["*"],
                        conditions={"StringEquals": {"aws:SourceAccount": account}},
                    )
                )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{app_name} alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        for service in _PUBLISHERS:
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Publish{service.split('.')[0].capitalize()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": account}},
                )
            )
        self._action = cloudwatch_actions.SnsAction(self.topic)

        budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name or f"{app_name}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_budget_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(
                            subscription_type="SNS", address=self.topic.topic_arn
                        )
                    ],
                )
                for kind, percent in (("ACTUAL", 80), ("FORECASTED", 100))
            ],
        )

    def alarm(self, construct_id: str, **props) -> cloudwatch.Alarm:
        """A CloudWatch alarm that notifies the topic when it fires and when it clears."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            **props,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm

    def watch_bucket_errors(self, bucket: s3.IBucket, *, threshold: int) -> cloudwatch.Alarm:
        """Alarm when the bucket answers ``threshold`` or more 5xx errors in five minutes."""
        return self.alarm(
            "Bucket5xxAlarm",
            alarm_description="The media bucket answered 5xx errors (S3 request metrics).",
            metric=cloudwatch.Metric(
                namespace="AWS/S3",
                metric_name="5xxErrors",
                dimensions_map={
                    "BucketName": bucket.bucket_name,
                    "FilterId": REQUEST_METRICS_FILTER,
                },
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )

    def watch_replication(
        self,
        *,
        source: s3.IBucket,
        destination: s3.IBucket,
        rule_ids: Sequence[str],
        latency_seconds: int,
    ) -> None:
        """Alarm on replication lag and on any failed replication, across all rules."""

        def per_rule(metric_name: str, statistic: str) -> dict[str, cloudwatch.Metric]:
            return {
                f"r{index}": cloudwatch.Metric(
                    namespace="AWS/S3",
                    metric_name=metric_name,
                    dimensions_map={
                        "SourceBucket": source.bucket_name,
                        "DestinationBucket": destination.bucket_name,
                        "RuleId": rule_id,
                    },
                    statistic=statistic,
                    period=Duration.minutes(5),
                )
                for index, rule_id in enumerate(rule_ids)
            }

        latency = per_rule("ReplicationLatency", "Maximum")
        failed = per_rule("OperationsFailedReplication", "Sum")
        self.alarm(
            "ReplicationLatencyAlarm",
            alarm_description=f"Replication lags more than {latency_seconds} s behind.",
            metric=cloudwatch.MathExpression(
                expression=f"MAX([{','.join(latency)}])",
                using_metrics=latency,
                label="Worst replication latency",
                period=Duration.minutes(5),
            ),
            threshold=latency_seconds,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        self.alarm(
            "ReplicationFailedAlarm",
            alarm_description="Objects failed to replicate to the replica bucket.",
            metric=cloudwatch.MathExpression(
                expression=f"SUM([{','.join(failed)}])",
                using_metrics=failed,
                label="Failed replication operations",
                period=Duration.minutes(5),
            ),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

"""The operator's CloudWatch dashboard: storage, CDN, resizer, catalog and replication.

A dashboard lives in one region but each metric names its own: CloudFront's metrics are in
us-east-1 (dimension ``Region=Global``), the resizer's (Lambda@Edge) in every region that ran
it, under the function name prefixed with ``us-east-1.``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

CLOUDFRONT_REGION = "us-east-1"
# S3 storage metrics are daily; the bucket's objects move to Intelligent-Tiering (its
# frequent, infrequent and archive-instant tiers each report their own StorageType).
STORAGE_TYPES = (
    "StandardStorage",
    "IntelligentTieringFAStorage",
    "IntelligentTieringIAStorage",
    "IntelligentTieringAIAStorage",
)
FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True)
class ReplicationRuleRef:
    source_bucket: str
    destination_bucket: str
    rule_id: str


@dataclass(frozen=True)
class CdnRef:
    distribution_id: str
    resizer_function_name: str
    edge_regions: Sequence[str]


def cloudfront_metric(distribution_id: str, name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/CloudFront",
        metric_name=name,
        dimensions_map={"DistributionId": distribution_id, "Region": "Global"},
        statistic=statistic,
        period=FIVE_MINUTES,
        region=CLOUDFRONT_REGION,
    )


class OperationsDashboard(Construct):
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{app_name}-operations"
        )
        self.dashboard.add_widgets(*self._storage(bucket_name))
        if cdn is not None:
            self.dashboard.add_widgets(*self._cdn(cdn.distribution_id))
            self.dashboard.add_widgets(*self._resizer(cdn))
        self.dashboard.add_widgets(*self._catalog_and_replication(table_name, replication_rules))

    @staticmethod
    def _storage(bucket: str) -> list[cloudwatch.IWidget]:
        def daily(name: str, storage_type: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/S3",
                metric_name=name,
                dimensions_map={"BucketName": bucket, "StorageType": storage_type},
                statistic="Average",
                period=Duration.days(1),
                label=storage_type,
            )

        return [
            cloudwatch.GraphWidget(
                title="Media bucket size (bytes, by storage class)",
                left=[daily("BucketSizeBytes", kind) for kind in STORAGE_TYPES],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Media bucket objects",
                left=[daily("NumberOfObjects", "AllStorageTypes")],
                width=12,
            ),
        ]

    @staticmethod
    def _cdn(distribution_id: str) -> list[cloudwatch.IWidget]:
        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudfront_metric(distribution_id, name, statistic)

        return [
            cloudwatch.GraphWidget(
                title="CloudFront requests", left=[metric("Requests", "Sum")], width=8
            ),
            cloudwatch.GraphWidget(
                title="CloudFront cache hit rate (%)",
                left=[metric("CacheHitRate", "Average")],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="CloudFront error rates (%)",
                left=[metric("4xxErrorRate", "Average"), metric("5xxErrorRate", "Average")],
                width=8,
            ),
        ]

    @staticmethod
    def _resizer(cdn: CdnRef) -> list[cloudwatch.IWidget]:
        """One line per serving region: Lambda@Edge reports where it ran."""

        def per_region(name: str, statistic: str) -> list[cloudwatch.Metric]:
            return [
                cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name=name,
                    dimensions_map={"FunctionName": cdn.resizer_function_name},
                    statistic=statistic,
                    period=FIVE_MINUTES,
                    region=region,
                    label=f"{region} {statistic}",
                )
                for region in cdn.edge_regions
            ]

        return [
            cloudwatch.GraphWidget(
                title="Resizer invocations", left=per_region("Invocations", "Sum"), width=6
            ),
            cloudwatch.GraphWidget(
                title="Resizer errors", left=per_region("Errors", "Sum"), width=6
            ),
            cloudwatch.GraphWidget(
                title="Resizer duration p50 / p99 (ms)",
                left=[*per_region("Duration", "p50"), *per_region("Duration", "p99")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Resizer throttles", left=per_region("Throttles", "Sum"), width=6
            ),
        ]

    @staticmethod
    def _catalog_and_replication(
        table: str, rules: Sequence[ReplicationRuleRef]
    ) -> list[cloudwatch.IWidget]:
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Catalog table throttled events",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/DynamoDB",
                        metric_name=name,
                        dimensions_map={"TableName": table},
                        statistic="Sum",
                        period=FIVE_MINUTES,
                    )
                    for name in ("ReadThrottleEvents", "WriteThrottleEvents")
                ],
                width=8,
            )
        ]
        if rules:

            def per_rule(name: str) -> list[cloudwatch.Metric]:
                return [
                    cloudwatch.Metric(
                        namespace="AWS/S3",
                        metric_name=name,
                        dimensions_map={
                            "SourceBucket": rule.source_bucket,
                            "DestinationBucket": rule.destination_bucket,
                            "RuleId": rule.rule_id,
                        },
                        statistic="Maximum",
                        period=FIVE_MINUTES,
                        label=rule.rule_id,
                    )
                    for rule in rules
                ]

            widgets += [
                cloudwatch.GraphWidget(
                    title="Replication latency (s)", left=per_rule("ReplicationLatency"), width=8
                ),
                cloudwatch.GraphWidget(
                    title="Replication pending bytes",
                    left=per_rule("BytesPendingReplication"),
                    width=8,
                ),
            ]
        return widgets

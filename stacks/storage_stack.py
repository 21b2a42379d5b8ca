"""StorageStack: the media bucket, its key, the catalog table, runtime access and alerts."""

from collections.abc import Sequence

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.buckets import (
    AccessLogBucket,
    allow_cloudfront_reads,
    media_bucket_props,
)
from stacks.constructs.catalog_table import CatalogTable
from stacks.constructs.keys import customer_key
from stacks.constructs.monitoring import REQUEST_METRICS_FILTER, Monitoring
from stacks.constructs.replication import ReplicationRole
from stacks.constructs.runtime_access import RuntimeAccess

# S3 Intelligent-Tiering monitors only objects of 128 KiB and more; smaller ones would pay
# the transition fee and stay in the frequent-access tier.
INTELLIGENT_TIERING_MIN_BYTES = 128 * 1024
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


class StorageStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        media_bucket_name: str,
        permanent_prefixes: Sequence[str],
        temp_prefix: str,
        temp_expiry_days: int,
        noncurrent_version_expiry_days: int,
        access_log_expiry_days: int,
        cors_allowed_origins: Sequence[str],
        alarm_email: str,
        monthly_budget_usd: float,
        bucket_5xx_alarm_threshold: int,
        host_credentials_serial: int,
        replica_bucket: s3.IBucket | None = None,
        replica_region: str | None = None,
        replica_key_alias: str | None = None,
        replication_time_control: bool = False,
        replication_latency_alarm_seconds: int = 900,
        cdn_enabled: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # Fixed names let stacks in other regions (the us-east-1 edge function) name the
        # bucket and key without cross-region exports.
        self.media_bucket_name = media_bucket_name
        self.media_key_alias = f"alias/{app_name}/media"
        self.media_key = customer_key(
            self,
            "MediaKey",
            alias=self.media_key_alias,
            description=f"Encrypts {app_name} media objects and the catalog table.",
        )
        self.access_logs = AccessLogBucket(
            self, "AccessLogs", expiry_days=access_log_expiry_days
        ).bucket

        replication = None
        replication_rules: list[s3.ReplicationRule] = []
        if replica_bucket is not None:
            replication = ReplicationRole(
                self,
                "Replication",
                replica_bucket=replica_bucket,
                replica_region=replica_region,
                replica_key_alias=replica_key_alias,
            )
            replica_key = kms.Key.from_key_arn(
                self,
                "ReplicaKey",
                self.format_arn(
                    service="kms",
                    region=replica_region,
                    resource=replica_key_alias,
                    resource_name=None,
                ),
            )
            rtc = s3.ReplicationTimeValue.FIFTEEN_MINUTES
            replication_rules = [
                s3.ReplicationRule(
                    id=f"Replicate-{prefix.rstrip('/')}",
                    priority=priority,
                    destination=replica_bucket,
                    kms_key=replica_key,
                    filter=s3.Filter(prefix=prefix),
                    sse_kms_encrypted_objects=True,
                    delete_marker_replication=True,
                    metrics=rtc,
                    replication_time_control=rtc if replication_time_control else None,
                )
                for priority, prefix in enumerate(permanent_prefixes)
            ]

        self.replication_rule_ids = [rule.id for rule in replication_rules]
        lifecycle_rules = self._lifecycle_rules(
            permanent_prefixes=permanent_prefixes,
            temp_prefix=temp_prefix,
            temp_expiry_days=temp_expiry_days,
            noncurrent_version_expiry_days=noncurrent_version_expiry_days,
        )
        # Stateful: the media itself. Retained on stack deletion; versioned so that an
        # overwrite or delete can be undone (and migration rollback restores by version id).
        self.media_bucket = s3.Bucket(
            self,
            "MediaBucket",
            bucket_name=self.media_bucket_name,
            **media_bucket_props(
                key=self.media_key, access_logs=self.access_logs, log_prefix="media/"
            ),
            metrics=[s3.BucketMetrics(id=REQUEST_METRICS_FILTER)],
            lifecycle_rules=lifecycle_rules,
            cors=[self._upload_cors_rule(cors_allowed_origins)] if cors_allowed_origins else None,
            replication_rules=replication_rules or None,
            replication_role=replication.role if replication else None,
            removal_policy=RemovalPolicy.RETAIN,
        )
        cfn_bucket = self.media_bucket.node.default_child
        # CloudFormation types ObjectSizeGreaterThan as a string; the L2 renders a number.
        for index, rule in enumerate(lifecycle_rules):
            if rule.object_size_greater_than is not None:
                cfn_bucket.add_property_override(
                    f"LifecycleConfiguration.Rules.{index}.ObjectSizeGreaterThan",
                    str(rule.object_size_greater_than),
                )
        # Native EventBridge delivery (the L2's event_bridge_enabled adds a Lambda to set it).
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        if replication is not None:
            replication.allow_source(self.media_bucket, self.media_key)
        if cdn_enabled:
            allow_cloudfront_reads(
                self.media_bucket, self.media_key, [*permanent_prefixes, "variants/"]
            )

        self.catalog_table = CatalogTable(self, "Catalog", encryption_key=self.media_key).table
        self.runtime_access = RuntimeAccess(
            self,
            "RuntimeAccess",
            media_bucket=self.media_bucket,
            catalog_table=self.catalog_table,
            credentials_serial=host_credentials_serial,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            app_name=app_name,
            alarm_email=alarm_email,
            monthly_budget_usd=monthly_budget_usd,
        )
        self.monitoring.watch_bucket_errors(self.media_bucket, threshold=bucket_5xx_alarm_threshold)
        if replica_bucket is not None:
            self.monitoring.watch_replication(
                source=self.media_bucket,
                destination=replica_bucket,
                rule_ids=[rule.id for rule in replication_rules],
                latency_seconds=replication_latency_alarm_seconds,
            )

        for output_id, value, description in (
            ("MediaBucketName", self.media_bucket.bucket_name, "STOWAGE_S3_BUCKET"),
            ("MediaKeyArn", self.media_key.key_arn, "STOWAGE_KMS_KEY_ID"),
            ("CatalogTableName", self.catalog_table.table_name, "STOWAGE_CATALOG_URL table"),
            ("RuntimeRoleArn", self.runtime_access.role.role_arn, "Role for AWS compute"),
            (
                "MigrationRollbackRoleArn",
                self.runtime_access.rollback_role.role_arn,
                "Role for `stowage rollback` into the versioned bucket (admins only)",
            ),
            ("HostUserName", self.runtime_access.user.user_name, "IAM user of the host"),
            (
                "HostCredentialsSecretArn",
                self.runtime_access.credentials_secret.secret_arn,
                "Secret with the host's S3 access key",
            ),
            ("AlarmTopicArn", self.monitoring.topic.topic_arn, "Alarm notifications"),
        ):
            CfnOutput(self, output_id, value=value, description=description)
        self.catalog_table_export = f"{app_name}-catalog-table-name"
        CfnOutput(
            self,
            "CatalogTableNameExport",
            value=self.catalog_table.table_name,
            export_name=self.catalog_table_export,
            description="For the dashboard stack",
        )

    @staticmethod
    def _lifecycle_rules(
        *,
        permanent_prefixes: Sequence[str],
        temp_prefix: str,
        temp_expiry_days: int,
        noncurrent_version_expiry_days: int,
    ) -> list[s3.LifecycleRule]:
        return [
            s3.LifecycleRule(
                id="ExpireTemp",
                prefix=temp_prefix,
                expiration=Duration.days(temp_expiry_days),
                # A versioned bucket keeps an expired temp object as a noncurrent version.
                noncurrent_version_expiration=Duration.days(1),
            ),
            s3.LifecycleRule(
                id="Housekeeping",
                abort_incomplete_multipart_upload_after=Duration.days(
                    ABORT_INCOMPLETE_UPLOADS_DAYS
                ),
                noncurrent_version_expiration=Duration.days(noncurrent_version_expiry_days),
            ),
            s3.LifecycleRule(id="RemoveExpiredDeleteMarkers", expired_object_delete_marker=True),
            *(
                s3.LifecycleRule(
                    id=f"IntelligentTiering-{prefix.rstrip('/')}",
                    prefix=prefix,
                    object_size_greater_than=INTELLIGENT_TIERING_MIN_BYTES - 1,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=Duration.days(0),
                        )
                    ],
                )
                for prefix in permanent_prefixes
            ),
        ]

    @staticmethod
    def _upload_cors_rule(origins: Sequence[str]) -> s3.CorsRule:
        """Browsers PUT straight to presigned URLs (and multipart part URLs) from these origins."""
        return s3.CorsRule(
            id="PresignedBrowserUploads",
            allowed_origins=list(origins),
            allowed_methods=[
                s3.HttpMethods.GET,
                s3.HttpMethods.HEAD,
                s3.HttpMethods.PUT,
                s3.HttpMethods.POST,
            ],
            allowed_headers=["Content-Type", "Content-MD5", "Cache-Control", "x-amz-*"],
            exposed_headers=["ETag", "x-amz-version-id", "x-amz-checksum-sha256"],
            max_age=3600,
        )

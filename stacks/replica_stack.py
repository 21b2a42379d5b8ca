"""ReplicaStack: the replica key and bucket in a second region."""

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.buckets import (
    AccessLogBucket,
    allow_cloudfront_reads,
    media_bucket_props,
)
from stacks.constructs.keys import customer_key


class ReplicaStack(Stack):
    """Deployed before StorageStack, whose replication rules point here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        noncurrent_version_expiry_days: int,
        access_log_expiry_days: int,
        cdn_readable_prefixes: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # StorageStack (another region) finds the key by this alias and the bucket by its
        # name: fixed names wire the two regions together without cross-stack exports.
        self.replica_key_alias = f"alias/{app_name}/media-replica"
        self.replica_key = customer_key(
            self,
            "ReplicaKey",
            alias=self.replica_key_alias,
            description=f"Encrypts {app_name} media replicas.",
        )
        self.replica_bucket_name = f"{app_name}-replica-{self.account}-{self.region}"
        access_logs = AccessLogBucket(self, "AccessLogs", expiry_days=access_log_expiry_days)
        # Stateful: the disaster-recovery copy of the media; retained on stack deletion.
        self.replica_bucket = s3.Bucket(
            self,
            "ReplicaBucket",
            bucket_name=self.replica_bucket_name,
            **media_bucket_props(
                key=self.replica_key, access_logs=access_logs.bucket, log_prefix="replica/"
            ),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="Housekeeping",
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    noncurrent_version_expiration=Duration.days(noncurrent_version_expiry_days),
                ),
                s3.LifecycleRule(
                    id="RemoveExpiredDeleteMarkers", expired_object_delete_marker=True
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        if cdn_readable_prefixes:
            # The CDN fails over to the replica when the primary answers 5xx.
            allow_cloudfront_reads(self.replica_bucket, self.replica_key, cdn_readable_prefixes)

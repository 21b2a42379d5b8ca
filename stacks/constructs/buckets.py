"""Buckets that are private, TLS-only and owner-enforced by construction."""

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket_props() -> dict[str, Any]:
    """The properties every Stowage bucket shares: no public access, TLS 1.2+ only, no ACLs."""
    return {
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "minimum_tls_version": 1.2,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    }


def media_bucket_props(
    *, key: kms.IKey, access_logs: s3.IBucket, log_prefix: str
) -> dict[str, Any]:
    """Private bucket props plus what media needs: SSE-KMS with a bucket key (one KMS call per
    bucket-key period, not per object), versioning, server access logs."""
    return {
        **private_bucket_props(),
        "encryption": s3.BucketEncryption.KMS,
        "encryption_key": key,
        "bucket_key_enabled": True,
        "versioned": True,
        "server_access_logs_bucket": access_logs,
        "server_access_logs_prefix": log_prefix,
    }


def allow_cloudfront_reads(bucket: s3.IBucket, key: kms.IKey, prefixes: list[str]) -> None:
    """Let this account's CloudFront distributions (OAC) read ``prefixes`` and decrypt them.

    Scoped by ``AWS:SourceArn`` to the account's distributions rather than one: the
    distribution lives in CdnStack, and naming it here would make the stacks depend on each
    other. Prefixes not listed (``temp/``) stay unreadable through the CDN.
    """
    stack = Stack.of(bucket)
    condition = {
        "StringLike": {
            "AWS:SourceArn": f"arn:{stack.partition}:cloudfront::{stack.account}:distribution/*"
        }
    }
    cloudfront = iam.ServicePrincipal("cloudfront.amazonaws.com")
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudFrontReadsMedia",
            principals=[cloudfront],
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            conditions=condition,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudFrontDecryptsMedia",
            principals=[cloudfront],
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions=condition,
        )
    )


class AccessLogBucket(Construct):
    """Target of S3 server access logs: SSE-S3 (log delivery cannot use SSE-KMS), expiring."""

    def __init__(self, scope: Construct, construct_id: str, *, expiry_days: int) -> None:
        super().__init__(scope, construct_id)
        # Stateful: retained on stack deletion so an audit trail outlives the stack.
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **private_bucket_props(),
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="RemoveExpiredDeleteMarkers", expired_object_delete_marker=True
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

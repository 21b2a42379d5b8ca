"""The two functions behind image variants: the Lambda@Edge resizer and the regional
invalidator. Both are added with the CdnStack as their scope, so their construct ids (and
the resources CloudFormation already has) stay what they were."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from stacks.config import CdnConfig
from stacks.constructs.edge_bundle import (
    build_edge_bundle,
    build_invalidator_bundle,
    bundle_bytes,
)
from stacks.constructs.nag import acknowledge, finding_text
from stacks.edge_config import EDGE_TIMEOUT_SECONDS, edge_handler_config

VARIANTS_PREFIX = "variants/"
INVALIDATOR_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


@dataclass(frozen=True)
class MediaBucketRef:
    """A media bucket in some region, named (not imported): the edge function's role lives in
    us-east-1 and reaches the buckets by fixed name and their keys by alias."""

    name: str
    region: str
    key_alias: str


def kms_through_s3(
    stack: Stack, bucket: MediaBucketRef, *, writes: bool = True
) -> iam.PolicyStatement:
    """Use of the bucket's key only as SSE-KMS needs it, only through S3 in its region."""
    return iam.PolicyStatement(
        actions=["kms:Decrypt", "kms:GenerateDataKey"] if writes else ["kms:Decrypt"],
        resources=[stack.format_arn(service="kms", region=bucket.region, resource="key/*")],
        conditions={
            "StringEquals": {"kms:ViaService": f"s3.{bucket.region}.amazonaws.com"},
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": bucket.key_alias},
        },
    )


def add_variant_resizer(
    stack: Stack, cdn: CdnConfig, *, buckets: Sequence[MediaBucketRef]
) -> cloudfront.experimental.EdgeFunction:
    """The origin-response Lambda@Edge function (placed in us-east-1 by CDK). It reads
    originals only under ``cdn.variant_source_prefixes``, from the primary bucket and (a
    failover answer comes from there) the replica, and writes ``variants/`` of the primary
    only: a variant stored in the replica would outlive its original's invalidation."""
    primary, replica = buckets[0], (buckets[1] if len(buckets) > 1 else None)
    config = edge_handler_config(
        cdn,
        bucket=primary.name,
        region=primary.region,
        kms_key_arn=stack.format_arn(service="kms", resource=primary.key_alias, resource_name=None),
        replica_bucket=replica.name if replica else None,
        replica_region=replica.region if replica else None,
    )
    bundle = build_edge_bundle(config)
    Annotations.of(stack).add_info(f"edge bundle: {bundle_bytes(bundle) / 2**20:.1f} MiB unzipped")
    resizer = cloudfront.experimental.EdgeFunction(
        stack,
        "VariantResizer",
        description="Generates image variants missing from S3 (origin-response).",
        code=lambda_.Code.from_asset(str(bundle)),
        handler="handler.handler",
        runtime=lambda_.Runtime.PYTHON_3_13,
        memory_size=cdn.edge_memory_size_mb,
        timeout=Duration.seconds(EDGE_TIMEOUT_SECONDS),
    )
    role = resizer.lambda_.role
    for bucket in buckets:
        writes = bucket is primary
        arn = f"arn:{stack.partition}:s3:::{bucket.name}"
        resizer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"{arn}/{prefix}*" for prefix in cdn.variant_source_prefixes],
            )
        )
        if cdn.watermark:
            # The overlay, exactly that key: it may lie outside every variant source prefix.
            resizer.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"{arn}/{cdn.watermark.overlay_key}"]
                )
            )
        if writes:
            resizer.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[f"{arn}/{VARIANTS_PREFIX}*"]
                )
            )
        resizer.add_to_role_policy(kms_through_s3(stack, bucket, writes=writes))
        for prefix in cdn.variant_source_prefixes:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{arn}/{prefix}*]",
                f"Originals are read from {prefix} of {bucket.name} (a variant source prefix):"
                " one object per request, keys known only at request time.",
            )
        if writes:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{arn}/{VARIANTS_PREFIX}*]",
                f"Rendered variants are written under variants/ of {bucket.name} only: one"
                " object per request, keys known only at request time.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::"
            f"{stack.format_arn(service='kms', region=bucket.region, resource='key/*')}]",
            f"The key of {bucket.name} lives in another region's stack, so it is matched by"
            " its alias (kms:ResourceAliases) and used only through S3 there (kms:ViaService).",
        )
    acknowledge(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "Logs only: Lambda@Edge writes to log groups named after whichever region ran it,"
        " which a policy scoped to one log group cannot name.",
    )
    acknowledge(
        resizer.lambda_,
        "AwsSolutions-L1",
        "Lambda@Edge runs Python up to 3.13; the newest Lambda runtime is not available"
        " at the edge.",
    )
    return resizer


def add_variant_invalidator(
    stack: Stack,
    *,
    bucket_name: str,
    source_prefixes: Sequence[str],
    distribution: cloudfront.Distribution,
    alarm_topic: sns.ITopic,
) -> lambda_.Function:
    """An original under a variant source prefix overwritten or deleted: drop its stored
    variants and, only if there were any, invalidate them. Failures land in a DLQ that
    raises an alarm on the operator's topic."""
    log_group = logs.LogGroup(stack, "VariantInvalidatorLogs", retention=INVALIDATOR_LOG_RETENTION)
    role = iam.Role(
        stack,
        "VariantInvalidatorRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Variant invalidator: its own log group, variants/ deletes, invalidations.",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"{log_group.log_group_arn}:*"],
        )
    )
    # Stateful only for a while: failed events wait here for an operator (14 days).
    dead_letters = sqs.Queue(
        stack,
        "VariantInvalidatorDlq",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    invalidator = lambda_.Function(
        stack,
        "VariantInvalidator",
        description="Deletes stored variants of a changed original and invalidates them.",
        code=lambda_.Code.from_asset(str(build_invalidator_bundle())),
        handler="invalidate.handler",
        runtime=lambda_.Runtime.PYTHON_3_14,
        timeout=Duration.seconds(60),
        role=role,
        log_group=log_group,
        environment={
            "STOWAGE_BUCKET": bucket_name,
            "STOWAGE_DISTRIBUTION_ID": distribution.distribution_id,
        },
        retry_attempts=2,
        dead_letter_queue=dead_letters,
    )
    bucket_arn = f"arn:{stack.partition}:s3:::{bucket_name}"
    invalidator.add_to_role_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket_arn],
            conditions={"StringLike": {"s3:prefix": f"{VARIANTS_PREFIX}*"}},
        )
    )
    invalidator.add_to_role_policy(
        iam.PolicyStatement(
            actions=["s3:DeleteObject"], resources=[f"{bucket_arn}/{VARIANTS_PREFIX}*"]
        )
    )
    distribution.grant_create_invalidation(invalidator)
    events.Rule(
        stack,
        "OriginalChanged",
        description="Originals with variants overwritten or deleted in the media bucket.",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created", "Object Deleted"],
            detail={
                "bucket": {"name": [bucket_name]},
                "object": {"key": [{"prefix": prefix} for prefix in source_prefixes]},
            },
        ),
        targets=[
            targets.LambdaFunction(
                invalidator,
                retry_attempts=4,
                max_event_age=Duration.hours(2),
                dead_letter_queue=dead_letters,
            )
        ],
    )
    alarm = cloudwatch.Alarm(
        stack,
        "VariantInvalidatorFailedAlarm",
        alarm_description="Variant invalidations failed: events wait in the invalidator's DLQ.",
        metric=dead_letters.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ),
        threshold=0,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
    alarm.add_ok_action(cloudwatch_actions.SnsAction(alarm_topic))
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{finding_text(stack, log_group.log_group_arn)}:*]",
        "Log streams of this function's own log group only (stream names are chosen by"
        " Lambda at run time).",
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{bucket_arn}/{VARIANTS_PREFIX}*]",
        "Deletes the stored variants of whichever original changed: keys known only"
        " from the event.",
    )
    return invalidator

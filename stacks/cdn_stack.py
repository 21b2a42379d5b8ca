"""CdnStack: CloudFront in front of the media bucket (and the replica, as failover).

The buckets and keys live in StorageStack/ReplicaStack, whose policies let CloudFront
distributions of this account read them (``AWS:SourceArn`` scoped): granting this
distribution by its own ARN from there would make the stacks depend on each other. Here
the buckets are referenced by name, so CDK leaves their policies alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import CdnConfig
from stacks.constructs.buckets import private_bucket_props
from stacks.constructs.nag import acknowledge
from stacks.constructs.variants import (
    VARIANTS_PREFIX,
    MediaBucketRef,
    add_variant_invalidator,
    add_variant_resizer,
)
from stacks.edge_config import cloudfront_function_code

_PRICE_CLASSES = {
    "PriceClass_100": cloudfront.PriceClass.PRICE_CLASS_100,
    "PriceClass_200": cloudfront.PriceClass.PRICE_CLASS_200,
    "PriceClass_All": cloudfront.PriceClass.PRICE_CLASS_ALL,
}
MEDIA_CSP = "default-src 'none'; sandbox"
# What the image-URL function reads to choose a width when /img/ has no w.
ACCEPT_CH = "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width"
_DENY_CODE = """function handler(event) {
    return { statusCode: 404, statusDescription: 'Not Found' };
}"""


class CdnStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        cdn: CdnConfig,
        media_bucket_name: str,
        media_key_alias: str,
        permanent_prefixes: Sequence[str],
        temp_prefix: str,
        cors_allowed_origins: Sequence[str],
        access_log_expiry_days: int,
        alarm_topic: sns.ITopic,
        replica_bucket_name: str | None = None,
        replica_region: str | None = None,
        replica_key_alias: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        media = s3.Bucket.from_bucket_attributes(
            self, "MediaBucketRef", bucket_name=media_bucket_name, region=self.region
        )
        primary = origins.S3BucketOrigin.with_origin_access_control(
            media, origin_shield_region=cdn.origin_shield_region
        )
        origin: cloudfront.IOrigin = primary
        if replica_bucket_name is not None:
            replica = s3.Bucket.from_bucket_attributes(
                self, "ReplicaBucketRef", bucket_name=replica_bucket_name, region=replica_region
            )
            origin = origins.OriginGroup(
                primary_origin=primary,
                fallback_origin=origins.S3BucketOrigin.with_origin_access_control(replica),
                fallback_status_codes=[500, 502, 503, 504],
            )

        media_cache = cloudfront.CachePolicy(
            self,
            "MediaCachePolicy",
            comment="Media: the path is the whole cache key.",
            default_ttl=Duration.days(7),
            max_ttl=Duration.days(365),
            min_ttl=Duration.seconds(0),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            enable_accept_encoding_gzip=False,
            enable_accept_encoding_brotli=False,
        )

        media_headers = {
            # Media is never a document: even a polyglot opened in a tab runs no script.
            "security_headers_behavior": cloudfront.ResponseSecurityHeadersBehavior(
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=MEDIA_CSP, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            "cors_behavior": cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_credentials=False,
                access_control_allow_headers=["Range"],
                access_control_allow_methods=["GET", "HEAD"],
                access_control_allow_origins=list(cors_allowed_origins),
                access_control_expose_headers=["Content-Range", "Content-Length", "ETag"],
                access_control_max_age=Duration.hours(1),
                origin_override=True,
            )
            if cors_allowed_origins
            else None,
        }

        def headers_policy(construct_id: str, comment: str, **extra):
            return cloudfront.ResponseHeadersPolicy(
                self,
                construct_id,
                comment=comment,
                **extra,
                **media_headers,
            )

        headers = headers_policy(
            "ResponseHeaders", "Security headers and CORS for the configured origins."
        )
        # The function turns hints into a variant URI, so CloudFront's cache key stays the
        # path alone; the headers only ask browsers to send them on later /img/ requests.
        image_headers = (
            headers_policy(
                "ImageResponseHeaders",
                "Security headers, CORS and client hints (Accept-CH) for /img/.",
                custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                    custom_headers=[
                        cloudfront.ResponseCustomHeader(
                            header="Accept-CH", value=ACCEPT_CH, override=True
                        )
                    ]
                ),
            )
            if cdn.client_hints
            else headers
        )
        deny = cloudfront.Function(
            self,
            "DenyFunction",
            comment="Answers 404: nothing is served outside the media prefixes.",
            code=cloudfront.FunctionCode.from_inline(_DENY_CODE),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )
        image_urls = cloudfront.Function(
            self,
            "ImageUrlFunction",
            comment="Maps /img/{key}?w=&h=&fmt= onto /variants/{key}/{w}x{h}.{fmt}; refuses"
            " non-canonical keys.",
            code=cloudfront.FunctionCode.from_inline(cloudfront_function_code(cdn)),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )

        buckets = [MediaBucketRef(media_bucket_name, self.region, media_key_alias)]
        if replica_bucket_name is not None:
            buckets.append(MediaBucketRef(replica_bucket_name, replica_region, replica_key_alias))
        resizer = add_variant_resizer(self, cdn, buckets=buckets)
        # The version ARN names the function in us-east-1; its edge replicas report metrics
        # as "us-east-1.<name>" in each region that ran them.
        resizer_metric_name = Fn.join(
            ".", ["us-east-1", Fn.select(6, Fn.split(":", resizer.edge_arn))]
        )
        resize_on_miss = [
            cloudfront.EdgeLambda(
                function_version=resizer.current_version,
                event_type=cloudfront.LambdaEdgeEventType.ORIGIN_RESPONSE,
            )
        ]

        key_group = None
        if cdn.private_prefixes:
            public_key = cloudfront.PublicKey(
                self, "SigningPublicKey", encoded_key=cdn.signing_public_key_pem
            )
            key_group = cloudfront.KeyGroup(self, "SigningKeyGroup", items=[public_key])

        def behaviour(
            *, private: bool = False, function=None, edge_lambdas=None, response_headers=headers
        ) -> cloudfront.BehaviorOptions:
            associations = None
            if function is not None:
                associations = [
                    cloudfront.FunctionAssociation(
                        function=function, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ]
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
                cache_policy=media_cache,
                response_headers_policy=response_headers,
                function_associations=associations,
                trusted_key_groups=[key_group] if private and key_group else None,
                edge_lambdas=edge_lambdas,
                compress=False,
            )

        # CloudFront picks the first behaviour whose pattern matches the path the viewer sent
        # (the viewer-request function rewrites the URI only afterwards), so the signed
        # behaviours of a private prefix come before the generic /img/* and /variants/*.
        behaviours: dict[str, cloudfront.BehaviorOptions] = {}
        for prefix in cdn.private_prefixes:
            behaviours[f"/img/{prefix}*"] = behaviour(
                private=True,
                function=image_urls,
                edge_lambdas=resize_on_miss,
                response_headers=image_headers,
            )
            behaviours[f"/{VARIANTS_PREFIX}{prefix}*"] = behaviour(
                private=True, function=image_urls, edge_lambdas=resize_on_miss
            )
        for prefix in permanent_prefixes:
            behaviours[f"/{prefix}*"] = behaviour(private=prefix in cdn.private_prefixes)
        behaviours[f"/{VARIANTS_PREFIX}*"] = behaviour(
            function=image_urls, edge_lambdas=resize_on_miss
        )
        behaviours["/img/*"] = behaviour(
            function=image_urls, edge_lambdas=resize_on_miss, response_headers=image_headers
        )
        behaviours[f"/{temp_prefix}*"] = behaviour(function=deny)

        self.log_bucket = s3.Bucket(
            self,
            "CdnLogBucket",
            **{**private_bucket_props(), "object_ownership": s3.ObjectOwnership.OBJECT_WRITER},
            encryption=s3.BucketEncryption.S3_MANAGED,
            # Versioned: an overwritten or deleted log stays for a day, as on AccessLogs.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireCdnLogs",
                    expiration=Duration.days(access_log_expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.log_bucket,
            "AwsSolutions-S1",
            "This bucket only receives CloudFront's standard logs (which need object ACLs, so it"
            " cannot be the BucketOwnerEnforced access-log bucket); logging it again only"
            " moves the question.",
        )

        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", cdn.certificate_arn)
            if cdn.certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{app_name} media",
            default_behavior=behaviour(function=deny),
            additional_behaviors=behaviours,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=_PRICE_CLASSES[cdn.price_class],
            domain_names=[cdn.domain_name] if cdn.domain_name else None,
            certificate=certificate,
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None
            ),
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
            enable_ipv6=True,
        )
        Annotations.of(self.distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "The bucket policies that let CloudFront read are set where the buckets live"
            " (StorageStack, ReplicaStack; see allow_cloudfront_reads).",
        )
        for rule, reason in (
            (
                "AwsSolutions-CFR1",
                "Media is served worldwide on purpose; no country is excluded.",
            ),
            (
                "AwsSolutions-CFR2",
                "A web ACL costs per request and rule; the distribution serves only public or"
                " signed media through OAC, with no application behind it to protect.",
            ),
        ):
            acknowledge(self.distribution, rule, reason)
        if certificate is None:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                "Without a custom domain the distribution uses the *.cloudfront.net"
                " certificate, whose TLS policy cannot be raised; set cdn.domain_name and"
                " cdn.certificate_arn to enforce TLSv1.2_2021.",
            )
        # CacheHitRate (and the other additional metrics) exist only with this subscription,
        # billed per metric per distribution (README, "Dashboards").
        cloudfront.CfnMonitoringSubscription(
            self,
            "AdditionalMetrics",
            distribution_id=self.distribution.distribution_id,
            monitoring_subscription=cloudfront.CfnMonitoringSubscription.MonitoringSubscriptionProperty(
                realtime_metrics_subscription_config=cloudfront.CfnMonitoringSubscription.RealtimeMetricsSubscriptionConfigProperty(
                    realtime_metrics_subscription_status="Enabled"
                )
            ),
        )
        add_variant_invalidator(
            self,
            bucket_name=media_bucket_name,
            source_prefixes=cdn.variant_source_prefixes,
            distribution=self.distribution,
            alarm_topic=alarm_topic,
        )
        CfnOutput(self, "DistributionDomainName", value=self.distribution.distribution_domain_name)
        CfnOutput(self, "DistributionId", value=self.distribution.distribution_id)
        self.distribution_id_export = f"{app_name}-distribution-id"
        self.resizer_metric_name_export = f"{app_name}-resizer-metric-name"
        for output_id, value, export in (
            (
                "DistributionIdExport",
                self.distribution.distribution_id,
                self.distribution_id_export,
            ),
            ("ResizerMetricName", resizer_metric_name, self.resizer_metric_name_export),
        ):
            CfnOutput(self, output_id, value=value, export_name=export)

"""Variant invalidation against moto's S3 and CloudFront, with EventBridge-shaped events."""

from __future__ import annotations

import importlib
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError


def s3_event(bucket: str, key: str, kind: str = "Object Created") -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": kind,
        "source": "aws.s3",
        "account": "123456789012",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 10},
            "reason": "PutObject",
        },
    }


@pytest.fixture
def invalidate(monkeypatch, bucket, moto_url, aws_env):
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", moto_url)
    cloudfront = boto3.client("cloudfront", endpoint_url=moto_url)
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": str(uuid.uuid4()),
            "Comment": "test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "s3",
                        "DomainName": f"{bucket}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "s3",
                "ViewerProtocolPolicy": "https-only",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )["Distribution"]["Id"]
    monkeypatch.setenv("STOWAGE_BUCKET", bucket)
    monkeypatch.setenv("STOWAGE_DISTRIBUTION_ID", distribution)
    import invalidate as module

    module = importlib.reload(module)
    return module, cloudfront, distribution


def test_overwritten_original_drops_its_variants_and_invalidates(invalidate, bucket, moto_url):
    module, cloudfront, distribution = invalidate
    s3 = boto3.client("s3", endpoint_url=moto_url)
    for key in (
        "images/café 1.jpg",
        "variants/images/café 1.jpg/800x0.webp",
        "variants/images/café 1.jpg/320x0.avif",
        "variants/images/café 10.jpg/800x0.webp",
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = module.handler(s3_event(bucket, "images/café 1.jpg"))
    assert result["deleted"] == 2
    assert result["invalidated"] == "/variants/images/caf%C3%A9%201.jpg/*"
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert left == ["images/café 1.jpg", "variants/images/café 10.jpg/800x0.webp"]
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 1


@pytest.mark.parametrize("key", ["variants/images/a.jpg/800x0.webp", "images/../x", "a//b"])
def test_variant_and_invalid_keys_are_ignored(invalidate, bucket, key):
    module, cloudfront, distribution = invalidate
    assert module.handler(s3_event(bucket, key))["invalidated"] is None
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 0


def test_new_originals_spend_no_invalidation(invalidate, bucket, moto_url):
    """A bulk upload of new originals (no variants yet) must not queue one paid wildcard
    invalidation each: CloudFront allows only 15 in progress."""
    module, cloudfront, distribution = invalidate
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.put_object(Bucket=bucket, Key="variants/images/other.jpg/800x0.webp", Body=b"x")
    for index in range(20):
        key = f"images/2026/11/22/upload-{index}.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert module.handler(s3_event(bucket, key)) == {
            "key": key,
            "deleted": 0,
            "invalidated": None,
        }
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix="variants/")["KeyCount"] == 1


def test_deleted_original_with_variants_invalidates_once(invalidate, bucket, moto_url):
    module, cloudfront, distribution = invalidate
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.put_object(Bucket=bucket, Key="variants/images/gone.jpg/320x0.jpeg", Body=b"x")
    result = module.handler(s3_event(bucket, "images/gone.jpg", kind="Object Deleted"))
    assert result == {
        "key": "images/gone.jpg",
        "deleted": 1,
        "invalidated": "/variants/images/gone.jpg/*",
    }
    assert (
        module.handler(s3_event(bucket, "images/gone.jpg", kind="Object Deleted"))["invalidated"]
        is None
    )
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_failures_propagate_so_lambda_can_dead_letter_them(invalidate, monkeypatch):
    """An S3 error is raised, not swallowed: Lambda retries the event, then sends it to the
    dead-letter queue whose alarm tells the operator (tests/cdk/test_cloud_security.py)."""
    module, _, _ = invalidate
    monkeypatch.setenv("STOWAGE_BUCKET", "no-such-bucket-for-invalidation")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        module.handler(s3_event("no-such-bucket-for-invalidation", "images/a.jpg"))

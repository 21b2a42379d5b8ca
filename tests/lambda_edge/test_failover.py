"""Origin failover: CloudFront sends a request to the replica when the primary answers 5xx,
and runs the origin-response function again for the replica's answer. The real handler
with a replica baked in, both buckets on moto's server in two regions."""

from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
from PIL import Image

from tests.lambda_edge import images
from tests.lambda_edge.conftest import (
    PRIMARY_REGION,
    REPLICA_REGION,
    origin_response,
    s3_domain,
)


def keys(client, bucket) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture
def replica_s3(moto_url):
    return boto3.client("s3", endpoint_url=moto_url, region_name=REPLICA_REGION)


def test_a_failed_over_request_renders_from_the_replica_and_stores_nothing(
    load_edge, s3, bucket, replica_bucket, replica_s3, s3_calls
):
    edge = load_edge(replica=replica_bucket)
    # The primary lost the object (or cannot serve it); the replica holds the replicated copy.
    replica_s3.put_object(
        Bucket=replica_bucket, Key="images/2026/a.jpg", Body=images.jpeg((2000, 1000))
    )
    calls = s3_calls(edge, PRIMARY_REGION)
    s3_calls(edge, REPLICA_REGION)
    event = origin_response(
        "/variants/images/2026/a.jpg/800x0.webp",
        domain=s3_domain(replica_bucket, REPLICA_REGION),
        status="403",
    )
    result = edge.handler(event)
    assert result["status"] == "200", result
    image = Image.open(io.BytesIO(base64.b64decode(result["body"])))
    assert (image.format, image.size) == ("WEBP", (800, 400))
    assert calls == [("GetObject", replica_bucket, "images/2026/a.jpg")]
    assert keys(replica_s3, replica_bucket) == ["images/2026/a.jpg"]
    assert keys(s3, bucket) == []


def test_a_failed_over_result_too_large_to_answer_is_503_not_stored(
    load_edge, s3, bucket, replica_bucket, replica_s3
):
    edge = load_edge(replica=replica_bucket)
    replica_s3.put_object(
        Bucket=replica_bucket, Key="images/noise.png", Body=images.noisy_png((1280, 1280))
    )
    event = origin_response(
        "/variants/images/noise.png/1280x0.png",
        domain=s3_domain(replica_bucket, REPLICA_REGION),
    )
    result = edge.handler(event)
    assert result["status"] == "503", result
    assert result["headers"]["cache-control"][0]["value"] == "no-store"
    assert result["headers"]["retry-after"][0]["value"] == "60"
    assert keys(replica_s3, replica_bucket) == ["images/noise.png"]
    assert keys(s3, bucket) == []


@pytest.mark.parametrize(
    "domain",
    [
        "attacker-bucket.s3.eu-west-1.amazonaws.com",
        "{bucket}.s3.eu-west-1.amazonaws.com.attacker.example",
        "{bucket}.s3-website.eu-west-1.amazonaws.com",
        None,
    ],
    ids=["other-bucket", "suffix", "website-endpoint", "no-origin"],
)
def test_an_origin_that_is_not_a_baked_bucket_is_never_read(
    load_edge, s3, bucket, replica_bucket, s3_calls, domain
):
    edge = load_edge(replica=replica_bucket)
    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=images.jpeg())
    calls = s3_calls(edge, PRIMARY_REGION)
    s3_calls(edge, REPLICA_REGION)
    event = origin_response(
        "/variants/images/a.jpg/800x0.webp",
        domain=domain.format(bucket=bucket) if domain else None,
    )
    result = edge.handler(event)
    assert result["status"] == "502", result
    assert "origin" in json.loads(result["body"])["detail"]
    assert calls == []
    assert keys(s3, bucket) == ["images/a.jpg"]


def test_without_a_replica_the_replica_domain_is_refused(
    edge, s3, bucket, replica_bucket, replica_s3, s3_calls
):
    replica_s3.put_object(Bucket=replica_bucket, Key="images/a.jpg", Body=images.jpeg())
    calls = s3_calls(edge, PRIMARY_REGION)
    s3_calls(edge, REPLICA_REGION)
    event = origin_response(
        "/variants/images/a.jpg/800x0.webp", domain=s3_domain(replica_bucket, REPLICA_REGION)
    )
    assert edge.handler(event)["status"] == "502"
    assert calls == []

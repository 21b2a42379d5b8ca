"""The handler exactly as synth bundles it for config/example.yaml (its config.json taken from
the synthesized asset) against the origins the synthesized distribution really has: every S3
origin CloudFront can send an origin-response from must be one the handler reads from."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest

from stacks.config import load_config
from tests.cdk.conftest import synthesize
from tests.lambda_edge import images
from tests.lambda_edge.conftest import origin_response


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return synthesize(load_config("example"), tmp_path_factory.mktemp("example"))


def bundled_config(example) -> dict:
    found = [
        json.loads(path.read_text())
        for path in example.outdir.glob("asset.*/config.json")
        if (path.parent / "handler.py").is_file()
    ]
    assert len(found) == 1, found
    return found[0]


def s3_origins(example) -> list[str]:
    distribution = next(
        resource
        for resource in example.templates["Cdn"]["Resources"].values()
        if resource["Type"] == "AWS::CloudFront::Distribution"
    )
    return [
        origin["DomainName"]
        for origin in distribution["Properties"]["DistributionConfig"]["Origins"]
        if "S3OriginConfig" in origin
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["primary", "replica"])
def test_every_s3_origin_of_the_distribution_is_read_by_the_bundled_handler(
    example, tmp_path, monkeypatch, aws_env, moto_url, which
):
    origins = s3_origins(example)
    assert len(origins) == 2  # the example has a replica: primary and fallback
    domain = origins[which]
    bucket, _, rest = domain.partition(".s3.")
    region = rest.removesuffix(".amazonaws.com")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=images.jpeg())

    config = {**bundled_config(example), "endpoint_url": moto_url, "kms_key_arn": None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("STOWAGE_EDGE_CONFIG", str(path))
    import handler

    edge = importlib.reload(handler)
    result = edge.handler(origin_response("/variants/images/a.jpg/800x0.webp", domain=domain))
    assert result["status"] == "200", result

"""Setting a focal point on S3: a copy of the original onto itself that keeps what it had
(moto's server, real boto3), and the invalidation that copy triggers."""

from __future__ import annotations

import json

import boto3
import pytest

from stacks.config import load_config
from stowage.backends.s3 import S3Backend
from tests.cdk.conftest import synthesize
from tests.lambda_edge.test_invalidate import invalidate, s3_event  # noqa: F401 - fixture
from tests.runtime.conftest import image_bytes

# --- S3: the copy-in-place and what it triggers ---------------------------------------------


def test_copy_in_place_keeps_type_caching_encryption_tags_and_checksum(bucket, moto_url):
    s3 = boto3.client("s3", endpoint_url=moto_url)
    kms_key = boto3.client("kms", endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]
    s3.put_object(
        Bucket=bucket,
        Key="images/p.png",
        Body=image_bytes(),
        ContentType="image/png",
        CacheControl="public, max-age=86400",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
        Tagging="team=menu&keep=yes",
        Metadata={"sha256": "abc", "owner": "menu"},
        ChecksumAlgorithm="SHA256",
    )
    backend = S3Backend(bucket, endpoint_url=moto_url)
    backend.set_focal("images/p.png", "0.250,0.700")
    head = s3.head_object(Bucket=bucket, Key="images/p.png", ChecksumMode="ENABLED")
    assert head["Metadata"] == {"sha256": "abc", "owner": "menu", "stowage-focal": "0.250,0.700"}
    assert head["ContentType"] == "image/png"
    assert head["CacheControl"] == "public, max-age=86400"
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    assert head.get("ChecksumSHA256")
    tags = s3.get_object_tagging(Bucket=bucket, Key="images/p.png")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("keep", "yes"), ("team", "menu")]
    body = s3.get_object(Bucket=bucket, Key="images/p.png")["Body"].read()
    assert body == image_bytes()
    backend.set_focal("images/p.png", None)
    cleared = s3.head_object(Bucket=bucket, Key="images/p.png")["Metadata"]
    assert cleared == {"sha256": "abc", "owner": "menu"}


def test_missing_original_is_file_not_found(bucket, moto_url):
    with pytest.raises(FileNotFoundError):
        S3Backend(bucket, endpoint_url=moto_url).set_focal("images/none.png", "0.500,0.500")


def test_copy_in_place_event_makes_the_invalidator_drop_variants(invalidate, bucket, moto_url):  # noqa: F811
    """The copy is an Object Created event (reason CopyObject) on the source prefix, which
    the invalidator's rule matches with no filter on the reason: it deletes the stored
    variants, so the edge renders them again around the new point, and invalidates them."""
    module, cloudfront, distribution = invalidate
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.put_object(Bucket=bucket, Key="images/p.png", Body=image_bytes(), ContentType="image/png")
    for name in ("400x400-cover.webp", "800x0.webp"):
        s3.put_object(Bucket=bucket, Key=f"variants/images/p.png/{name}", Body=b"old")
    S3Backend(bucket, endpoint_url=moto_url).set_focal("images/p.png", "0.100,0.100")
    event = s3_event(bucket, "images/p.png")
    event["detail"]["reason"] = "CopyObject"
    result = module.handler(event)
    assert result["deleted"] == 2
    assert result["invalidated"] == "/variants/images/p.png/*"
    left = s3.list_objects_v2(Bucket=bucket, Prefix="variants/").get("KeyCount")
    assert left == 0
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_the_synthesized_rule_matches_the_copy_in_place_event(tmp_path, bucket, moto_url):
    """The rule exactly as synthesized, matched by moto's EventBridge (a rule with an SQS
    target, events put on the bus): the copy's event reaches the invalidator, an event on
    another prefix does not."""
    templates = synthesize(load_config("example"), tmp_path).templates
    patterns = [
        resource["Properties"]["EventPattern"]
        for template in templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        and "Object Created"
        in resource["Properties"].get("EventPattern", {}).get("detail-type", [])
    ]
    assert len(patterns) == 1
    # The bucket is a reference to the stack's bucket; here it is the test's bucket.
    pattern = patterns[0] | {"detail": patterns[0]["detail"] | {"bucket": {"name": [bucket]}}}
    events = boto3.client("events", endpoint_url=moto_url)
    sqs = boto3.client("sqs", endpoint_url=moto_url)
    queue = sqs.create_queue(QueueName=f"q-{bucket}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=f"r-{bucket}", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"r-{bucket}", Targets=[{"Id": "q", "Arn": arn}])
    for key in ("videos/v.mp4", "images/p.png"):
        event = s3_event(bucket, key)
        events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"] | {"reason": "CopyObject"}),
                    "Resources": event["resources"],
                }
            ]
        )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    keys = [json.loads(m["Body"])["detail"]["object"]["key"] for m in received["Messages"]]
    assert keys == ["images/p.png"]
    events.remove_targets(Rule=f"r-{bucket}", Ids=["q"])
    events.delete_rule(Name=f"r-{bucket}")

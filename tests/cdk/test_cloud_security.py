"""Attacks on the cloud topology, checked on the synthesized templates (docs/security.md,
"Cloud topology"): private prefixes on every behaviour, media response headers, the
resizer's and the everyday principals' IAM, the invalidator's DLQ."""

from __future__ import annotations

import json

import pytest

from tests.cdk.conftest import first_matching_behaviour
from tests.cdk.test_storage_stack import as_list, only, statements

PRIMARY = "arn:aws:s3:::stowage-example-media-123456789012-eu-west-1"
REPLICA = "arn:aws:s3:::stowage-example-replica-123456789012-eu-central-1"
EDGE_STACK = "edge-lambda-stack-c816d30614d1dcf057a0c7c5a34b2c4fcba60ee04f"


def distribution_config(template) -> dict:
    _, distribution = only(template, "AWS::CloudFront::Distribution")
    return distribution["Properties"]["DistributionConfig"]


def all_behaviours(config: dict) -> list[dict]:
    return [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]


def key_group_ref(template) -> dict:
    key_group_id, _ = only(template, "AWS::CloudFront::KeyGroup")
    return {"Ref": key_group_id}


def policy_statements(template) -> list[dict]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# --- item 1: a private original and every variant of it need a signature ----------------

ATTACK_PATHS = [
    "/images/secret.jpg",
    "/img/images/secret.jpg",
    "/variants/images/secret.jpg/1920x0.jpeg",
    "/variants/images/secret.jpg/320x0-cover.avif",
]


@pytest.mark.parametrize("path", ATTACK_PATHS)
def test_every_path_to_a_private_original_requires_the_key_group(private_images, path):
    cdn = private_images.template("Cdn")
    behaviour = first_matching_behaviour(distribution_config(cdn), path)
    assert behaviour["TrustedKeyGroups"] == [key_group_ref(cdn)], behaviour["PathPattern"]


def test_private_behaviours_come_before_the_generic_ones(private_images):
    config = distribution_config(private_images.template("Cdn"))
    order = [b["PathPattern"] for b in config["CacheBehaviors"]]
    assert order.index("/img/images/*") < order.index("/img/*")
    assert order.index("/variants/images/*") < order.index("/variants/*")
    by_path = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    for private, generic in (("/img/images/*", "/img/*"), ("/variants/images/*", "/variants/*")):
        same = {k: v for k, v in by_path[private].items() if k not in ("PathPattern",)}
        same.pop("TrustedKeyGroups")
        assert same == {k: v for k, v in by_path[generic].items() if k != "PathPattern"}


@pytest.mark.parametrize(
    "path", ["/videos/a.mp4", "/img/videos/a.jpg", "/variants/processed/a.jpg/320x0.webp"]
)
def test_public_prefixes_stay_unsigned(private_images, path):
    behaviour = first_matching_behaviour(distribution_config(private_images.template("Cdn")), path)
    assert "TrustedKeyGroups" not in behaviour


def test_example_without_private_prefixes_has_no_key_group(example):
    cdn = example.template("Cdn")
    assert not cdn.find_resources("AWS::CloudFront::KeyGroup")
    for behaviour in all_behaviours(distribution_config(cdn)):
        assert "TrustedKeyGroups" not in behaviour


def test_resizer_reads_only_variant_sources_and_writes_only_variants(private_images):
    edge = private_images.template(EDGE_STACK)
    granted = policy_statements(edge)
    s3 = {
        action: sorted(
            r for s in granted if action in as_list(s["Action"]) for r in as_list(s["Resource"])
        )
        for action in ("s3:GetObject", "s3:PutObject")
    }
    assert s3 == {
        "s3:GetObject": [f"{PRIMARY}/images/*", f"{REPLICA}/images/*"],
        # A variant stored in the replica would outlive its original's invalidation.
        "s3:PutObject": [f"{PRIMARY}/variants/*"],
    }
    everything = json.dumps(granted)
    for prefix in ("videos/", "transcripts/", "processed/", "temp/"):
        assert f"/{prefix}" not in everything
    actions = {a for s in granted for a in as_list(s["Action"])}
    assert actions <= {"s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"}


def test_resizer_uses_each_key_only_through_s3_in_its_region(example):
    granted = policy_statements(example.template(EDGE_STACK))
    kms = [s for s in granted if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert {
        (
            s["Condition"]["StringEquals"]["kms:ViaService"],
            s["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
        )
        for s in kms
    } == {
        ("s3.eu-west-1.amazonaws.com", "alias/stowage-example/media"),
        ("s3.eu-central-1.amazonaws.com", "alias/stowage-example/media-replica"),
    }
    replica_key = [
        s
        for s in kms
        if s["Condition"]["StringEquals"]["kms:ViaService"] == "s3.eu-central-1.amazonaws.com"
    ]
    assert [as_list(s["Action"]) for s in replica_key] == [["kms:Decrypt"]]


def test_the_replica_serves_variants_on_failover(example):
    replica = example.template("Replica")
    (statement,) = [
        s
        for policy in replica.find_resources("AWS::S3::BucketPolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "CloudFrontReadsMedia"
    ]
    assert "variants/*" in json.dumps(statement["Resource"])


# --- item 2: every media response says nosniff and a sandboxing CSP ----------------------


@pytest.mark.parametrize("deployment", ["example", "private_images"])
def test_every_behaviour_sends_nosniff_and_a_sandbox_csp(request, deployment):
    cdn = request.getfixturevalue(deployment).template("Cdn")
    policy_id, policy = only(cdn, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["ContentSecurityPolicy"] == {
        "ContentSecurityPolicy": "default-src 'none'; sandbox",
        "Override": True,
    }
    for behaviour in all_behaviours(distribution_config(cdn)):
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": policy_id}


# --- item 6: the invalidator only for prefixes with variants, failures dead-lettered -----


def test_invalidator_listens_only_to_variant_sources(example):
    cdn = example.template("Cdn")
    _, rule = only(cdn, "AWS::Events::Rule")
    keys = rule["Properties"]["EventPattern"]["detail"]["object"]["key"]
    assert keys == [{"prefix": "images/"}]


def test_invalidator_failures_land_in_an_encrypted_dlq_with_an_alarm(example):
    cdn = example.template("Cdn")
    queue_id, queue = only(cdn, "AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    _, function = only(cdn, "AWS::Lambda::Function", {"Handler": "invalidate.handler"})
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    assert function["Properties"]["DeadLetterConfig"] == {"TargetArn": queue_arn}
    _, rule = only(cdn, "AWS::Events::Rule")
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": queue_arn}
    _, alarm = only(cdn, "AWS::CloudWatch::Alarm")
    props = alarm["Properties"]
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    # The operator's topic from the Storage stack (the one the other alarms notify).
    (action,) = props["AlarmActions"]
    assert "MonitoringAlarmTopic" in json.dumps(action)
    assert props["OKActions"] == props["AlarmActions"]


def test_invalidator_logs_only_to_its_own_group(example):
    cdn = example.template("Cdn")
    role_id, role = only(
        cdn,
        "AWS::IAM::Role",
        {
            "Description": "Variant invalidator: its own"
            " log group, variants/ deletes, invalidations."
        },
    )
    assert "ManagedPolicyArns" not in role["Properties"]
    group_id, group = only(cdn, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 90
    (logs,) = [s for s in statements(cdn, role_id) if "logs:PutLogEvents" in as_list(s["Action"])]
    assert logs["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [group_id, "Arn"]}, ":*"]]}

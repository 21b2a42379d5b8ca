"""CdnStack: OAC origins with replica failover, behaviours, policies, logging, functions."""

from __future__ import annotations

import json

import pytest

from tests.cdk.conftest import SIGNING_PUBLIC_KEY_PEM, example_data, synthesize
from tests.cdk.test_storage_stack import only


@pytest.fixture(scope="session")
def cdn(example):
    return example.template("Cdn")


def config_of(cdn) -> dict:
    _, distribution = only(cdn, "AWS::CloudFront::Distribution")
    return distribution["Properties"]["DistributionConfig"]


def behaviours(cdn) -> dict[str, dict]:
    return {b["PathPattern"]: b for b in config_of(cdn)["CacheBehaviors"]}


def test_origins_use_oac_and_fail_over_to_the_replica(cdn):
    config = config_of(cdn)
    domains = [o["DomainName"] for o in config["Origins"]]
    assert any("eu-central-1" in json.dumps(d) for d in domains)  # the replica bucket
    for origin in config["Origins"]:
        assert origin["OriginAccessControlId"]
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    (group,) = config["OriginGroups"]["Items"]
    assert group["FailoverCriteria"]["StatusCodes"]["Items"] == [500, 502, 503, 504]
    cdn.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
                "OriginAccessControlOriginType": "s3",
            }
        },
    )


def test_http3_logging_and_tls(cdn):
    config = config_of(cdn)
    assert config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True
    assert config["PriceClass"] == "PriceClass_100"
    assert config["Logging"]["Prefix"] == "cloudfront/"
    _, log_bucket = only(cdn, "AWS::S3::Bucket")
    assert log_bucket["DeletionPolicy"] == "Retain"
    assert log_bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True


def test_behaviours(cdn):
    paths = behaviours(cdn)
    assert set(paths) == {
        "/videos/*",
        "/images/*",
        "/transcripts/*",
        "/processed/*",
        "/variants/*",
        "/img/*",
        "/temp/*",
    }
    for behaviour in paths.values():
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["AllowedMethods"] == ["GET", "HEAD", "OPTIONS"]
    functions = {
        path: b["FunctionAssociations"][0]["FunctionARN"]["Fn::GetAtt"][0]
        for path, b in paths.items()
        if "FunctionAssociations" in b
    }
    assert functions["/img/*"].startswith("ImageUrlFunction")
    assert functions["/temp/*"].startswith("DenyFunction")
    default = config_of(cdn)["DefaultCacheBehavior"]
    assert default["FunctionAssociations"][0]["FunctionARN"]["Fn::GetAtt"][0].startswith(
        "DenyFunction"
    )


def test_functions_carry_the_allowlist(cdn):
    functions = cdn.find_resources("AWS::CloudFront::Function")
    codes = {k.split("Function")[0]: v["Properties"]["FunctionCode"] for k, v in functions.items()}
    assert '"widths": [320, 640, 800, 1280, 1920]' in codes["ImageUrl"]
    assert "statusCode: 404" in codes["Deny"]
    for function in functions.values():
        assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"


def test_cache_key_is_minimal_and_headers_are_secure(cdn):
    _, policy = only(cdn, "AWS::CloudFront::CachePolicy")
    keys = policy["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keys["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert keys["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert keys["CookiesConfig"] == {"CookieBehavior": "none"}
    _, headers = only(cdn, "AWS::CloudFront::ResponseHeadersPolicy")
    config = headers["Properties"]["ResponseHeadersPolicyConfig"]
    assert (
        config["SecurityHeadersConfig"]["StrictTransportSecurity"]["AccessControlMaxAgeSec"]
        == 31536000
    )
    assert config["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] == "DENY"
    assert config["CorsConfig"]["AccessControlAllowOrigins"]["Items"] == [
        "https://app.example.com",
        "http://localhost:3000",
    ]


def test_custom_domain_and_private_prefixes(tmp_path):
    data = example_data()
    data["cdn"] |= {
        "domain_name": "media.example.com",
        "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
        "12345678-1234-1234-1234-123456789012",
        "private_prefixes": ["videos/"],
        "signing_public_key_pem": SIGNING_PUBLIC_KEY_PEM,
        "origin_shield_region": "eu-west-1",
    }
    data["replica"] = None
    from stacks.config import parse_config

    cdn = synthesize(parse_config(data, "custom-domain"), tmp_path).template("Cdn")
    config = config_of(cdn)
    assert config["Aliases"] == ["media.example.com"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert "OriginGroups" not in config
    assert config["Origins"][0]["OriginShield"] == {
        "Enabled": True,
        "OriginShieldRegion": "eu-west-1",
    }
    paths = behaviours(cdn)
    assert "TrustedKeyGroups" in paths["/videos/*"]
    assert "TrustedKeyGroups" not in paths["/images/*"]
    only(cdn, "AWS::CloudFront::KeyGroup")


def test_variant_paths_resize_on_a_miss(cdn):
    paths = behaviours(cdn)
    for path in ("/variants/*", "/img/*"):
        (association,) = paths[path]["LambdaFunctionAssociations"]
        assert association["EventType"] == "origin-response"
    assert "LambdaFunctionAssociations" not in paths["/images/*"]


def test_edge_function_in_us_east_1_with_least_privilege(example):
    (edge_id,) = [name for name in example.templates if name.startswith("edge-lambda-stack")]
    manifest = json.loads((example.outdir / "manifest.json").read_text())
    assert manifest["artifacts"][edge_id]["environment"] == "aws://123456789012/us-east-1"
    edge = example.template(edge_id)
    _, function = only(edge, "AWS::Lambda::Function")
    assert function["Properties"]["Runtime"] == "python3.13"
    assert function["Properties"]["Handler"] == "handler.handler"
    assert function["Properties"]["MemorySize"] == 1536
    assert function["Properties"]["Timeout"] == 30
    assert "Environment" not in function["Properties"]  # Lambda@Edge takes none
    _, role = only(edge, "AWS::IAM::Role")
    principals = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    assert "edgelambda.amazonaws.com" in principals
    assert "lambda.amazonaws.com" in principals
    statements = next(iter(edge.find_resources("AWS::IAM::Policy").values()))["Properties"][
        "PolicyDocument"
    ]["Statement"]
    by_action = {json.dumps(s["Action"]): s for s in statements}
    bucket = "arn:aws:s3:::stowage-example-media-123456789012-eu-west-1"
    assert f"{bucket}/variants/*" in by_action['"s3:PutObject"']["Resource"]
    assert f"{bucket}/temp/*" not in json.dumps(statements)
    # Which prefixes and keys, and through which service: tests/cdk/test_cloud_security.py.


def test_edge_bundle_is_complete_deterministic_and_small():
    from stacks.config import load_config
    from stacks.constructs.edge_bundle import MAX_BUNDLE_BYTES, build_edge_bundle, bundle_bytes
    from stacks.edge_config import edge_handler_config

    config = edge_handler_config(
        load_config("example").cdn, bucket="b", region="eu-west-1", kms_key_arn="arn:k"
    )
    bundle = build_edge_bundle(config)
    assert build_edge_bundle(config) == bundle  # same inputs, same asset
    for name in (
        "handler.py",
        "stowage/images/core.py",
        "stowage/keys.py",
        "stowage/errors.py",
        "config.json",
        "PIL/Image.py",
    ):
        assert (bundle / name).is_file(), name
    wheels = [p.name for p in bundle.glob("pillow-*.dist-info")]
    assert wheels == ["pillow-13.0.0.dist-info"]
    tag = (bundle / wheels[0] / "WHEEL").read_text()
    assert "cp313-cp313-manylinux_2_28_x86_64" in tag
    assert json.loads((bundle / "config.json").read_text())["bucket"] == "b"
    assert not list(bundle.rglob("__pycache__"))
    assert 0 < bundle_bytes(bundle) < MAX_BUNDLE_BYTES
    other = build_edge_bundle({**config, "bucket": "c"})
    assert other != bundle


def test_changed_originals_invalidate_their_variants(cdn):
    _, rule = only(cdn, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    assert pattern["detail"]["bucket"]["name"] == ["stowage-example-media-123456789012-eu-west-1"]
    # Only the prefixes that have variants (cdn.variant_source_prefixes).
    assert {p["prefix"] for p in pattern["detail"]["object"]["key"]} == {"images/"}
    functions = cdn.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "invalidate.handler"}}
    )
    ((function_id, function),) = functions.items()
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    env = function["Properties"]["Environment"]["Variables"]
    assert env["STOWAGE_BUCKET"] == "stowage-example-media-123456789012-eu-west-1"
    statements = json.dumps(
        [p["Properties"]["PolicyDocument"] for p in cdn.find_resources("AWS::IAM::Policy").values()]
    )
    assert "cloudfront:CreateInvalidation" in statements
    bucket = "arn:aws:s3:::stowage-example-media-123456789012-eu-west-1"
    assert f'"s3:DeleteObject", "Effect": "Allow", "Resource": "{bucket}/variants/*"' in statements

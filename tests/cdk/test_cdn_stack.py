"""CdnStack: OAC origins with replica failover, behaviours, policies, logging, functions."""

from __future__ import annotations

import json

import pytest

from tests.cdk.conftest import example_data, synthesize
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
        "signing_public_key_pem": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
        "-----END PUBLIC KEY-----",
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

"""cdn.client_hints: the distribution asks for hints on /img/ and keeps them out of the cache
key (the image-URL function folds them into the variant URI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stacks.config import parse_config
from tests.cdk.conftest import (
    ROOT,
    SIGNING_PUBLIC_KEY_PEM,
    Synthesized,
    example_data,
    first_matching_behaviour,
    synthesize,
)
from tests.cdk.test_nag import violations

PATHS = ["/img/images/a.jpg", "/img/other/a.jpg", "/variants/images/a.jpg/800x0.webp"]


@pytest.fixture(scope="module")
def hints(tmp_path_factory) -> Synthesized:
    """The example with client hints on and images/ private (a signed /img/ behaviour)."""
    data = example_data()
    data["cdn"] |= {
        "client_hints": True,
        "private_prefixes": ["images/"],
        "signing_public_key_pem": SIGNING_PUBLIC_KEY_PEM,
    }
    config = parse_config(data, "example with client hints")
    return synthesize(config, tmp_path_factory.mktemp("hints"))


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def distribution(template: dict) -> dict:
    (resource,) = resources(template, "AWS::CloudFront::Distribution").values()
    return resource["Properties"]["DistributionConfig"]


def policy_of(behaviour: dict) -> str:
    return behaviour["ResponseHeadersPolicyId"]["Ref"]


def test_client_hints_default_off(example):
    assert example.config.cdn.client_hints is False
    cdn = example.templates["Cdn"]
    (policy,) = resources(cdn, "AWS::CloudFront::ResponseHeadersPolicy").values()
    assert "CustomHeadersConfig" not in policy["Properties"]["ResponseHeadersPolicyConfig"]
    assert "Accept-CH" not in str(cdn)


def test_img_behaviours_ask_for_hints_when_configured(hints):
    cdn = hints.templates["Cdn"]
    policies = resources(cdn, "AWS::CloudFront::ResponseHeadersPolicy")
    (image_policy,) = [k for k in policies if k.startswith("ImageResponseHeaders")]
    config = policies[image_policy]["Properties"]["ResponseHeadersPolicyConfig"]
    assert config["CustomHeadersConfig"]["Items"] == [
        {
            "Header": "Accept-CH",
            "Override": True,
            "Value": "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width",
        }
    ]
    # The image policy keeps every security header of the media policy.
    (media_policy,) = [k for k in policies if k.startswith("ResponseHeaders")]
    media = policies[media_policy]["Properties"]["ResponseHeadersPolicyConfig"]
    assert config["SecurityHeadersConfig"] == media["SecurityHeadersConfig"]
    assert config.get("CorsConfig") == media.get("CorsConfig")

    distribution_config = distribution(cdn)
    for path in PATHS[:2]:
        assert policy_of(first_matching_behaviour(distribution_config, path)) == image_policy
    for path in [PATHS[2], "/images/a.jpg"]:
        assert policy_of(first_matching_behaviour(distribution_config, path)) == media_policy


@pytest.mark.parametrize("setting", ["off", "on"])
def test_hints_stay_out_of_the_cache_key(example, hints, setting):
    """The cache key is the (rewritten) path alone: no header, query string or cookie, so
    a hint cannot multiply the cached copies of one variant."""
    cdn = (example if setting == "off" else hints).templates["Cdn"]
    distribution_config = distribution(cdn)
    for path in PATHS:
        behaviour = first_matching_behaviour(distribution_config, path)
        assert "OriginRequestPolicyId" not in behaviour
        policy_id = behaviour["CachePolicyId"]["Ref"]
        policy = cdn["Resources"][policy_id]["Properties"]["CachePolicyConfig"]
        key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
        assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
        assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
        assert key["CookiesConfig"] == {"CookieBehavior": "none"}


def test_hints_deployment_passes_nag_and_cfn_lint(hints):
    report = hints.outdir / "validation-report.json"
    if report.exists():
        assert violations(hints.outdir) == []
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(hints.outdir / "Cdn.template.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""The CloudFront Function, run under Node with CloudFront Function event objects."""

from __future__ import annotations

import json

import pytest

from stacks.config import load_config
from stacks.edge_config import cloudfront_function_code
from tests.cdk.conftest import first_matching_behaviour, private_images_config, synthesize
from tests.lambda_edge.cff import function_runner, viewer_event


def viewer_request(
    uri: str, query: dict[str, str] | None = None, accept: str | None = None
) -> dict:
    headers = {"host": {"value": "media.example.com"}}
    if accept is not None:
        headers["accept"] = {"value": accept}
    return viewer_event(uri, query, headers)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    invoke = function_runner(tmp_path_factory.mktemp("cff"))
    return lambda *events: invoke(list(events))


def test_allowlist_is_generated_from_the_config():
    code = cloudfront_function_code(load_config("example").cdn)
    assert '"widths": [320, 640, 800, 1280, 1920]' in code
    assert "__STOWAGE_CONFIG__" not in code


@pytest.mark.parametrize(
    ("query", "accept", "uri"),
    [
        ({"w": "800"}, "image/avif,image/webp,*/*", "/variants/images/a.jpg/800x0.avif"),
        ({"w": "700"}, "image/webp,*/*", "/variants/images/a.jpg/800x0.webp"),
        ({"w": "10"}, "*/*", "/variants/images/a.jpg/320x0.jpeg"),
        ({"w": "5000"}, None, "/variants/images/a.jpg/1920x0.jpeg"),
        ({"w": "800", "fmt": "png"}, "image/avif", "/variants/images/a.jpg/800x0.png"),
        ({"w": "800", "fmt": "jpg"}, "image/avif", "/variants/images/a.jpg/800x0.jpeg"),
    ],
)
def test_friendly_urls_map_onto_variants(run, query, accept, uri):
    (result,) = run(viewer_request("/img/images/a.jpg", query, accept))
    assert result["uri"] == uri
    assert result["querystring"] == {}


def test_unicode_keys_stay_encoded(run):
    (result,) = run(viewer_request("/img/images/caf%C3%A9%20x.jpg", {"w": "320"}, "image/webp"))
    assert result["uri"] == "/variants/images/caf%C3%A9%20x.jpg/320x0.webp"


@pytest.mark.parametrize(
    ("uri", "query"),
    [
        ("/img/images/a.jpg", {}),
        ("/img/images/a.jpg", {"w": "abc"}),
        ("/img/images/a.jpg", {"w": "-5"}),
        ("/img/images/a.jpg", {"w": "800", "fmt": "gif"}),
        ("/img/images/a.jpg", {"w": "800", "h": "x"}),
        ("/img/../etc/passwd", {"w": "800"}),
        ("/img/images/%2e%2e/x.jpg", {"w": "800"}),
        ("/img/images//a.jpg", {"w": "800"}),
        ("/img/variants/images/a.jpg/800x0.webp", {"w": "800"}),
        ("/img/", {"w": "800"}),
    ],
)
def test_malformed_input_is_400(run, uri, query):
    (result,) = run(viewer_request(uri, query))
    assert result["statusCode"] == 400


def test_other_paths_pass_untouched(run):
    event = viewer_request("/images/a.jpg", {"w": "800"})
    (result,) = run(event)
    assert result == event["request"]


# --- the attack on a private prefix (issue 10, item 1), on the deployed function ---------


@pytest.fixture(scope="module")
def private_cdn(tmp_path_factory) -> dict:
    """The Cdn template of a deployment whose images/ are private."""
    outdir = tmp_path_factory.mktemp("private-cdn")
    return synthesize(private_images_config(), outdir).templates["Cdn"]


@pytest.fixture(scope="module")
def run_deployed(private_cdn, tmp_path_factory):
    """The image-URL function exactly as the synthesized template deploys it."""
    (code,) = [
        resource["Properties"]["FunctionCode"]
        for logical_id, resource in private_cdn["Resources"].items()
        if logical_id.startswith("ImageUrlFunction")
    ]
    invoke = function_runner(tmp_path_factory.mktemp("cff-deployed"), code)
    return lambda *events: invoke(list(events))


def distribution(template: dict) -> dict:
    (config,) = [
        r["Properties"]["DistributionConfig"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudFront::Distribution"
    ]
    return config


def test_full_size_copy_of_a_private_image_needs_a_signature(private_cdn, run_deployed):
    """/img/images/secret.jpg?w=1920: CloudFront picks the behaviour from the path the viewer
    sent; that behaviour requires the key group and runs the function that maps the URL."""
    config = distribution(private_cdn)
    behaviour = first_matching_behaviour(config, "/img/images/secret.jpg")
    assert behaviour["PathPattern"] == "/img/images/*"
    (key_group,) = [
        k for k, r in private_cdn["Resources"].items() if r["Type"].endswith("KeyGroup")
    ]
    assert behaviour["TrustedKeyGroups"] == [{"Ref": key_group}]
    (association,) = behaviour["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert association["FunctionARN"]["Fn::GetAtt"][0].startswith("ImageUrlFunction")

    (result,) = run_deployed(viewer_request("/img/images/secret.jpg", {"w": "1920"}, "*/*"))
    assert result["uri"] == "/variants/images/secret.jpg/1920x0.jpeg"
    # Asked for directly, the variant is just as guarded.
    direct = first_matching_behaviour(config, result["uri"])
    assert direct["PathPattern"] == "/variants/images/*"
    assert direct["TrustedKeyGroups"] == [{"Ref": key_group}]


@pytest.mark.parametrize(
    "uri",
    [
        "/img/%69mages/secret.jpg",
        "/img/%69%6D%61%67%65%73/secret.jpg",
        "/img/images%2Fsecret.jpg",
        "/img/image%73/secret.jpg",
        "/variants/%69mages/secret.jpg/1920x0.jpeg",
        "/variants/images%2dx/secret.jpg/1920x0.jpeg",
        "/variants/videos/../images/secret.jpg/1920x0.jpeg",
        "/variants/videos/%2e%2e/images/secret.jpg/1920x0.jpeg",
        "/variants/videos//images/secret.jpg/1920x0.jpeg",
    ],
)
def test_encoded_prefixes_cannot_slip_past_the_signed_behaviours(private_cdn, run_deployed, uri):
    """S3 and the resizer decode %69 to i: a path that spells a private prefix in
    percent-encoding (or climbs into it with dot segments) would match only the unsigned
    generic behaviour. It is refused."""
    config = distribution(private_cdn)
    assert "TrustedKeyGroups" not in first_matching_behaviour(config, uri)
    (result,) = run_deployed(viewer_request(uri, {"w": "1920"}))
    assert result["statusCode"] == 400
    headers = result["headers"]
    assert headers["x-content-type-options"] == {"value": "nosniff"}
    assert headers["content-security-policy"] == {"value": "default-src 'none'; sandbox"}


@pytest.mark.parametrize(
    "uri",
    [
        "/variants/images/x%21y.jpg/800x0.webp",  # an escaped sub-delimiter: x!y.jpg
        "/variants/images/a%3Ab.jpg/800x0.webp",
        "/variants/images/caf%c3%a9.jpg/800x0.webp",  # a lower-case escape
        "/img/images/x%21y.jpg",
    ],
)
def test_a_second_spelling_of_a_key_is_refused(run_deployed, uri):
    """One spelling per key (the second review: x%21y.jpg and caf%c3%a9.jpg rendered beside
    x!y.jpg and caf%C3%A9.jpg): a second cache entry and a second render otherwise."""
    (result,) = run_deployed(viewer_request(uri, {"w": "800"}))
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"] == "bad_request"


def test_canonical_variant_paths_pass_untouched(run_deployed):
    for uri in (
        "/variants/images/caf%C3%A9.jpg/800x0.webp",
        "/variants/images/a.jpg/320x0.avif",
        "/variants/images/x!y(1).jpg/800x0.webp",
    ):
        event = viewer_request(uri)
        (result,) = run_deployed(event)
        assert result == event["request"]


def test_signed_url_parameters_do_not_disturb_the_mapping(run_deployed):
    """A signed friendly URL carries Expires, Signature and Key-Pair-Id next to w: CloudFront
    checks them on the signed behaviour; the function maps w and drops the query string."""
    query = {
        "w": "640",
        "Expires": "1767225600",
        "Signature": "abc~def_",
        "Key-Pair-Id": "K2JCJMDEHXQW5F",
    }
    (result,) = run_deployed(viewer_request("/img/images/secret.jpg", query, "image/webp"))
    assert result["uri"] == "/variants/images/secret.jpg/640x0.webp"
    assert result["querystring"] == {}

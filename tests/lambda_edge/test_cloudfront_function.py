"""The CloudFront Function, run under Node with CloudFront Function event objects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.config import load_config
from stacks.edge_config import cloudfront_function_code

NODE = Path(sys.executable).with_name("node")
HARNESS = """
const fs = require('fs');
const code = fs.readFileSync(process.argv[2], 'utf8');
const handler = new Function(code + '\\nreturn handler;')();
const events = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(events.map((e) => handler(e))));
"""


def viewer_request(
    uri: str, query: dict[str, str] | None = None, accept: str | None = None
) -> dict:
    headers = {"host": {"value": "media.example.com"}}
    if accept is not None:
        headers["accept"] = {"value": accept}
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request", "distributionId": "EDFDVBD6EXAMPLE"},
        "viewer": {"ip": "198.51.100.11"},
        "request": {
            "method": "GET",
            "uri": uri,
            "querystring": {k: {"value": v} for k, v in (query or {}).items()},
            "headers": headers,
            "cookies": {},
        },
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cff")
    function = directory / "function.js"
    function.write_text(cloudfront_function_code(load_config("example").cdn))
    harness = directory / "harness.js"
    harness.write_text(HARNESS)

    def invoke(*events: dict) -> list[dict]:
        result = subprocess.run(
            [str(NODE), str(harness), str(function)],
            input=json.dumps(list(events)),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(result.stdout)

    return invoke


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

"""Hypothesis: 10,000+ generated keys and paths through the running API. None escapes the
storage root, and every bad one gets a 4xx."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stowage.errors import InvalidKey
from stowage.keys import validate_key
from tests.runtime.conftest import TOKEN, image_bytes

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENTINEL = b"outside-the-root-sentinel"

segments = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "",
            "images",
            "etc",
            "passwd",
            ".stowage",
            ".stowage-tmp",
            "%2e%2e",
            "..\\..",
            "\x00",
            "a\nb",
            "e\u0301",
            "café",
            "sentinel.txt",
        ]
    ),
    st.text(min_size=0, max_size=12),
)
paths = st.lists(segments, min_size=1, max_size=8).map("/".join)


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory):
    from tests.helpers import free_port, running
    from tests.runtime.conftest import BIN, service_env

    base = tmp_path_factory.mktemp("fuzz")
    (base / "sentinel.txt").write_bytes(SENTINEL)
    root = base / "media"
    root.mkdir()
    port = free_port()
    with (
        running(
            [str(BIN / "stowage"), "serve", "--port", str(port)],
            env=service_env(root, port),
            log=base / "serve.log",
            ready_url=f"http://127.0.0.1:{port}/healthz",
        ),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        stored = client.post(
            "/api/upload/image", files={"file": ("x.png", image_bytes())}, headers=AUTH
        ).json()
        yield client, root, stored


def check(response: httpx.Response, key: str) -> None:
    assert SENTINEL not in response.content
    assert response.status_code < 500, (key, response.status_code, response.text)
    try:
        validate_key(key)
    except (InvalidKey, UnicodeError):
        assert 400 <= response.status_code < 500, (key, response.status_code)


@settings(
    max_examples=6000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(key=paths)
def test_files_by_key(fuzz_api, key):
    client, _, _ = fuzz_api
    for encoded in (quote(key, safe=""), quote(key, safe="/")):
        response = client.get(f"/api/files/{encoded}", headers=AUTH)
        check(response, key)
        if response.status_code == 200:
            validate_key(key)


@settings(
    max_examples=3000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(key=paths)
def test_signed_file_links(fuzz_api, key):
    client, _, _ = fuzz_api
    response = client.get(
        f"/files/{quote(key, safe='')}", params={"expires": "9999999999", "md5": "x"}
    )
    check(response, key)
    assert response.status_code != 200


@settings(
    max_examples=1500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(prefix=paths, filename=st.text(max_size=40))
def test_list_prefixes_and_upload_names(fuzz_api, prefix, filename):
    client, root, _ = fuzz_api
    listed = client.get("/api/upload", params={"prefix": prefix}, headers=AUTH)
    assert listed.status_code in (200, 400), listed.text
    response = client.post(
        "/api/upload/image",
        content=image_bytes(size=(2, 2)),
        headers=AUTH | {"X-Filename": quote(filename), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    validate_key(key)
    assert (root / key).resolve().is_relative_to(root.resolve())


@settings(
    max_examples=800, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(expires=st.text(max_size=24), md5=st.text(max_size=40))
def test_signature_parameters(fuzz_api, expires, md5):
    """Any text as a link's expires/md5 (digits from other scripts, non-ASCII, huge numbers):
    a 4xx with the JSON error body, never a 500 and never the file."""
    client, _, stored = fuzz_api
    response = client.get(f"/files/{stored['key']}", params={"expires": expires, "md5": md5})
    assert 400 <= response.status_code < 500, (expires, md5, response.text)
    assert response.json()["error"] in ("forbidden", "expired")

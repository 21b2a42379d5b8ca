"""Attack: make a browser run stored bytes (stored XSS) through every way to the media.

Objects that would execute as pages (``x.html``, ``x.svg``) are placed on disk directly, as
an attacker with a foothold or an older Stowage would have left them, some with a stored
type of ``text/html``. Through the role's Nginx and the real service, none goes out as
HTML or SVG, and every answer carrying stored bytes forbids sniffing and scripts.
"""

from __future__ import annotations

import os

import boto3
import httpx
import pytest
import yaml

from stowage.signing import sign_file_url
from stowage.sniff import ALLOWED
from tests.runtime.conftest import SECRET, image_bytes
from tests.runtime.nginx import ROLE, nginx_binary, stowage_behind_nginx

SCRIPT_PAGES = {
    "images/2026/01/01/x.html": b"<html><script>alert(document.cookie)</script></html>",
    "images/2026/01/01/x.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "transcripts/2026/01/01/x.htm": b"<script>alert(1)</script>",
    "transcripts/2026/01/01/x.xhtml": b"<html xmlns='http://www.w3.org/1999/xhtml'/>",
}
EXECUTABLE = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml")


def plant(root, key: str, data: bytes, stored_type: str | None = None) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if stored_type:
        os.setxattr(path, "user.stowage.content_type", stored_type.encode())


def assert_inert(response: httpx.Response, data: bytes) -> None:
    assert response.status_code == 200, response.text
    assert response.content == data
    content_type = response.headers["content-type"]
    assert not content_type.startswith(EXECUTABLE), content_type
    assert content_type == "application/octet-stream", content_type
    assert_media_headers(response)


def assert_media_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy


@pytest.fixture(scope="module")
def nginx_bin():
    return nginx_binary()


@pytest.mark.needs_root  # Nginx from apt, run as root by its config
def test_script_pages_on_disk_are_never_served_as_pages(tmp_path, nginx_bin):
    with stowage_behind_nginx(tmp_path) as stack:
        for key, data in SCRIPT_PAGES.items():
            plant(stack.root, key, data, stored_type="text/html")
            signed = httpx.get(sign_file_url(stack.base, key, SECRET, ttl=60))
            assert signed.headers["server"] == "nginx"
            assert_inert(signed, data)
            by_key = stack.client.get(f"/api/files/{key}", headers=AUTH)
            assert "x-accel-redirect" not in by_key.headers
            assert_inert(by_key, data)

        # A genuine upload keeps its sniffed type, with the same headers on every path.
        png = image_bytes("PNG")
        body = stack.client.post(
            "/api/upload/image", files={"file": ("p.png", png)}, headers=AUTH
        ).json()
        for response in (
            httpx.get(body["download_url"]),
            stack.client.get(f"/api/files/{body['key']}", headers=AUTH),
        ):
            assert response.headers["content-type"] == "image/png"
            assert_media_headers(response)


def test_the_service_alone_sends_inert_types_and_media_headers(serve):
    api = serve()
    for key, data in SCRIPT_PAGES.items():
        plant(api.root, key, data, stored_type="text/html")
        assert_inert(api.client.get(f"/api/files/{key}", headers=AUTH), data)
        assert_inert(httpx.get(sign_file_url(api.url, key, SECRET, ttl=60)), data)
        ranged = api.client.get(f"/api/files/{key}", headers=AUTH | {"Range": "bytes=0-4"})
        assert ranged.status_code == 206
        assert ranged.headers["content-type"] == "application/octet-stream"
        assert_media_headers(ranged)


def test_an_s3_object_stored_as_html_is_served_as_a_download(serve, bucket, moto_url):
    api = serve(STOWAGE_STORAGE_MODE="s3", STOWAGE_S3_BUCKET=bucket)
    key, data = "transcripts/2026/01/01/old.html", SCRIPT_PAGES["images/2026/01/01/x.html"]
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="text/html")
    assert_inert(api.client.get(f"/api/files/{key}", headers=AUTH), data)


def test_nginx_types_every_stored_extension_as_the_service_does():
    """The role's type map holds exactly the types the service may store, with the
    extension the service gives each; nothing that a browser would execute."""
    types = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["nginx_media_types"]
    for kind in ALLOWED.values():
        for content_type, extension in kind.items():
            assert extension.lstrip(".") in types[content_type], (content_type, extension)
    assert set(types) == {t for kind in ALLOWED.values() for t in kind}
    assert not set(types) & set(EXECUTABLE)


AUTH = {"Authorization": "Bearer test-token-0123456789abcdef"}

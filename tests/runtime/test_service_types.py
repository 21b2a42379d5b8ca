"""Attacks on what a stored object is served as: the client never chooses the type.

Over real HTTP against `stowage serve`, on local disk and on S3 (moto's server). Nginx and
CloudFront serve by extension or by the stored Content-Type, so both must come from the
sniffed bytes, never from the client's file name or header.
"""

from __future__ import annotations

import os

import boto3
import pytest

from tests.runtime.conftest import image_bytes, mp4_bytes, send_parts, start_multipart

HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"


def served_type(api, key: str) -> str:
    """The Content-Type the backend itself holds for ``key``: S3's header, or the type
    kept with the local file (what the service serves it as)."""
    if api.env.get("STOWAGE_STORAGE_MODE") == "s3":
        s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
        head = s3.head_object(Bucket=api.env["STOWAGE_S3_BUCKET"], Key="media/" + key)
        return head["ContentType"]
    return os.getxattr(api.root / key, "user.stowage.content_type").decode()


def assert_stored_as(api, body: dict, content_type: str, extension: str) -> None:
    assert body["content_type"] == content_type
    assert body["key"].endswith(f"/{body['id']}{extension}"), body["key"]
    assert served_type(api, body["key"]) == content_type
    catalogued = api.client.get(f"/api/upload/{body['id']}", headers=api.auth).json()
    assert catalogued["content_type"] == content_type


def test_transcript_named_x_html_is_stored_as_text(backend_api):
    api = backend_api
    text = api.client.post(
        "/api/upload/transcript-text",
        json={"content": HTML.decode(), "filename": "x.html"},
        headers=api.auth,
    )
    assert text.status_code == 201, text.text
    assert_stored_as(api, text.json(), "text/plain", ".txt")

    raw = api.client.post(
        "/api/upload/transcript-file",
        content=HTML,
        headers=api.auth | {"X-Filename": "x.html", "Content-Type": "text/html"},
    )
    assert raw.status_code == 201, raw.text
    assert_stored_as(api, raw.json(), "text/plain", ".txt")

    form = api.client.post(
        "/api/upload/transcript-file",
        files={"file": ("x.svg", HTML, "image/svg+xml")},
        headers=api.auth,
    )
    assert form.status_code == 201, form.text
    assert_stored_as(api, form.json(), "text/plain", ".txt")


def test_image_named_and_labelled_html_is_stored_as_its_bytes(backend_api):
    api = backend_api
    sent = api.client.post(
        "/api/upload/image",
        content=image_bytes("PNG"),
        headers=api.auth | {"X-Filename": "a.html", "Content-Type": "text/html"},
    )
    assert sent.status_code == 201, sent.text
    assert_stored_as(api, sent.json(), "image/png", ".png")


def test_multipart_declaring_mp4_whose_bytes_are_html_is_refused_and_removed(backend_api):
    api = backend_api
    body = HTML * 40
    started = start_multipart(api, "video", len(body), content_type="video/mp4", filename="x.html")
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["key"].endswith(f"/{session['id']}.mp4")  # never the client's .html
    send_parts(session, body)
    done = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
    assert done.status_code == 415, done.text
    assert done.json()["error"] == "unsupported_type"
    assert api.client.get(f"/api/files/{session['key']}", headers=api.auth).status_code == 404
    assert api.client.get(f"/api/upload/{session['id']}", headers=api.auth).status_code == 404
    again = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
    assert again.status_code == 404  # the session ended with the refusal
    assert api.client.get("/api/upload", headers=api.auth).json()["items"] == []


def test_multipart_type_the_kind_does_not_allow_is_refused_at_create(backend_api):
    api = backend_api
    for kind, declared in [("video", "text/html"), ("image", "image/svg+xml"), ("video", "x")]:
        started = start_multipart(api, kind, 100, content_type=declared)
        assert started.status_code == 415, (declared, started.text)
        assert started.json()["error"] == "unsupported_type"


def test_multipart_bytes_of_another_allowed_type_are_refused(backend_api):
    """Declared WebM, sent MP4: both are videos, but the key says .webm and the stored
    Content-Type video/webm, which the bytes are not."""
    api = backend_api
    video = mp4_bytes(64 * 1024)
    session = start_multipart(api, "video", len(video), content_type="video/webm").json()
    assert session["key"].endswith(".webm")
    send_parts(session, video)
    done = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
    assert done.status_code == 415, done.text
    assert api.client.get(f"/api/files/{session['key']}", headers=api.auth).status_code == 404


@pytest.mark.parametrize("declared", ["video/mp4", "Video/MP4; codecs=avc1"])
def test_multipart_object_type_equals_the_catalog(backend_api, declared):
    api = backend_api
    video = mp4_bytes(256 * 1024)
    session = start_multipart(
        api, "video", len(video), content_type=declared, filename="clip.exe"
    ).json()
    send_parts(session, video)
    done = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
    assert done.status_code == 200, done.text
    assert_stored_as(api, done.json(), "video/mp4", ".mp4")

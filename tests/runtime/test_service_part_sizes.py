"""Malformed multipart parts are the client's error on both backends: a 400 with the JSON
body, the session ended, nothing stored and (on S3) no multipart upload left open."""

from __future__ import annotations

import boto3
import httpx
import pytest

from tests.runtime.conftest import mp4_bytes, start_multipart

PART = 5 * 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def small_parts_api(request, serve):
    if request.param == "local":
        return serve(STOWAGE_MULTIPART_PART_SIZE=str(PART))
    bucket = request.getfixturevalue("bucket")
    return serve(
        STOWAGE_STORAGE_MODE="s3",
        STOWAGE_S3_BUCKET=bucket,
        STOWAGE_S3_PREFIX="media/",
        STOWAGE_MULTIPART_PART_SIZE=str(PART),
    )


def open_uploads(api) -> list:
    if api.env.get("STOWAGE_STORAGE_MODE") != "s3":
        return []
    s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
    return s3.list_multipart_uploads(Bucket=api.env["STOWAGE_S3_BUCKET"]).get("Uploads", [])


def test_undersized_parts_are_a_400_and_leave_nothing(small_parts_api):
    api = small_parts_api
    announced = PART + 4096
    session = start_multipart(api, "video", announced, content_type="video/mp4").json()
    assert len(session["part_urls"]) == 2
    body = mp4_bytes(2000)
    pieces = [body[:1000], body[1000:]]  # a first part far below the part size
    for url, piece in zip(session["part_urls"], pieces, strict=True):
        sent = httpx.put(url, content=piece, headers={"Content-Type": "application/octet-stream"})
        assert sent.status_code == 200, sent.text

    done = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)

    assert done.status_code == 400, done.text
    assert done.json()["error"] == "bad_request"
    again = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
    assert again.status_code == 404  # the session ended with the refusal
    assert api.client.get(f"/api/files/{session['key']}", headers=api.auth).status_code == 404
    assert api.client.get("/api/upload", headers=api.auth).json()["items"] == []
    assert open_uploads(api) == []

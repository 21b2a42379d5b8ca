"""Hybrid mode after a copy-mode migration: a key on both sides. Deleting, moving or
cleaning it up through the API must act on both, or GET serves the copy that was missed."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.runtime.conftest import image_bytes


@pytest.fixture
def hybrid(serve, bucket):
    api = serve(
        STOWAGE_STORAGE_MODE="hybrid", STOWAGE_S3_BUCKET=bucket, STOWAGE_HYBRID_S3_PERCENT="50"
    )
    api.s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
    api.bucket = bucket
    return api


def on_s3(api, key: str) -> bool:
    listed = api.s3.list_objects_v2(Bucket=api.bucket, Prefix=key).get("Contents", [])
    return any(item["Key"] == key for item in listed)


def on_disk(api, key: str) -> bool:
    return (api.root / key).is_file()


def upload_on_both_sides(api, *, is_temp: bool, n: int) -> dict:
    """An upload, then its copy on the side the catalog does not name (what a copy-mode
    migration leaves behind)."""
    data = image_bytes(size=(10 + n, 7))
    body = api.client.post(
        "/api/upload/image",
        params={"is_temp": str(is_temp).lower()},
        files={"file": ("p.png", data)},
        headers=api.auth,
    ).json()
    if body["backend"] == "local":
        api.s3.put_object(Bucket=api.bucket, Key=body["key"], Body=data, ContentType="image/png")
    else:
        (api.root / body["key"]).parent.mkdir(parents=True, exist_ok=True)
        (api.root / body["key"]).write_bytes(data)
    assert on_s3(api, body["key"])
    assert on_disk(api, body["key"])
    return body


def assert_gone_everywhere(api, key: str) -> None:
    assert api.client.get(f"/api/files/{key}", headers=api.auth).status_code == 404
    assert not on_s3(api, key)
    assert not on_disk(api, key)


def test_delete_removes_the_key_from_both_sides(hybrid):
    # Several uploads, so both sides are the catalogued one at least once.
    bodies = [upload_on_both_sides(hybrid, is_temp=False, n=n) for n in range(6)]
    assert {b["backend"] for b in bodies} == {"local", "s3"}
    for body in bodies:
        assert (
            hybrid.client.delete(f"/api/upload/{body['id']}", headers=hybrid.auth).status_code
            == 204
        )
        assert_gone_everywhere(hybrid, body["key"])


def test_move_to_permanent_moves_both_copies(hybrid):
    bodies = [upload_on_both_sides(hybrid, is_temp=True, n=n) for n in range(6)]
    for body in bodies:
        moved = hybrid.client.post(
            f"/api/upload/{body['id']}/move-to-permanent", headers=hybrid.auth
        )
        assert moved.status_code == 200, moved.text
        assert_gone_everywhere(hybrid, body["key"])
        key = moved.json()["key"]
        assert hybrid.client.get(f"/api/files/{key}", headers=hybrid.auth).status_code == 200
        assert (
            hybrid.client.delete(f"/api/upload/{body['id']}", headers=hybrid.auth).status_code
            == 204
        )
        assert_gone_everywhere(hybrid, key)


def test_cleanup_removes_expired_temp_copies_on_both_sides(hybrid):
    bodies = [upload_on_both_sides(hybrid, is_temp=True, n=n) for n in range(6)]
    time.sleep(1.5)
    report = hybrid.client.post(
        "/api/upload/cleanup-temp", params={"hours": 0.0003}, headers=hybrid.auth
    )
    assert report.status_code == 200, report.text
    for body in bodies:
        assert (
            hybrid.client.get(f"/api/upload/{body['id']}", headers=hybrid.auth).status_code == 404
        )
        assert_gone_everywhere(hybrid, body["key"])

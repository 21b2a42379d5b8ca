"""Focal points: the API over real HTTP (local disk and S3 on moto's server), both catalogs,
the S3 copy-in-place that keeps what the original had, and the invalidation it triggers."""

from __future__ import annotations

import sqlite3

import pytest

from stowage.catalog.base import Record
from stowage.catalog.sqlite import SqliteCatalog
from tests.runtime.conftest import image_bytes, mp4_bytes


def upload_image(api) -> dict:
    response = api.client.post(
        "/api/upload/image", files={"file": ("p.png", image_bytes())}, headers=api.auth
    )
    assert response.status_code == 201, response.text
    return response.json()


def focal_url(upload_id: str) -> str:
    return f"/api/upload/{upload_id}/focal-point"


def test_focal_point_is_set_returned_and_cleared(backend_api):
    api = backend_api
    record = upload_image(api)
    assert record["focal_point"] is None
    put = api.client.put(focal_url(record["id"]), json={"x": 0.25, "y": 0.7}, headers=api.auth)
    assert put.status_code == 200, put.text
    assert put.json()["focal_point"] == {"x": 0.25, "y": 0.7}
    got = api.client.get(f"/api/upload/{record['id']}", headers=api.auth).json()
    assert got["focal_point"] == {"x": 0.25, "y": 0.7}
    assert got["sha256"] == record["sha256"]
    download = api.client.get(got["download_url"], follow_redirects=True)
    assert download.content == image_bytes()  # the bytes are untouched
    cleared = api.client.delete(focal_url(record["id"]), headers=api.auth)
    assert cleared.status_code == 200
    assert cleared.json()["focal_point"] is None
    listed = api.client.get("/api/upload", headers=api.auth).json()["items"]
    assert [item["focal_point"] for item in listed] == [None]


@pytest.mark.parametrize(
    "body",
    [
        {"x": 1.5, "y": 0.5},
        {"x": 0.5, "y": -0.01},
        {"x": 0.5},
        {"x": "0.5", "y": "0.5"},
        {"x": True, "y": 0.5},
        [0.5, 0.5],
        "0.5,0.5",
    ],
)
def test_invalid_focal_points_are_refused_as_every_invalid_body_is(serve, body):
    """400 with the field named, as the service answers every invalid body (its handler of
    validation errors; the OpenAPI document lists no 422)."""
    api = serve()
    record = upload_image(api)
    response = api.client.put(focal_url(record["id"]), json=body, headers=api.auth)
    assert response.status_code == 400, response.text
    assert "body" in response.json()["detail"]
    assert (
        api.client.get(f"/api/upload/{record['id']}", headers=api.auth).json()["focal_point"]
        is None
    )


def test_focal_point_needs_auth_an_upload_and_an_image(serve):
    api = serve()
    record = upload_image(api)
    body = {"x": 0.5, "y": 0.5}
    assert api.client.put(focal_url(record["id"]), json=body).status_code == 401
    assert api.client.delete(focal_url(record["id"])).status_code == 401
    wrong = {"Authorization": "Bearer not-a-token-at-all-000000"}
    assert api.client.put(focal_url(record["id"]), json=body, headers=wrong).status_code == 403
    missing = api.client.put(focal_url("0" * 32), json=body, headers=api.auth)
    assert missing.status_code == 404
    video = api.client.post(
        "/api/upload/video", files={"file": ("v.mp4", mp4_bytes())}, headers=api.auth
    ).json()
    assert api.client.put(focal_url(video["id"]), json=body, headers=api.auth).status_code == 415


def test_focal_body_over_the_json_limit_is_413_unread(serve):
    api = serve(STOWAGE_MAX_JSON_BYTES="1024")
    record = upload_image(api)
    body = b'{"x": 0.5, "y": 0.5, "pad": "' + b"x" * 4096 + b'"}'
    response = api.client.put(
        focal_url(record["id"]),
        content=body,
        headers=api.auth | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_changing_the_focal_point_removes_the_hosts_variants(serve):
    api = serve()
    record = upload_image(api)
    variants = api.root / "variants" / record["key"]
    (variants / "400x400-cover.webp").parent.mkdir(parents=True)
    (variants / "400x400-cover.webp").write_bytes(b"old crop")
    (variants / "800x0.webp").write_bytes(b"old")
    sibling = api.root / "variants" / (record["key"] + "2") / "800x0.webp"
    sibling.parent.mkdir(parents=True)
    sibling.write_bytes(b"another original's")
    put = api.client.put(focal_url(record["id"]), json={"x": 0.1, "y": 0.9}, headers=api.auth)
    assert put.status_code == 200
    assert not variants.exists()
    assert sibling.read_bytes() == b"another original's"
    # Again, with nothing left to remove.
    assert api.client.delete(focal_url(record["id"]), headers=api.auth).status_code == 200


def test_hybrid_sets_the_point_on_every_side_that_holds_the_original(serve, bucket):
    """A copy-mode migration leaves an original on both sides: the S3 copy gets the metadata
    the edge reads, and the host's variants go."""
    import boto3

    from tests.runtime.test_service_hybrid import upload_on_both_sides

    api = serve(
        STOWAGE_STORAGE_MODE="hybrid", STOWAGE_S3_BUCKET=bucket, STOWAGE_HYBRID_S3_PERCENT="50"
    )
    api.s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
    api.bucket = bucket
    record = upload_on_both_sides(api, is_temp=False, n=1)
    variant = api.root / "variants" / record["key"] / "400x400-cover.webp"
    variant.parent.mkdir(parents=True)
    variant.write_bytes(b"old crop")
    put = api.client.put(focal_url(record["id"]), json={"x": 0.2, "y": 0.4}, headers=api.auth)
    assert put.status_code == 200, put.text
    head = api.s3.head_object(Bucket=bucket, Key=record["key"])
    assert head["Metadata"]["stowage-focal"] == "0.200,0.400"
    assert head["ContentType"] == "image/png"
    assert not variant.exists()


# --- catalogs -------------------------------------------------------------------------------


def test_catalogs_keep_the_focal_point(catalog):
    record = Record(
        id="f" * 32,
        key="images/2026/p.png",
        size=1,
        sha256="0" * 64,
        content_type="image/png",
        is_temp=False,
        backend="local",
    )
    catalog.add(record)
    assert catalog.get(record.id).focal_point is None
    catalog.update(record.changed(focal_point=(0.25, 0.7)), expected_key=record.key)
    assert catalog.get(record.id).focal_point == (0.25, 0.7)
    assert catalog.list(prefix="images/")[0][0].focal_point == (0.25, 0.7)
    catalog.update(record.changed(focal_point=None), expected_key=record.key)
    assert catalog.get(record.id).focal_point is None


OLD_SCHEMA = """
CREATE TABLE objects (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,
    is_temp INTEGER NOT NULL, backend TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, expires_at TEXT
);
INSERT INTO objects VALUES ('a1', 'images/old.png', 'images/', 3, 'aa', 'image/png', 0,
    'local', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', NULL);
"""


def test_an_existing_sqlite_catalog_is_upgraded_in_place(tmp_path):
    path = tmp_path / "catalog.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    catalog = SqliteCatalog(path)
    old = catalog.get("a1")
    assert (old.key, old.focal_point) == ("images/old.png", None)
    catalog.update(old.changed(focal_point=(0.5, 0.125)), expected_key=old.key)
    catalog.close()
    reopened = SqliteCatalog(path)  # a second open finds the column and adds nothing
    assert reopened.get("a1").focal_point == (0.5, 0.125)
    reopened.close()

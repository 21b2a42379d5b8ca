"""`stowage stats` and /metrics: what the host knows about its store, measured on a store
filled through the real service, read through the real CLI and the real /metrics."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from tests.runtime.conftest import TOKEN, image_bytes, mp4_bytes, stowage_cli

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def filled(serve):
    """A store with two images, a video, two temp images (one two days old) and spool
    debris, plus a symlink to outside the root that must not be counted."""
    api = serve()
    sizes = {"images/": 0, "videos/": 0, "temp/": 0}

    def upload(kind: str, body: bytes, name: str, temp: bool = False) -> dict:
        response = api.client.post(
            f"/api/upload/{kind}?is_temp={str(temp).lower()}",
            files={"file": (name, body)},
            headers=AUTH,
        )
        assert response.status_code == 201, response.text
        return response.json()

    for size in ((64, 48), (128, 96)):
        sizes["images/"] += upload("image", image_bytes(size=size), "a.png")["size"]
    sizes["videos/"] += upload("video", mp4_bytes(20_000), "v.mp4")["size"]
    old = upload("image", image_bytes(size=(32, 32)), "t.png", temp=True)
    sizes["temp/"] += old["size"] + upload("image", image_bytes(), "u.png", temp=True)["size"]
    two_days_ago = time.time() - 48 * 3600
    os.utime(api.root / old["key"], (two_days_ago, two_days_ago))
    backdate(api, old["id"], two_days_ago)
    spool = api.root / ".stowage-tmp"
    spool.mkdir(exist_ok=True)
    (spool / "1-dead.part").write_bytes(b"x" * 1000)
    (api.root / "images" / "escape").symlink_to("/usr")
    return api, sizes, old


def backdate(api, upload_id: str, when: float) -> None:
    """Make a catalogued upload as old as ``when`` (the catalog decides expiry)."""
    stamp = datetime.fromtimestamp(when, UTC).isoformat()
    db = sqlite3.connect(api.root / ".stowage" / "catalog.db")
    with db:
        db.execute("UPDATE objects SET created_at = ? WHERE id = ?", (stamp, upload_id))
    db.close()


def stats_json(api) -> dict:
    return json.loads(stowage_cli(api.env, "stats", "--json").stdout)


def test_stats_counts_objects_and_bytes_by_prefix(filled):
    api, sizes, _ = filled
    stats = stats_json(api)
    assert stats["root"] == str(api.root.resolve())
    assert stats["prefixes"]["images/"] == {"objects": 2, "bytes": sizes["images/"]}
    assert stats["prefixes"]["videos/"] == {"objects": 1, "bytes": sizes["videos/"]}
    assert stats["prefixes"]["temp/"] == {"objects": 2, "bytes": sizes["temp/"]}
    assert not [p for p in stats["prefixes"] if p.startswith(".stowage")]  # catalog, spool
    assert stats["spool"] == {"objects": 1, "bytes": 1000}
    assert 0 < stats["disk_used_bytes"] < stats["disk_total_bytes"]
    assert stats["disk_free_bytes"] > 0


def test_counts_come_from_the_catalog_not_a_walk_of_the_disk(filled):
    """Neither a scrape nor the command walks the media tree (a million files on a big
    host): files the catalog does not hold are not counted, and a catalogued object stays
    counted as the catalog says."""
    api, sizes, _ = filled
    strays = api.root / "images" / "2020" / "01" / "01"
    strays.mkdir(parents=True)
    for n in range(20):
        (strays / f"stray-{n}.bin").write_bytes(b"x" * 10)
    stats = stats_json(api)
    assert stats["prefixes"]["images/"] == {"objects": 2, "bytes": sizes["images/"]}
    values = metric_values(api.client.get("/metrics").text)
    assert values['stowage_stored_objects{prefix="images/"}'] == 2


def test_temp_backlog_is_what_outlived_the_expiry(filled):
    api, _, old = filled
    stats = stats_json(api)
    assert stats["temp_max_age_hours"] == 24
    assert stats["temp_expired"] == {"objects": 1, "bytes": old["size"]}


def test_last_cleanup_is_recorded_by_a_real_cleanup_only(filled):
    api, _, _ = filled
    assert stats_json(api)["last_cleanup_at"] is None
    stowage_cli(api.env, "cleanup", "--older-than", "24h", "--dry-run")
    assert stats_json(api)["last_cleanup_at"] is None, "a dry run cleans nothing"
    stowage_cli(api.env, "cleanup", "--older-than", "24h")
    stats = stats_json(api)
    assert stats["last_cleanup_at"] is not None
    assert 0 <= stats["last_cleanup_age_seconds"] < 60


def test_the_snapshot_age_is_honestly_unknown(filled):
    api, _, _ = filled
    stats = stats_json(api)
    assert stats["newest_snapshot_age_seconds"] is None
    assert stats["newest_snapshot"].startswith("unknown on the host")


def test_stats_prints_a_table_without_json(filled):
    api, _, _ = filled
    out = stowage_cli(api.env, "stats").stdout
    assert re.search(r"^  images/\s+2 objects, ", out, re.MULTILINE), out
    assert re.search(r"^  older than 24h\s+1 objects", out, re.MULTILINE), out
    assert re.search(r"^last cleanup\s+never recorded on this host$", out, re.MULTILINE), out
    assert re.search(r"^disk\s+[\d.]+% used, ", out, re.MULTILINE), out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def metric_values(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_carry_the_same_numbers(filled):
    api, sizes, old = filled
    stowage_cli(api.env, "cleanup", "--older-than", "72h")
    stats = stats_json(api)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    values = metric_values(response.text)
    for prefix in ("images/", "videos/", "temp/"):
        assert (
            values[f'stowage_stored_objects{{prefix="{prefix}"}}']
            == (stats["prefixes"][prefix]["objects"])
        )
        assert values[f'stowage_stored_bytes{{prefix="{prefix}"}}'] == sizes[prefix]
    assert values["stowage_temp_expired_objects"] == 1
    assert values["stowage_temp_expired_bytes"] == old["size"]
    assert values["stowage_spool_files"] == 1
    assert values["stowage_disk_total_bytes"] == stats["disk_total_bytes"]
    assert abs(values["stowage_last_cleanup_timestamp_seconds"] - time.time()) < 120
    assert "stowage_uploads_total" in response.text  # the service's own metrics stay


def test_metrics_leave_out_a_cleanup_time_never_recorded(serve):
    api = serve()
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert "stowage_last_cleanup_timestamp_seconds" not in response.text
    assert "stowage_disk_free_bytes" in response.text


def test_a_missing_media_root_is_one_line(serve, tmp_path):
    api = serve()
    result = stowage_cli(api.env, "stats", "--path", str(tmp_path / "nowhere"), check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nowhere" in result.stderr


def test_metrics_still_answer_without_a_media_root(serve, tmp_path):
    """An S3-mode service may have no local media root: /metrics keeps its own numbers."""
    api = serve()
    api.root.rename(tmp_path / "moved-away")
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert "stowage_request_duration_seconds" in response.text
    assert "stowage_disk_free_bytes" not in response.text


def test_an_s3_mode_service_counts_nothing_on_its_disk(serve, bucket):
    """Its objects live in the bucket (and its catalog may be a DynamoDB table that a scrape
    every minute on every host must not scan): no per-prefix counts, disk numbers stay."""
    api = serve(STOWAGE_STORAGE_MODE="s3", STOWAGE_S3_BUCKET=bucket, STOWAGE_S3_PREFIX="m/")
    response = api.client.post(
        "/api/upload/image", files={"file": ("a.png", image_bytes())}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    text = api.client.get("/metrics").text
    assert "stowage_disk_free_bytes" in text
    assert "stowage_stored_objects{" not in text
    assert stats_json(api)["prefixes"] == {}

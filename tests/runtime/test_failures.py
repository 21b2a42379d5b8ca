"""Failures a host really sees: a killed service, a full disk, a crowd of clients."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import boto3
import httpx
import pytest

from tests.helpers import tmpfs
from tests.runtime.conftest import (
    BIN,
    TOKEN,
    image_bytes,
    mp4_bytes,
    send_parts,
    start_multipart,
)
from tests.runtime.safety import assert_consistent

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def catalog_rows(root) -> int:
    with contextlib.closing(sqlite3.connect(root / ".stowage" / "catalog.db")) as db:
        return db.execute("SELECT COUNT(*) FROM objects").fetchone()[0]


def objects_on_disk(root) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not str(p.relative_to(root)).startswith(".stowage")
    )


def test_kill_9_mid_upload_leaves_no_object_and_cleanup_removes_the_orphan(serve):
    api = serve()
    kept = api.client.post(
        "/api/upload/image", files={"file": ("k.png", image_bytes())}, headers=AUTH
    )
    assert kept.status_code == 201
    port = int(api.url.rsplit(":", 1)[1])
    total = 8 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            (
                "POST /api/upload/video HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\nX-Filename: v.mp4\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
            ).encode()
        )
        conn.sendall(mp4_bytes(3 * 1024 * 1024))
        spool = api.root / ".stowage-tmp"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            parts = [p for p in spool.glob("*.part") if p.stat().st_size > 0]
            if parts:
                break
            time.sleep(0.05)
        assert parts, "the upload never reached the spool file"
        os.killpg(api.process.pid, signal.SIGKILL)
        api.process.wait(timeout=10)

    assert objects_on_disk(api.root) == [kept.json()["key"]]
    assert catalog_rows(api.root) == 1
    assert list(spool.glob("*.part")), "the orphan is still there before cleanup"

    result = subprocess.run(
        [str(BIN / "stowage"), "cleanup", "--older-than", "24h", "--json"],
        env=api.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert '"orphan_spool_files": [' in result.stdout
    assert not list(spool.glob("*.part"))
    assert objects_on_disk(api.root) == [kept.json()["key"]]
    assert catalog_rows(api.root) == 1


@pytest.fixture
def small_filesystem(tmp_path):
    """A 4 MiB tmpfs (root only) for the media root; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs and needs root")
    with tmpfs(tmp_path / "small", "4m") as mount_point:
        yield mount_point


@pytest.mark.needs_root  # mounts a tmpfs
def test_full_disk_is_507_and_loses_nothing(serve, small_filesystem):
    api = serve(root=small_filesystem)
    first = image_bytes("PNG", size=(400, 400), mode="RGB")
    kept = api.client.post("/api/upload/image", files={"file": ("k.png", first)}, headers=AUTH)
    assert kept.status_code == 201, kept.text

    announced = api.client.post(
        "/api/upload/video",
        content=mp4_bytes(6 * 1024 * 1024),
        headers=AUTH | {"X-Filename": "big.mp4", "Content-Type": "application/octet-stream"},
    )
    assert announced.status_code == 507
    assert announced.json()["error"] == "insufficient_storage"

    def stream():  # no Content-Length: the disk fills while the body arrives
        body = mp4_bytes(6 * 1024 * 1024)
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    streamed = api.client.post(
        "/api/upload/video",
        content=stream(),
        headers=AUTH | {"X-Filename": "big.mp4", "Content-Type": "application/octet-stream"},
    )
    assert streamed.status_code == 507, streamed.text
    assert objects_on_disk(api.root) == [kept.json()["key"]]
    assert (
        hashlib.sha256((api.root / kept.json()["key"]).read_bytes()).hexdigest()
        == kept.json()["sha256"]
    )
    assert catalog_rows(api.root) == 1
    assert not list((api.root / ".stowage-tmp").glob("*.part"))
    again = api.client.post(
        "/api/upload/image", files={"file": ("s.png", image_bytes())}, headers=AUTH
    )
    assert again.status_code == 201  # the service recovered once space was given back


def test_100_concurrent_uploads_and_downloads(serve):
    api = serve()
    payloads = [image_bytes("PNG", size=(50 + n, 40)) + os.urandom(n * 97) for n in range(100)]

    async def run():
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=api.url, timeout=120, limits=limits) as client:
            uploads = await asyncio.gather(
                *(
                    client.post(
                        "/api/upload/image", files={"file": (f"{n}.png", data)}, headers=AUTH
                    )
                    for n, data in enumerate(payloads)
                )
            )
            bodies = [u.json() for u in uploads]
            assert [u.status_code for u in uploads] == [201] * 100
            downloads = await asyncio.gather(
                *(client.get(f"/api/files/{b['key']}", headers=AUTH) for b in bodies)
            )
            return bodies, downloads

    bodies, downloads = asyncio.run(run())
    for data, body, download in zip(payloads, bodies, downloads, strict=True):
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert hashlib.sha256(download.content).hexdigest() == body["sha256"]
    assert len({b["key"] for b in bodies}) == 100
    assert catalog_rows(api.root) == 100


def test_service_killed_mid_complete_then_retry_commits_exactly_once(serve, bucket, moto_url):
    """On S3 the complete assembles the object, then reads it back for its SHA-256 before
    cataloguing it. Kill the service in that window: a retry on a new process must commit
    the object that is already in place (one object, one row), not orphan it."""
    settings = {"STOWAGE_STORAGE_MODE": "s3", "STOWAGE_S3_BUCKET": bucket}
    api = serve(**settings)
    s3 = boto3.client("s3", endpoint_url=moto_url)
    video = mp4_bytes(40 * 1024 * 1024)
    session = start_multipart(api, "video", len(video), content_type="video/mp4").json()
    send_parts(session, video)

    def complete():
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{api.url}/api/upload/{session['id']}/complete", headers=AUTH, timeout=60)

    completing = threading.Thread(target=complete)
    completing.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=session["key"]).get("Contents", [])
        if listed:
            break
        time.sleep(0.005)
    assert listed, "the object never appeared"
    os.killpg(api.process.pid, signal.SIGKILL)
    api.process.wait(timeout=10)
    completing.join()
    assert catalog_rows(api.root) == 0, "killed too late: the row was already written"

    again = serve(root=api.root, **settings)
    retried = again.client.post(f"/api/upload/{session['id']}/complete", headers=AUTH)
    assert retried.status_code == 200, retried.text
    assert retried.json()["sha256"] == hashlib.sha256(video).hexdigest()
    assert_consistent(again, {session["id"]: video})

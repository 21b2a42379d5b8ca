"""The streamed upload path through Nginx (the role's site) to `stowage serve`: bodies that
span many write batches arrive whole and hash right; a body cut off mid-batch leaves no spool
file, no object and no row, even while a batch is still being written."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

from tests.runtime.conftest import TOKEN, mp4_bytes
from tests.runtime.nginx import stowage_behind_nginx

MIB = 1024**2
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def stack(tmp_path):
    with stowage_behind_nginx(tmp_path, body_limit_mb=64) as running_stack:
        yield running_stack


def spool_files(stack) -> list:
    return list((stack.root / ".stowage-tmp").glob("*.part"))


def stored_files(stack) -> list:
    return [p for p in (stack.root / "videos").rglob("*") if p.is_file()]


@pytest.mark.parametrize("framing", ["content-length", "chunked", "multipart-form"])
def test_bodies_spanning_many_batches_arrive_whole(stack, framing):
    """21 MiB (many 1 MiB write batches and a remainder) in odd-sized pieces: same bytes,
    same SHA-256 as the client's, in every framing."""
    data = mp4_bytes(21 * MIB + 12_345)
    headers = AUTH | {"X-Filename": "clip.mp4", "Content-Type": "application/octet-stream"}
    if framing == "content-length":
        response = stack.client.post("/api/upload/video", content=data, headers=headers)
    elif framing == "chunked":
        pieces = (data[i : i + 777_777] for i in range(0, len(data), 777_777))
        response = stack.client.post("/api/upload/video", content=pieces, headers=headers)
    else:
        files = {"file": ("clip.mp4", data, "video/mp4")}
        response = stack.client.post("/api/upload/video", files=files, headers=AUTH)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert (stack.root / body["key"]).read_bytes() == data
    assert spool_files(stack) == []


def test_body_cut_off_mid_batch_leaves_nothing(stack):
    """The client declares 48 MiB, sends 18 MiB (batches written and one in flight), then
    disappears: the spool file goes, nothing is stored or catalogued."""
    head = mp4_bytes(4096)
    declared, sent = 48 * MIB, 18 * MIB
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    request = (
        "POST /api/upload/video HTTP/1.1\r\nHost: stowage.test\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\n"
        f"X-Filename: clip.mp4\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(request.encode() + head)
    block = os.urandom(MIB)
    for _ in range(sent // MIB):
        sock.sendall(block)
    deadline = time.monotonic() + 20
    while not spool_files(stack) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_files(stack), "the upload never reached the spool"
    sock.close()

    deadline = time.monotonic() + 30
    while spool_files(stack) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spool_files(stack) == []
    assert stored_files(stack) == []
    assert stack.client.get("/api/upload", headers=AUTH).json()["items"] == []
    # The service is still whole: the next upload works.
    data = mp4_bytes(5 * MIB)
    response = stack.client.post(
        "/api/upload/video",
        content=data,
        headers=AUTH | {"X-Filename": "clip.mp4", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text

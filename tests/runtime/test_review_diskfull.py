"""Review F2: a full disk anywhere on the upload path (spool, object, catalog) is 507 with
the JSON body, and leaves no object and no catalog row. On a real, small tmpfs."""

from __future__ import annotations

import os

import pytest

from tests.helpers import tmpfs

pytestmark = pytest.mark.needs_root  # mounts a tmpfs

MEDIA_SIZE = 3 * 1024 * 1024


@pytest.fixture
def tiny_root(tmp_path):
    with tmpfs(tmp_path / "tiny", str(MEDIA_SIZE)) as root:
        yield root


def objects_on_disk(root) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).parts[0].startswith((".stowage", "filler"))
    )


def leave_free(root, free_bytes: int) -> None:
    """Grow or shrink the filler so the filesystem has about ``free_bytes`` left."""
    filler = root / "filler"
    filler.unlink(missing_ok=True)
    stat = os.statvfs(root)
    available = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(available - free_bytes, 0))


def test_full_disk_at_every_stage_is_507_with_nothing_left(serve, tiny_root):
    api = serve(root=tiny_root)
    first = api.client.post(
        "/api/upload/transcript-text", json={"content": "warm up"}, headers=api.auth
    )
    assert first.status_code == 201, first.text
    stored = [first.json()]
    statuses = []
    # From room to spare down to nothing: the write that fails moves from the catalog's
    # WAL to the object to the spool; each must answer the same contract.
    for free_kib in (96, 64, 48, 40, 32, 28, 24, 20, 16, 12, 8, 4, 0):
        leave_free(tiny_root, free_kib * 1024)
        for route, kwargs in (
            ("/api/upload/transcript-text", {"json": {"content": "x" * 3000}}),
            ("/api/upload/transcript-file", {"content": b"hello " * 1000}),
        ):
            response = api.client.post(route, headers=api.auth, **kwargs)
            statuses.append(response.status_code)
            assert response.status_code in (201, 507), (free_kib, route, response.text)
            if response.status_code == 201:
                stored.append(response.json())
                continue
            assert response.json()["error"] == "insufficient_storage"
            assert response.headers["content-type"] == "application/json"
            # No object beyond the stored ones, no row beyond them either.
            assert objects_on_disk(tiny_root) == sorted(r["key"] for r in stored)
            listed = api.client.get("/api/upload", params={"limit": 1000}, headers=api.auth)
            assert listed.status_code == 200, listed.text
            assert sorted(i["id"] for i in listed.json()["items"]) == sorted(
                r["id"] for r in stored
            )
    assert 507 in statuses
    # Room again: the service recovers without a restart.
    (tiny_root / "filler").unlink()
    again = api.client.post("/api/upload/transcript-text", json={"content": "ok"}, headers=api.auth)
    assert again.status_code == 201, again.text

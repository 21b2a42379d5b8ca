"""A delete that lands while the local backend is moving the same object (after the new
name is linked, before the old one is unlinked) must win: no copy under the new name may
outlive it. Found by make ci-nonroot's run of test_service_races (an orphan file left by a
move racing a delete); here the interleaving is forced instead of hoped for."""

from __future__ import annotations

import os

import pytest

from stowage.backends import local as local_module
from stowage.backends.local import LocalBackend


def test_a_source_deleted_mid_move_leaves_no_copy(tmp_path, monkeypatch):
    backend = LocalBackend(tmp_path / "root")
    source, destination = "temp/videos/2026/11/22/a.mp4", "videos/2026/11/22/a.mp4"
    spool = tmp_path / "bytes"
    spool.write_bytes(b"x" * 1000)
    backend.put_file(source, spool, sha256="0" * 64, content_type="video/mp4")
    real_link = os.link

    def link_then_concurrent_delete(src, dst, *args, **kwargs):
        real_link(src, dst, *args, **kwargs)
        backend.delete(source)  # another request's DELETE lands right here

    monkeypatch.setattr(local_module.os, "link", link_then_concurrent_delete)
    with pytest.raises(FileNotFoundError):
        backend.move(source, destination)
    monkeypatch.undo()

    assert not backend.exists(source)
    assert not backend.exists(destination)

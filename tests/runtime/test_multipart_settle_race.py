"""A completion that finds its parts gone (another service assembled them) settles on what
the other made of the upload. Found by a fresh-clone run of test_service_cluster: when the
other completion committed between this one's look for a record and its look for the
session, it answered 404 and deleted the object the other had just committed. Here that
interleaving is forced: the first look for a record happens "before" the commit."""

from __future__ import annotations

import hashlib
import io

from stowage.service import Stowage
from stowage.settings import Settings
from tests.runtime.conftest import SECRET, mp4_bytes


def test_a_completion_committed_between_the_two_looks_keeps_its_object(tmp_path, monkeypatch):
    service = Stowage.from_settings(Settings(local_root=tmp_path / "media", signing_secret=SECRET))
    try:
        video = mp4_bytes(4096)
        session, urls = service.start_multipart(
            "video", size=len(video), filename=None, content_type="video/mp4", is_temp=False
        )
        for number in range(1, len(urls) + 1):
            start = (number - 1) * session.part_size
            chunk = video[start : start + session.part_size]
            service.receive_part(session.id, number, io.BytesIO(chunk))
        committed = service.complete_multipart(session.id)  # the other request's completion

        real_find = service.catalog.find
        looks = []

        def find_before_the_commit(record_id):
            looks.append(record_id)
            return None if len(looks) == 1 else real_find(record_id)

        monkeypatch.setattr(service.catalog, "find", find_before_the_commit)
        settled = service._settled(session)

        assert settled == committed
        assert hashlib.sha256(service.backend.read_all(committed.key)).hexdigest() == (
            committed.sha256
        )
    finally:
        service.close()

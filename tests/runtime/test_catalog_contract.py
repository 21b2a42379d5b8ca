"""One contract, every catalog: SQLite and DynamoDB (moto's server, the StorageStack schema)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stowage.catalog import MultipartSession, Record
from stowage.errors import BadRequest, Conflict, NotFound
from stowage.keys import new_upload_id


def record(key: str, *, minutes_ago: int = 0, is_temp: bool = False, size: int = 10) -> Record:
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return Record(
        id=new_upload_id(),
        key=key,
        size=size,
        sha256="ab" * 32,
        content_type="image/png",
        is_temp=is_temp,
        backend="local",
        created_at=created,
        updated_at=created,
        expires_at=created + timedelta(hours=24) if is_temp else None,
    )


class TestCatalogContract:
    def test_add_get_by_id_and_key(self, catalog):
        row = record("images/2026/01/01/a.png", is_temp=True)
        catalog.add(row)
        assert catalog.get(row.id) == row
        assert catalog.get_by_key(row.key) == row
        assert catalog.get_by_key("images/none") is None
        with pytest.raises(NotFound):
            catalog.get("missing")

    def test_id_and_key_are_unique(self, catalog):
        row = record("images/x.png")
        catalog.add(row)
        with pytest.raises(Conflict):
            catalog.add(record("images/x.png"))
        with pytest.raises(Conflict):
            catalog.add(Record(**{**row.__dict__, "key": "images/y.png"}))
        assert catalog.get_by_key("images/y.png") is None

    def test_update_moves_the_key(self, catalog):
        row = record("temp/images/m.png", is_temp=True)
        catalog.add(row)
        moved = row.changed(key="images/m.png", is_temp=False, expires_at=None)
        catalog.update(moved)
        assert catalog.get(row.id) == moved
        assert catalog.get_by_key("images/m.png") == moved
        assert catalog.get_by_key("temp/images/m.png") is None
        other = record("images/o.png")
        catalog.add(other)
        with pytest.raises(Conflict):
            catalog.update(other.changed(key="images/m.png"))
        with pytest.raises(NotFound):
            catalog.update(record("images/ghost.png"))

    def test_delete(self, catalog):
        row = record("images/d.png")
        catalog.add(row)
        catalog.delete(row.id)
        with pytest.raises(NotFound):
            catalog.get(row.id)
        assert catalog.get_by_key(row.key) is None
        with pytest.raises(NotFound):
            catalog.delete(row.id)
        catalog.add(record("images/d.png"))  # the key is free again

    def test_list_pages_in_creation_order(self, catalog):
        rows = [record(f"images/2026/01/01/{n:02d}.png", minutes_ago=50 - n) for n in range(25)]
        for row in reversed(rows):
            catalog.add(row)
        catalog.add(record("videos/v.mp4"))
        seen, cursor = [], None
        while True:
            page, cursor = catalog.list(prefix="images/", limit=10, cursor=cursor)
            assert len(page) <= 10
            seen += page
            if cursor is None:
                break
        assert [r.id for r in seen] == [r.id for r in rows]

    def test_list_filters(self, catalog):
        catalog.add(record("images/a/1.png"))
        catalog.add(record("images/b/1.png"))
        catalog.add(record("temp/images/t.png", is_temp=True))
        keys = lambda **f: sorted(r.key for r in catalog.list(limit=100, **f)[0])  # noqa: E731
        assert keys(prefix="images/a/") == ["images/a/1.png"]
        assert keys(is_temp=True) == ["temp/images/t.png"]
        assert keys(is_temp=False) == ["images/a/1.png", "images/b/1.png"]
        assert keys() == ["images/a/1.png", "images/b/1.png", "temp/images/t.png"]

    def test_malformed_cursor(self, catalog):
        with pytest.raises(BadRequest):
            catalog.list(cursor="not-a-cursor!")

    def test_temp_created_before(self, catalog):
        old = record("temp/videos/old.mp4", minutes_ago=120, is_temp=True)
        new = record("temp/videos/new.mp4", minutes_ago=1, is_temp=True)
        kept = record("videos/old.mp4", minutes_ago=500)
        for row in (old, new, kept):
            catalog.add(row)
        cutoff = datetime.now(UTC) - timedelta(minutes=60)
        assert [r.id for r in catalog.temp_created_before(cutoff)] == [old.id]

    def test_temp_backlog_counts_what_cleanup_would_take(self, catalog):
        for row in (
            record("temp/videos/old.mp4", minutes_ago=120, is_temp=True, size=5),
            record("temp/images/old.png", minutes_ago=90, is_temp=True, size=7),
            record("temp/videos/new.mp4", minutes_ago=1, is_temp=True, size=100),
            record("videos/old.mp4", minutes_ago=500, size=1000),
        ):
            catalog.add(row)
        assert catalog.temp_backlog(datetime.now(UTC) - timedelta(minutes=60)) == (2, 12)

    def test_temp_created_before_streams_while_rows_go(self, catalog):
        """Cleanup removes each candidate before asking for the next: none is skipped."""
        rows = [
            record(f"temp/images/{n:03d}.png", minutes_ago=200 - n, is_temp=True) for n in range(30)
        ]
        for row in rows:
            catalog.add(row)
        seen = []
        for found in catalog.temp_created_before(datetime.now(UTC)):
            seen.append(found.id)
            catalog.delete(found.id, expected_key=found.key)
        assert seen == [r.id for r in rows]
        assert list(catalog.temp_created_before(datetime.now(UTC))) == []

    def test_remove_rows_leaves_rows_changed_meanwhile(self, catalog):
        kept, moved, gone, taken = (
            record(f"temp/images/{name}.png", is_temp=True) for name in "abcd"
        )
        for row in (kept, moved, gone, taken):
            catalog.add(row)
        catalog.update(moved.changed(key="images/b.png", is_temp=False), expected_key=moved.key)
        catalog.delete(gone.id)
        removed = catalog.remove_rows([moved, gone, taken])
        assert [r.id for r in removed] == [taken.id]
        assert catalog.get(moved.id).key == "images/b.png"
        assert catalog.get(kept.id) == kept
        with pytest.raises(NotFound):
            catalog.get(taken.id)
        stats = catalog.stats()
        assert (stats.objects, stats.temp_objects) == (2, 1)

    def test_stats_and_all(self, catalog):
        catalog.add(record("images/1.png", size=100))
        catalog.add(record("videos/1.mp4", size=1000))
        catalog.add(record("temp/images/2.png", size=7, is_temp=True))
        stats = catalog.stats()
        assert (stats.objects, stats.bytes, stats.temp_objects, stats.temp_bytes) == (3, 1107, 1, 7)
        assert stats.by_prefix["videos/"] == {"objects": 1, "bytes": 1000}
        assert stats.by_backend == {"local": {"objects": 3, "bytes": 1107}}
        assert [r.key for r in catalog.all()] == [
            "images/1.png",
            "temp/images/2.png",
            "videos/1.mp4",
        ]

    def test_multipart_sessions(self, catalog):
        session = MultipartSession(
            id=new_upload_id(),
            key="videos/2026/01/01/s.mp4",
            handle="h1",
            backend="local",
            kind="video",
            content_type="video/mp4",
            size=100,
            part_size=50,
            parts=2,
            is_temp=False,
            filename="s.mp4",
        )
        catalog.add_session(session)
        assert catalog.get_session(session.id) == session
        assert [s.id for s in catalog.sessions()] == [session.id]
        with pytest.raises(Conflict):
            catalog.add_session(session)
        catalog.delete_session(session.id)
        with pytest.raises(NotFound):
            catalog.get_session(session.id)
        assert catalog.list()[0] == []  # sessions are not objects

    def test_update_and_delete_act_only_on_the_row_as_seen(self, catalog):
        row = record("temp/images/s.png", is_temp=True)
        catalog.add(row)
        moved = row.changed(key="images/s.png", is_temp=False, expires_at=None)
        catalog.update(moved, expected_key=row.key)
        # A request that read the row before the move must not delete or overwrite it.
        with pytest.raises(Conflict):
            catalog.delete(row.id, expected_key=row.key)
        with pytest.raises(Conflict):
            catalog.update(row.changed(size=1), expected_key=row.key)
        assert catalog.get(row.id) == moved
        assert catalog.get_by_key(moved.key) == moved
        catalog.delete(row.id, expected_key=moved.key)
        with pytest.raises(NotFound):
            catalog.delete(row.id, expected_key=moved.key)
        with pytest.raises(NotFound):
            catalog.update(moved, expected_key=moved.key)

    def test_commit_session_ends_it_and_adds_the_record_at_once(self, catalog):
        session = MultipartSession(
            id=new_upload_id(),
            key="videos/2026/01/01/c.mp4",
            handle="h2",
            backend="local",
            kind="video",
            content_type="video/mp4",
            size=100,
            part_size=100,
            parts=1,
            is_temp=False,
            filename=None,
        )
        catalog.add_session(session)
        row = Record(**{**record(session.key).__dict__, "id": session.id})
        catalog.commit_session(row)
        assert catalog.get(session.id) == row
        with pytest.raises(NotFound):
            catalog.get_session(session.id)
        with pytest.raises(Conflict):  # a second completion: nothing changes
            catalog.commit_session(row)
        assert [r.id for r in catalog.all()] == [row.id]

        taken = MultipartSession(**{**session.__dict__, "id": new_upload_id()})
        catalog.add_session(taken)
        with pytest.raises(Conflict):  # its key is taken: the session stays open
            catalog.commit_session(Record(**{**row.__dict__, "id": taken.id}))
        assert catalog.get_session(taken.id) == taken

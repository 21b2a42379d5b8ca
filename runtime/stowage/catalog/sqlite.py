"""SQLite catalog (WAL): the default, one file under the local storage root."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from stowage.catalog.base import (
    Catalog,
    MultipartSession,
    Record,
    Stats,
    decode_cursor,
    encode_cursor,
    session_from_json,
    session_to_json,
)
from stowage.catalog.sqlite_schema import ensure
from stowage.errors import Conflict, DiskFull, NotFound
from stowage.images.focal import focal_text, parse_focal
from stowage.keys import TEMP_PREFIX, top_prefix

# Rows per query of the iterators (cleanup, reindex): memory stays flat however many rows
# match, and no read holds the lock long enough to stall a request.
BATCH = 500

_INSERT = (
    "INSERT INTO objects (id, key, prefix, size, sha256, content_type, is_temp, backend,"
    " created_at, updated_at, expires_at, focal) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)

_COLUMNS = (
    "id, key, size, sha256, content_type, is_temp, backend, created_at, updated_at, expires_at,"
    " focal"
)


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"],
        key=row["key"],
        size=row["size"],
        sha256=row["sha256"],
        content_type=row["content_type"],
        is_temp=bool(row["is_temp"]),
        backend=row["backend"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None,
        focal_point=parse_focal(row["focal"]),
    )


def _row(record: Record) -> tuple:
    return (
        record.id,
        record.key,
        top_prefix(record.key),
        record.size,
        record.sha256,
        record.content_type,
        int(record.is_temp),
        record.backend,
        record.created_at.isoformat(),
        record.updated_at.isoformat(),
        record.expires_at.isoformat() if record.expires_at else None,
        focal_text(record.focal_point) if record.focal_point else None,
    )


def _full(exc: sqlite3.Error) -> DiskFull | None:
    """The contract's 507 for "database or disk is full" (the row is not written)."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFull("no space left for the catalog on the media filesystem")
    return None


class SqliteCatalog(Catalog):
    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        ensure(self._db)

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple = ()) -> int:
        with self._lock:
            try:
                return self._db.execute(sql, params).rowcount
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"catalog already holds that id or key ({exc})") from None
            except sqlite3.OperationalError as exc:
                raise (_full(exc) or exc) from None

    def add(self, record: Record) -> None:
        self._write(_INSERT, _row(record))

    def get(self, record_id: str) -> Record:
        rows = self._query(f"SELECT {_COLUMNS} FROM objects WHERE id = ?", (record_id,))
        if not rows:
            raise NotFound(f"no upload with id {record_id}")
        return _record(rows[0])

    def get_by_key(self, key: str) -> Record | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM objects WHERE key = ?", (key,))
        return _record(rows[0]) if rows else None

    def _unchanged(self, record_id: str, expected_key: str | None) -> tuple[str, tuple]:
        """The WHERE clause for a row as its caller saw it."""
        if expected_key is None:
            return "id = ?", (record_id,)
        return "id = ? AND key = ?", (record_id, expected_key)

    def _missed(self, record_id: str) -> Exception:
        self.get(record_id)  # NotFound if the row is gone
        return Conflict(f"upload {record_id} was changed by another request")

    def update(self, record: Record, *, expected_key: str | None = None) -> None:
        values = _row(record)
        where, params = self._unchanged(record.id, expected_key)
        changed = self._write(
            "UPDATE objects SET key=?, prefix=?, size=?, sha256=?, content_type=?, is_temp=?,"
            f" backend=?, created_at=?, updated_at=?, expires_at=?, focal=? WHERE {where}",
            (*values[1:], *params),
        )
        if not changed:
            raise self._missed(record.id)

    def delete(self, record_id: str, *, expected_key: str | None = None) -> None:
        where, params = self._unchanged(record_id, expected_key)
        if not self._write(f"DELETE FROM objects WHERE {where}", params):
            raise self._missed(record_id)

    def list(self, *, prefix="", is_temp=None, limit=100, cursor=None):
        where, params = _scope(prefix, is_temp)
        if cursor:
            created_at, record_id = decode_cursor(cursor, str, str)
            where.append("(created_at, id) > (?, ?)")
            params += [created_at, record_id]
        rows = self._query(
            f"SELECT {_COLUMNS} FROM objects WHERE {' AND '.join(where)}"
            " ORDER BY created_at, id LIMIT ?",
            (*params, limit + 1),
        )
        records = [_record(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = records[-1] if records else None
        return records, (
            encode_cursor([last.created_at.isoformat(), last.id]) if more and last else None
        )

    def _batches(self, sql: str, params: tuple, sort: tuple[str, ...]) -> Iterator[Record]:
        """Rows of ``sql``, BATCH at a time: it takes ``params``, then the ``sort`` columns'
        values of the last row seen (keyset pagination), then ``LIMIT ?``."""
        position = ("",) * len(sort)
        while True:
            rows = self._query(sql, (*params, *position, BATCH))
            yield from (_record(r) for r in rows)
            if len(rows) < BATCH:
                return
            position = tuple(rows[-1][name] for name in sort)

    def temp_created_before(self, cutoff: datetime) -> Iterator[Record]:
        yield from self._batches(
            f"SELECT {_COLUMNS} FROM objects WHERE is_temp = 1 AND created_at < ?"
            " AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
            (cutoff.isoformat(),),
            ("created_at", "id"),
        )

    def temp_backlog(self, cutoff: datetime) -> tuple[int, int]:
        ((objects, size),) = self._query(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects"
            " WHERE is_temp = 1 AND created_at < ?",
            (cutoff.isoformat(),),
        )
        return objects, size

    def remove_rows(self, records: Iterable[Record]) -> list[Record]:
        removed = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for record in records:
                    gone = self._db.execute(
                        "DELETE FROM objects WHERE id = ? AND key = ?", (record.id, record.key)
                    )
                    if gone.rowcount:
                        removed.append(record)
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _full(exc):
                    raise _full(exc) from None
                raise
        return removed

    def all(self) -> Iterator[Record]:
        yield from self._batches(
            f"SELECT {_COLUMNS} FROM objects WHERE key > ? ORDER BY key LIMIT ?", (), ("key",)
        )

    def stats(self) -> Stats:
        by_prefix: dict[str, dict[str, int]] = {}
        by_backend: dict[str, dict[str, int]] = {}
        totals = {"objects": 0, "bytes": 0, "temp_objects": 0, "temp_bytes": 0}
        for row in self._query(
            "SELECT prefix, backend, is_temp, objects, bytes FROM totals ORDER BY prefix"
        ):
            for group, name in ((by_prefix, row["prefix"]), (by_backend, row["backend"])):
                entry = group.setdefault(name, {"objects": 0, "bytes": 0})
                entry["objects"] += row["objects"]
                entry["bytes"] += row["bytes"]
            totals["objects"] += row["objects"]
            totals["bytes"] += row["bytes"]
            if row["is_temp"]:
                totals["temp_objects"] += row["objects"]
                totals["temp_bytes"] += row["bytes"]
        return Stats(**totals, by_prefix=by_prefix, by_backend=dict(sorted(by_backend.items())))

    def add_session(self, session: MultipartSession) -> None:
        body = json.dumps(session_to_json(session))
        self._write("INSERT INTO multipart (id, body) VALUES (?, ?)", (session.id, body))

    def get_session(self, session_id: str) -> MultipartSession:
        rows = self._query("SELECT body FROM multipart WHERE id = ?", (session_id,))
        if not rows:
            raise NotFound(f"no multipart upload with id {session_id}")
        return session_from_json(json.loads(rows[0]["body"]))

    def delete_session(self, session_id: str) -> None:
        if not self._write("DELETE FROM multipart WHERE id = ?", (session_id,)):
            raise NotFound(f"no multipart upload with id {session_id}")

    def commit_session(self, record: Record) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ended = self._db.execute("DELETE FROM multipart WHERE id = ?", (record.id,))
                if not ended.rowcount:
                    raise Conflict(f"multipart upload {record.id} was already ended")
                self._db.execute(_INSERT, _row(record))
                self._db.execute("COMMIT")
            except BaseException as exc:
                # SQLite may already have rolled back on its own (a full disk can do that).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise Conflict(f"catalog already holds id {record.id} or its key") from None
                if isinstance(exc, sqlite3.OperationalError) and _full(exc):
                    raise _full(exc) from None
                raise

    def sessions(self) -> Iterator[MultipartSession]:
        for row in self._query("SELECT id FROM multipart ORDER BY id"):
            yield self.get_session(row["id"])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _scope(prefix: str, is_temp: bool | None) -> tuple[list[str], list]:
    """The WHERE terms of a listing, written so SQLite walks an index in the list order
    (``created_at, id``) and seeks the cursor in it. A unary ``+`` keeps a column out of
    index selection: a key-range index would otherwise win and sort every match."""
    where, params = [], []
    top = top_prefix(prefix)
    if top and top != TEMP_PREFIX and prefix.startswith(top):
        where.append("prefix = ?")  # objects_by_prefix
        params.append(top)
    if prefix:
        where.append("+key >= ? AND +key < ?")
        params += [prefix, prefix + "\U0010ffff"]
    if is_temp is not None:
        # objects_by_temp unless a prefix already chose objects_by_prefix
        where.append("+is_temp = ?" if where else "is_temp = ?")
        params.append(int(is_temp))
    return where or ["1"], params

"""SQLite catalog (WAL): the default, one file under the local storage root."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
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
from stowage.errors import Conflict, DiskFull, NotFound
from stowage.images.focal import focal_text, parse_focal
from stowage.keys import top_prefix

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    is_temp INTEGER NOT NULL,
    backend TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT,
    focal TEXT
);
CREATE INDEX IF NOT EXISTS objects_by_prefix ON objects (prefix, created_at, id);
CREATE INDEX IF NOT EXISTS objects_temp ON objects (is_temp, created_at);
CREATE TABLE IF NOT EXISTS multipart (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
"""

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
        self._db.executescript(_SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(objects)")}
        if "focal" not in columns:  # a catalog made before focal points: upgrade in place
            self._db.execute("ALTER TABLE objects ADD COLUMN focal TEXT")

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
        where, params = ["key >= ? AND key < ?"], [prefix, prefix + "\U0010ffff"]
        if is_temp is not None:
            where.append("is_temp = ?")
            params.append(int(is_temp))
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

    def temp_created_before(self, cutoff: datetime) -> Iterator[Record]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM objects WHERE is_temp = 1 AND created_at < ?"
            " ORDER BY created_at",
            (cutoff.isoformat(),),
        )
        yield from (_record(r) for r in rows)

    def all(self) -> Iterator[Record]:
        yield from (_record(r) for r in self._query(f"SELECT {_COLUMNS} FROM objects ORDER BY key"))

    def stats(self) -> Stats:
        def grouped(column: str) -> dict[str, dict[str, int]]:
            return {
                row[0]: {"objects": row[1], "bytes": row[2]}
                for row in self._query(
                    f"SELECT {column}, COUNT(*), COALESCE(SUM(size), 0) FROM objects"
                    f" GROUP BY {column} ORDER BY {column}"
                )
            }

        (total,) = self._query(
            "SELECT COUNT(*), COALESCE(SUM(size),0), COALESCE(SUM(is_temp),0),"
            " COALESCE(SUM(CASE WHEN is_temp THEN size ELSE 0 END),0) FROM objects"
        )
        return Stats(
            objects=total[0],
            bytes=total[1],
            temp_objects=total[2],
            temp_bytes=total[3],
            by_prefix=grouped("prefix"),
            by_backend=grouped("backend"),
        )

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

"""The manifest of one migration run: a SQLite file that survives crashes.

Every object's plan, facts and progress are written before and after each step, so an
interrupted run resumes without recopying what was verified, and a rollback knows exactly
what the run changed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stowage.errors import NotFound

# Actions
COPY, SKIP, OVERWRITE, CONFLICT = "copy", "skip-identical", "overwrite", "conflict"
# States
PLANNED, VERIFIED, FAILED, SKIPPED, ROLLED_BACK = (
    "planned",
    "verified",
    "failed",
    "skipped",
    "rolled-back",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, destination TEXT NOT NULL, options TEXT NOT NULL,
    status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    reason TEXT,
    size INTEGER NOT NULL,
    src_modified TEXT,
    src_version TEXT,
    src_sha256 TEXT,
    dst_prev_version TEXT,
    dst_prev_sha256 TEXT,
    backup TEXT,
    dst_version TEXT,
    state TEXT NOT NULL,
    error TEXT,
    catalog_prev_backend TEXT,
    source_deleted INTEGER NOT NULL DEFAULT 0,
    source_marker TEXT,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_state ON objects (state);
"""


@dataclass
class Entry:
    key: str
    action: str
    size: int
    state: str = PLANNED
    reason: str | None = None
    src_modified: str | None = None
    src_version: str | None = None
    src_sha256: str | None = None
    dst_prev_version: str | None = None
    dst_prev_sha256: str | None = None
    backup: str | None = None
    dst_version: str | None = None
    error: str | None = None
    catalog_prev_backend: str | None = None
    source_deleted: int = 0
    source_marker: str | None = None


_COLUMNS = [f.name for f in fields(Entry)]


@dataclass
class Run:
    id: str
    source: str
    destination: str
    options: dict[str, Any]
    status: str
    created: str
    updated: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (what resume is for); after a power
        # loss the last commits may be lost, and resume then re-verifies and adopts copies.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @property
    def run_id(self) -> str:
        return self.path.stem

    def create_run(self, source: str, destination: str, options: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO run VALUES (?,?,?,?,?,?,?)",
                (self.run_id, source, destination, json.dumps(options), "planned", _now(), _now()),
            )

    def run(self) -> Run:
        with self._lock:
            row = self._db.execute("SELECT * FROM run").fetchone()
        if row is None:
            raise NotFound(f"{self.path} holds no run")
        return Run(**{**dict(row), "options": json.loads(row["options"])})

    def set_status(self, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE run SET status = ?, updated = ?", (status, _now()))

    def add(self, entries: list[Entry]) -> None:
        placeholders = ",".join("?" * (len(_COLUMNS) + 1))
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO objects ({','.join(_COLUMNS)}, updated)"
                f" VALUES ({placeholders})",
                [(*asdict(e).values(), _now()) for e in entries],
            )
            self._db.execute("COMMIT")

    def save(self, entry: Entry) -> None:
        self.add([entry])

    def entries(self, *states: str) -> list[Entry]:
        sql = f"SELECT {','.join(_COLUMNS)} FROM objects"
        params: tuple = ()
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            params = states
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY key", params).fetchall()
        return [Entry(**dict(row)) for row in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT action, state, COUNT(*), COALESCE(SUM(size), 0) FROM objects"
                " GROUP BY action, state"
            ).fetchall()
        return {f"{r[0]}/{r[1]}": {"objects": r[2], "bytes": r[3]} for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()

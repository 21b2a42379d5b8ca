"""The manifest of one migration run: a SQLite file that survives crashes.

Every object's plan, facts and progress are written before and after each step, so an
interrupted run resumes without recopying what was verified, and a rollback knows exactly
what the run changed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stowage.errors import BadRequest, NotFound
from stowage.migrate.commits import GroupCommit

# Actions
COPY, SKIP, OVERWRITE, CONFLICT = "copy", "skip-identical", "overwrite", "conflict"
INVALID = "invalid-name"  # a source name that cannot be a key: reported, never copied
LEFT_BEHIND = (CONFLICT, INVALID)
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
    status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
    pids TEXT NOT NULL DEFAULT '[]', host TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT NOT NULL,
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
    src_name TEXT NOT NULL DEFAULT '',
    written_sha256 TEXT,
    undone TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (key, src_name)
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
    src_name: str | None = None  # the source's own name when it differs (--normalize-names)
    written_sha256: str | None = None  # recorded the moment the destination write returns
    undone: str | None = None  # what rollback did: removed | restored | changed-since

    @property
    def name(self) -> str:
        """The name to read (and delete) at the source."""
        return self.src_name or self.key


_COLUMNS = [f.name for f in fields(Entry)]
_UPSERT = (
    f"INSERT OR REPLACE INTO objects ({','.join(_COLUMNS)}, updated)"
    f" VALUES ({','.join('?' * (len(_COLUMNS) + 1))})"
)


@dataclass
class Run:
    id: str
    source: str
    destination: str
    options: dict[str, Any]
    status: str
    created: str
    updated: str
    pids: list[int]
    host: str | None


def _stored(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: ("" if k == "src_name" and v is None else v) for k, v in items}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _row(entry: Entry) -> tuple[Any, ...]:
    return (*asdict(entry, dict_factory=_stored).values(), _now())


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
        self._commits = GroupCommit(lambda rows: self._write(rows))

    @property
    def run_id(self) -> str:
        return self.path.stem

    def create_run(self, source: str, destination: str, options: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO run VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    *(self.run_id, source, destination, json.dumps(options), "planned"),
                    *(_now(), _now(), "[]", socket.gethostname()),
                ),
            )

    def run(self) -> Run:
        with self._lock:
            row = self._db.execute("SELECT * FROM run").fetchone()
        if row is None:
            raise NotFound(f"{self.path} holds no run")
        run = Run(**{**dict(row), "options": json.loads(row["options"])})
        run.pids = json.loads(row["pids"])
        if run.status == "running" and not self.is_running():
            run.status = "interrupted"  # its process died without saying so (SIGKILL, crash)
        return run

    # -- liveness: the running process holds an flock on RUN_ID.lock ---------------------

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def acquire(self) -> None:
        """Mark this process as the run's writer; refuses if a live process already is."""
        handle = open(self.lock_path, "a+")  # noqa: SIM115 - held for the process's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunBusy(f"run {self.run_id} is still running in another process") from None
        self._held = handle
        with self._lock:
            pids = json.loads(self._db.execute("SELECT pids FROM run").fetchone()[0])
            self._db.execute("UPDATE run SET pids = ?", (json.dumps([*pids, os.getpid()]),))

    def release(self) -> None:
        held = getattr(self, "_held", None)
        if held is not None:
            held.close()
            self._held = None

    def is_running(self) -> bool:
        if getattr(self, "_held", None) is not None:
            return True
        try:
            handle = open(self.lock_path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False

    def set_status(self, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE run SET status = ?, updated = ?", (status, _now()))

    def add(self, entries: list[Entry]) -> None:
        self._write([_row(e) for e in entries])

    def save(self, entry: Entry) -> None:
        """Record one entry; returns once it is committed, in a transaction it may share with
        other threads' saves."""
        self._commits.submit(_row(entry))

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def entries(self, *states: str) -> list[Entry]:
        """Every entry in these states, in memory: for small sets (reports, tests)."""
        return list(self.iterate(*states))

    def iterate(self, *states: str, where: str = "", params: tuple = ()) -> Iterator[Entry]:
        """Entries in key order, read a page at a time (the run never holds them all): rows
        changed behind the cursor while iterating are not seen again."""
        conditions = [where] if where else []
        if states:
            conditions.append(f"state IN ({','.join('?' * len(states))})")
            params = (*params, *states)
        sql = f"SELECT {','.join(_COLUMNS)} FROM objects WHERE (key, src_name) > (?, ?)"
        sql += "".join(f" AND {c}" for c in conditions) + " ORDER BY key, src_name LIMIT ?"
        after = ("", "")
        while True:
            with self._lock:
                rows = self._db.execute(sql, (*after, *params, PAGE)).fetchall()
            for row in rows:
                yield _entry(row)
            if len(rows) < PAGE:
                return
            after = (rows[-1]["key"], rows[-1]["src_name"])

    def with_keys(self, keys: Iterable[str], *actions: str) -> list[Entry]:
        """The entries planned under these keys (a page of them) with one of ``actions``."""
        keys = list(keys)
        found: list[Entry] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            sql = f"SELECT {','.join(_COLUMNS)} FROM objects WHERE key IN"
            sql += f" ({','.join('?' * len(chunk))})"
            if actions:
                sql += f" AND action IN ({','.join('?' * len(actions))})"
            with self._lock:
                found += map(_entry, self._db.execute(sql, (*chunk, *actions)).fetchall())
        return found

    def with_names(self, names: Iterable[str], *states: str) -> dict[str, Entry]:
        """Entries by their source name (``Entry.name``) among ``names``, in ``states``."""
        names = list(names)
        found: dict[str, Entry] = {}
        for start in range(0, len(names), 250):
            chunk = names[start : start + 250]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {','.join(_COLUMNS)} FROM objects WHERE"
            sql += f" ((src_name = '' AND key IN ({marks})) OR src_name IN ({marks}))"
            sql += f" AND state IN ({','.join('?' * len(states))})"
            with self._lock:
                rows = self._db.execute(sql, (*chunk, *chunk, *states)).fetchall()
            found.update((e.name, e) for e in map(_entry, rows))
        return found

    def shared_keys(self) -> list[str]:
        """Keys planned for more than one source name (collisions of normalized names)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM objects GROUP BY key HAVING COUNT(*) > 1"
            ).fetchall()
        return [row[0] for row in rows]

    def keys(self) -> Iterator[str]:
        """Every planned key once, in key order (code point order), a page at a time."""
        after = ""
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT DISTINCT key FROM objects WHERE key > ? ORDER BY key LIMIT ?",
                    (after, PAGE),
                ).fetchall()
            yield from (row[0] for row in rows)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def holds_key(self, key: str, where: str, params: tuple) -> bool:
        with self._lock:
            row = self._db.execute(
                f"SELECT 1 FROM objects WHERE key = ? AND {where} LIMIT 1", (key, *params)
            ).fetchone()
        return row is not None

    def totals(self, *states: str) -> tuple[int, int]:
        """(objects, bytes) in these states."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects"
                f" WHERE state IN ({','.join('?' * len(states))})",
                states,
            ).fetchone()
        return row[0], row[1]

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT action, state, COUNT(*), COALESCE(SUM(size), 0) FROM objects"
                " GROUP BY action, state"
            ).fetchall()
        return {f"{r[0]}/{r[1]}": {"objects": r[2], "bytes": r[3]} for r in rows}

    def close(self) -> None:
        self.release()
        with self._lock:
            self._db.close()


PAGE = 2000


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(**{**dict(row), "src_name": row["src_name"] or None})


class KeysOf:
    """The keys of the entries in a column's ``values`` (e.g. those still to copy), as a
    container answered by the manifest: a run's keys are never all held in memory."""

    def __init__(self, manifest: Manifest, column: str, *values: str) -> None:
        self._manifest = manifest
        self._where, self._params = f"{column} IN ({','.join('?' * len(values))})", values

    def __contains__(self, key: str) -> bool:
        return self._manifest.holds_key(key, self._where, self._params)


class RunBusy(BadRequest):
    """Another live process is working on this run."""

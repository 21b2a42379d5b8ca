"""The SQLite catalog's schema and its in-place upgrade on open.

Version 2 (``PRAGMA user_version``) serves every request from an index: the list order and
its cursor (``created_at, id``, alone, within a top-level prefix, or within the temp flag),
cleanup's expired-temp selection and the temp backlog (covering: ``size`` is in the index),
and the stats totals from a ``totals`` table that triggers keep equal to the ``objects``
table's aggregates, so ``stats()`` reads a handful of rows instead of every object.

A version-0/1 database (the first schema: no totals, no creation-order index) is upgraded by
the first process that opens it, in one transaction: indexes built, totals computed from the
rows, triggers created. Other processes opening it meanwhile wait on SQLite's lock and then
find version 2.

Version 3 adds the ``focal`` column (an original's focal point for cover crops).
"""

from __future__ import annotations

import sqlite3

VERSION = 3

_TABLES = """
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
CREATE TABLE IF NOT EXISTS multipart (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
"""

_SUBTRACT_OLD = """
        UPDATE totals SET objects = objects - 1, bytes = bytes - old.size
        WHERE prefix = old.prefix AND backend = old.backend AND is_temp = old.is_temp;
        DELETE FROM totals WHERE objects = 0
        AND prefix = old.prefix AND backend = old.backend AND is_temp = old.is_temp;"""
_ADD_NEW = """
        INSERT INTO totals VALUES (new.prefix, new.backend, new.is_temp, 1, new.size)
        ON CONFLICT (prefix, backend, is_temp)
        DO UPDATE SET objects = objects + 1, bytes = bytes + excluded.bytes;"""

_UPGRADE = [
    "CREATE INDEX IF NOT EXISTS objects_by_prefix ON objects (prefix, created_at, id)",
    "CREATE INDEX IF NOT EXISTS objects_by_created ON objects (created_at, id)",
    "CREATE INDEX IF NOT EXISTS objects_by_temp ON objects (is_temp, created_at, id, size)",
    "DROP INDEX IF EXISTS objects_temp",  # version 1's (is_temp, created_at): a prefix of the above
    """CREATE TABLE IF NOT EXISTS totals (
        prefix TEXT NOT NULL,
        backend TEXT NOT NULL,
        is_temp INTEGER NOT NULL,
        objects INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (prefix, backend, is_temp)
    ) WITHOUT ROWID""",
    "DELETE FROM totals",
    "INSERT INTO totals SELECT prefix, backend, is_temp, COUNT(*), SUM(size) FROM objects"
    " GROUP BY prefix, backend, is_temp",
    "CREATE TRIGGER IF NOT EXISTS totals_add AFTER INSERT ON objects BEGIN" + _ADD_NEW + " END",
    "CREATE TRIGGER IF NOT EXISTS totals_remove AFTER DELETE ON objects BEGIN"
    + _SUBTRACT_OLD
    + " END",
    "CREATE TRIGGER IF NOT EXISTS totals_change"
    " AFTER UPDATE OF prefix, backend, is_temp, size ON objects BEGIN"
    + _SUBTRACT_OLD
    + _ADD_NEW
    + " END",
    "PRAGMA user_version = 2",
]


def version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def ensure(db: sqlite3.Connection) -> None:
    """Create or upgrade the schema (``db`` in autocommit mode, no transaction open)."""
    if version(db) >= VERSION:
        return
    db.executescript(_TABLES)
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded while we waited for the lock.
        if version(db) < 2:
            for statement in _UPGRADE:
                db.execute(statement)
        if version(db) < 3:
            columns = {row[1] for row in db.execute("PRAGMA table_info(objects)")}
            if "focal" not in columns:
                db.execute("ALTER TABLE objects ADD COLUMN focal TEXT")
            db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise

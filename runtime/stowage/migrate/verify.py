"""Compare two locations object by object, reading every byte.

Every source name is accounted for: a name that cannot be a key is a difference
(``invalid-name``) unless ``--normalize-names nfc`` maps it to a key, which is then compared.
Both listings go into a scratch SQLite file as they are read and are compared from there a
page at a time, so memory stays flat however many objects there are.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from stowage.backends import Backend
from stowage.backends.base import Unlisted
from stowage.migrate.plan import Options, listed_sha256, shown
from stowage.progress import Progress

PAGE = 2000


@dataclass
class Difference:
    key: str
    problem: str  # missing | extra | size | sha256 | invalid-name | collision
    source: str | None = None
    destination: str | None = None


class _Listings:
    """Both sides' names and sizes, on disk."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE src (key TEXT PRIMARY KEY, name TEXT, size INTEGER)")
        self.db.execute("CREATE TABLE dst (key TEXT PRIMARY KEY, size INTEGER)")

    def add_source(self, source: Backend, options: Options) -> Iterator[Difference]:
        """Fill ``src`` from the listing; yield names that cannot be compared."""
        self.db.execute("BEGIN")
        for n, found in enumerate(source.scan("")):
            if isinstance(found, Unlisted):
                name = found.name
                if not (options.normalize_names == "nfc" and found.nfc_key):
                    if options.selects(shown(name)):
                        yield Difference(shown(name), "invalid-name", found.reason)
                    continue
                key = found.nfc_key
            else:
                name = key = found.key
            if not options.selects(key):
                continue
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO src VALUES (?, ?, ?)", (key, name, found.size)
            )
            if not inserted.rowcount:
                (first,) = self.db.execute("SELECT name FROM src WHERE key = ?", (key,)).fetchone()
                yield Difference(key, "collision", shown(name), shown(first))
            if n % PAGE == PAGE - 1:
                self.db.execute("COMMIT")
                self.db.execute("BEGIN")
        self.db.execute("COMMIT")

    def add_destination(self, destination: Backend, options: Options) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR IGNORE INTO dst VALUES (?, ?)",
            ((i.key, i.size) for i in destination.list("") if options.selects(i.key)),
        )
        self.db.execute("COMMIT")

    def pages(self, sql: str) -> Iterator[tuple]:
        """Rows of ``sql`` (which takes the last key seen and a page size, and returns rows
        whose first column is a unique key), in key order, a page at a time."""
        after = ""
        while True:
            rows = self.db.execute(sql, (after, PAGE)).fetchall()
            yield from rows
            if len(rows) < PAGE:
                return
            after = rows[-1][0]


MISSING = """SELECT key FROM src WHERE key > ? AND key NOT IN (SELECT key FROM dst)
    ORDER BY key LIMIT ?"""
EXTRA = """SELECT key FROM dst WHERE key > ? AND key NOT IN (SELECT key FROM src)
    ORDER BY key LIMIT ?"""
BOTH = """SELECT src.key, src.name, src.size, dst.size FROM src JOIN dst USING (key)
    WHERE src.key > ? ORDER BY src.key LIMIT ?"""


def verify(source: Backend, destination: Backend, options: Options) -> tuple[list[Difference], int]:
    """(differences, objects compared)."""
    with tempfile.TemporaryDirectory(prefix="stowage-verify-") as scratch:
        listings = _Listings(Path(scratch) / "listings.sqlite")
        try:
            return _compare(listings, source, destination, options)
        finally:
            listings.db.close()


def _compare(
    listings: _Listings, source: Backend, destination: Backend, options: Options
) -> tuple[list[Difference], int]:
    differences = list(listings.add_source(source, options))
    listings.add_destination(destination, options)
    differences += [Difference(key, "missing") for (key,) in listings.pages(MISSING)]
    differences += [Difference(key, "extra") for (key,) in listings.pages(EXTRA)]
    compared, total = listings.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(src.size), 0) FROM src JOIN dst USING (key)"
    ).fetchone()
    progress = Progress(compared, total, quiet=options.quiet)

    def compare(row: tuple) -> Difference | None:
        key, name, size, dst_size = row
        try:
            if size != dst_size:
                return Difference(key, "size", str(size), str(dst_size))
            a, b = listed_sha256(source, name), destination.sha256(key)
            return None if a == b else Difference(key, "sha256", a, b)
        finally:
            progress.add_bytes(size)
            progress.add_object()

    found: list[Difference] = []
    errors: list[Exception] = []
    slots = threading.BoundedSemaphore(4 * options.workers)

    def compared_one(row: tuple) -> None:
        try:
            difference = compare(row)
            if difference is not None:
                found.append(difference)
        except Exception as exc:  # raised below, in the caller's thread
            errors.append(exc)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        for row in listings.pages(BOTH):
            slots.acquire()
            pool.submit(compared_one, row)
    progress.close()
    if errors:
        raise errors[0]
    differences += found
    return sorted(differences, key=lambda d: (d.key, d.problem)), compared

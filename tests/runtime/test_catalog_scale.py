"""The SQLite catalog as the store grows: every request's query walks an index (no full scan,
no sort of every match), its work does not grow with the rows, cleanup streams in batches
and removes exactly the expired rows, and a database of the first schema is upgraded in place
with its rows kept. Behaviour, never wall time: query plans and SQLite's own step counts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stowage.catalog import Record
from stowage.catalog.base import encode_cursor
from stowage.catalog.sqlite import SqliteCatalog
from stowage.catalog.sqlite_schema import VERSION
from stowage.service import CLEANUP_BATCH, REPORT_NAMES
from tests.runtime.conftest import TOKEN, stowage_cli

# The schema as the first release created it (no totals, no creation-order index).
FIRST_SCHEMA = """
CREATE TABLE objects (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,
    is_temp INTEGER NOT NULL, backend TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, expires_at TEXT
);
CREATE INDEX objects_by_prefix ON objects (prefix, created_at, id);
CREATE INDEX objects_temp ON objects (is_temp, created_at);
CREATE TABLE multipart (id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
NOW = datetime.now(UTC)
# The first schema's columns, named so the rows fit every later schema too.
COLUMNS = (
    "id, key, prefix, size, sha256, content_type, is_temp, backend, created_at, updated_at,"
    " expires_at"
)


def row(n: int, *, temp: bool = False, hours_ago: float | None = None, size: int = 100) -> tuple:
    """An objects-table row; the n-th is created n seconds after a point two years ago."""
    created = (
        NOW - timedelta(hours=hours_ago) if hours_ago else NOW - timedelta(days=730, seconds=-n)
    )
    kind = ("images/", "videos/", "transcripts/")[n % 3]
    top = f"temp/{kind}" if temp else kind
    upload_id = f"{n:032x}"
    return (
        upload_id,
        f"{top}{created:%Y/%m/%d}/{upload_id}.bin",
        top,
        size + n % 7,
        "ab" * 32,
        "application/octet-stream",
        int(temp),
        "local",
        created.isoformat(),
        created.isoformat(),
        (created + timedelta(hours=24)).isoformat() if temp else None,
    )


def fill(path: Path, rows: list[tuple]) -> None:
    """Rows written in one transaction through a plain connection (the triggers still fire)."""
    db = sqlite3.connect(path)
    with db:
        # COLUMNS is a constant of this file, not input.
        db.executemany(f"INSERT INTO objects ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)  # noqa: S608
    db.close()


def catalog_of(tmp_path: Path, n: int) -> tuple[SqliteCatalog, Path]:
    path = tmp_path / f"catalog-{n}.db"
    catalog = SqliteCatalog(path)
    fill(path, [row(i, temp=i % 10 == 0) for i in range(n)])
    return catalog, path


def traced(catalog: SqliteCatalog, call) -> list[str]:
    """The SELECT statements ``call`` makes the catalog run, with their values bound."""
    statements: list[str] = []
    catalog._db.set_trace_callback(statements.append)
    try:
        call()
    finally:
        catalog._db.set_trace_callback(None)
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def plan(catalog: SqliteCatalog, sql: str) -> list[str]:
    return [r[3] for r in catalog._db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]


def steps(catalog: SqliteCatalog, call) -> int:
    """SQLite virtual-machine steps ``call`` costs (a progress handler called on each)."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    catalog._db.set_progress_handler(tick, 1)
    try:
        call()
    finally:
        catalog._db.set_progress_handler(None, 1)
    return count


def middle_cursor(path: Path, prefix: str = "", is_temp: bool | None = None) -> str:
    """The cursor of the row half-way down a listing, found on a connection of its own."""
    db = sqlite3.connect(path)
    rows = sorted(
        (created, upload_id)
        for created, upload_id, key, temp in db.execute(
            "SELECT created_at, id, key, is_temp FROM objects"
        )
        if key.startswith(prefix) and is_temp in (None, bool(temp))
    )
    db.close()
    return encode_cursor(list(rows[len(rows) // 2]))


LISTS = {
    "list": {},
    "list prefix": {"prefix": "videos/"},
    "list, cursor": {"cursor": True},
    "list prefix, cursor": {"prefix": "images/", "cursor": True},
    "list is_temp, cursor": {"is_temp": True, "cursor": True},
    "list temp/, cursor": {"prefix": "temp/", "cursor": True},
}
OTHERS = {
    "stats": lambda c: c.stats(),
    "temp backlog": lambda c: c.temp_backlog(NOW - timedelta(hours=24)),
    "cleanup selection": lambda c: next(iter(c.temp_created_before(NOW)), None),
}


def request(catalog: SqliteCatalog, path: Path, name: str):
    """A call of the catalog as one API request (or cleanup step) makes it."""
    if name in OTHERS:
        return lambda: OTHERS[name](catalog)
    scope = dict(LISTS[name])
    cursor = middle_cursor(path, **{k: v for k, v in scope.items() if k != "cursor"})
    if not scope.pop("cursor", False):
        cursor = None
    return lambda: catalog.list(limit=100, cursor=cursor, **scope)


@pytest.mark.parametrize("name", [*LISTS, *OTHERS])
def test_each_request_query_walks_an_index(tmp_path, name):
    catalog, path = catalog_of(tmp_path, 2_000)
    statements = traced(catalog, request(catalog, path, name))
    assert statements
    for sql in statements:
        details = plan(catalog, sql)
        assert not [d for d in details if d.startswith("SCAN objects") and "INDEX" not in d], (
            sql,
            details,
        )
        assert not [d for d in details if "TEMP B-TREE" in d], (sql, details)


@pytest.mark.parametrize("name", [*LISTS, "stats"])
def test_a_request_costs_the_same_at_ten_times_the_rows(tmp_path, name):
    small, large = catalog_of(tmp_path, 1_500), catalog_of(tmp_path, 15_000)
    few = steps(small[0], request(*small, name))
    many = steps(large[0], request(*large, name))
    assert many < 1.5 * few, (few, many)


def test_stats_totals_follow_every_change(tmp_path):
    """The totals the triggers keep equal a fresh aggregate after adds, moves, resizes,
    a change of backend and deletes."""
    catalog, _ = catalog_of(tmp_path, 300)
    records = list(catalog.all())
    catalog.update(records[0].changed(key="images/moved.bin", is_temp=False, expires_at=None))
    catalog.update(records[1].changed(size=10_000, backend="s3"))
    catalog.delete(records[2].id)
    catalog.remove_rows(records[3:50])
    catalog.add(Record("f" * 32, "processed/x.webp", 5, "cd" * 32, "image/webp", False, "local"))
    stats = catalog.stats()
    db = catalog._db
    (objects, size, temp) = db.execute(
        "SELECT COUNT(*), SUM(size), SUM(is_temp) FROM objects"
    ).fetchone()
    assert (stats.objects, stats.bytes, stats.temp_objects) == (objects, size, temp)
    fresh = {
        p: {"objects": n, "bytes": b}
        for p, n, b in db.execute("SELECT prefix, COUNT(*), SUM(size) FROM objects GROUP BY 1")
    }
    assert stats.by_prefix == fresh
    assert set(stats.by_backend) == {"local", "s3"}


def test_an_old_database_is_upgraded_in_place_with_its_rows(tmp_path, serve):
    root = tmp_path / "media"
    path = root / ".stowage" / "catalog.db"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript(FIRST_SCHEMA)
    old.close()
    rows = [row(i, temp=i % 4 == 0) for i in range(250)]
    fill(path, rows)

    api = serve(root)  # the real service opens (and upgrades) it
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed, cursor = [], None
    while True:
        page = api.client.get(
            "/api/upload",
            params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            headers=auth,
        ).json()
        listed += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert listed == [r[0] for r in sorted(rows, key=lambda r: (r[8], r[0]))]
    overview = api.client.get("/api/upload/stats/overview", headers=auth).json()
    assert overview["objects"] == 250
    assert overview["bytes"] == sum(r[3] for r in rows)
    assert overview["temp_objects"] == sum(r[6] for r in rows)

    catalog = SqliteCatalog(path)  # a second opener finds it upgraded
    assert catalog._db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    (sql,) = traced(catalog, lambda: catalog.list(limit=10))
    assert any("objects_by_created" in d for d in plan(catalog, sql))


def test_cleanup_over_several_batches_removes_exactly_the_expired(serve, tmp_path):
    api = serve()
    path = api.root / ".stowage" / "catalog.db"
    expired = [row(i, temp=True, hours_ago=30 + i / 100) for i in range(CLEANUP_BATCH * 2 + 300)]
    young = [row(10_000 + i, temp=True, hours_ago=1) for i in range(50)]
    permanent = [row(20_000 + i, hours_ago=500) for i in range(50)]
    fill(path, expired + young + permanent)
    for r in expired + young:
        (api.root / r[1]).parent.mkdir(parents=True, exist_ok=True)
        (api.root / r[1]).write_bytes(b"x")

    result = stowage_cli(api.env, "cleanup", "--older-than", "24h", "--json")
    report = json.loads(result.stdout)
    assert report["counts"]["deleted_objects"] == len(expired)
    assert report["deleted_bytes"] == sum(r[3] for r in expired)
    assert len(report["deleted_objects"]) == min(len(expired), REPORT_NAMES)
    assert report["counts"]["missing_objects"] == 0
    db = sqlite3.connect(path)
    left = {key for (key,) in db.execute("SELECT key FROM objects")}
    assert left == {r[1] for r in young + permanent}
    assert not [r for r in expired if (api.root / r[1]).exists()]
    assert all((api.root / r[1]).exists() for r in young)
    overview = api.client.get(
        "/api/upload/stats/overview", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert overview["objects"] == len(young) + len(permanent)


def test_processes_opening_an_old_database_at_once_upgrade_it_once(tmp_path):
    """The service's workers and a cron cleanup may open an old catalog together: each
    opens it, one upgrades it, the totals count every row once."""
    path = tmp_path / "catalog.db"
    old = sqlite3.connect(path)
    old.executescript(FIRST_SCHEMA)
    old.close()
    fill(path, [row(i, temp=i % 5 == 0) for i in range(3_000)])
    opener = (
        "import sys; from pathlib import Path; from stowage.catalog.sqlite import SqliteCatalog;"
        " print(SqliteCatalog(Path(sys.argv[1])).stats().objects)"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", opener, str(path)], stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode().strip() for p in processes]
    assert [p.returncode for p in processes] == [0] * 4
    assert outputs == ["3000"] * 4
    db = sqlite3.connect(path)
    assert db.execute("SELECT SUM(objects) FROM totals").fetchone()[0] == 3_000

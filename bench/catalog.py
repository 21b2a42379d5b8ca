"""bench/catalog: the API and the maintenance commands as the SQLite catalog grows.

For each N (10k, 100k, 1M rows) a media root with a catalog of N realistic rows (keys under
images/, videos/, transcripts/, processed/ and temp/, sizes, creation times over two years,
10 % temp of which half are expired, an empty file on disk for every temp row) is built once
in ``.cache/bench-catalog/N`` and copied for each run (the catalog file copied, the media
hard-linked), so every run starts from the same state and opens an unmigrated catalog. The
real service runs under uvicorn (``stowage serve``) and is asked over HTTP with a bearer token
on one keep-alive connection, as a client would:

- ``GET /api/upload?limit=100``: the first page; the chain of cursors up to page 5,000 (or the
  last page); cursors taken at random depths of that chain, asked again in random order;
- ``GET /api/upload?limit=100&prefix=images/`` and ``&is_temp=true``: first pages;
- ``GET /api/upload/stats/overview`` and ``GET /metrics`` (the first scrape apart: it fills the
  collector's cache).

Then ``stowage stats --json`` and ``stowage cleanup --older-than 24h`` run in clean processes
(``bench.measure``: wall time and peak RSS). The peer of every figure is the same figure at the
smallest N of the run: the ratios show how cost grows with the store.

Usage: .venv/bin/python -m bench.catalog [--rows 10000 100000 1000000] [--samples 200]
       [--pages 5000] [--code DIR]
--code runs the service and the CLI from another checkout's runtime/ directory (e.g. the code
before a change: `git archive COMMIT runtime | tar -x -C .cache/base`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.measure import measured
from tests.helpers import free_port, running
from tests.runtime.conftest import TOKEN, service_env

BIN = Path(sys.executable).parent
CACHE = Path(".cache/bench-catalog")
PREFIXES = (("images/", ".jpg", 0.5), ("videos/", ".mp4", 0.2), ("transcripts/", ".txt", 0.15))
PREFIXES += (("processed/", ".webp", 0.15),)
# The objects table as every catalog version has had it: indexes are the code's business,
# so each run's service builds (or migrates to) its own on open.
TABLE = """
CREATE TABLE objects (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,
    is_temp INTEGER NOT NULL, backend TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, expires_at TEXT
);
CREATE TABLE multipart (id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
TYPES = {".jpg": "image/jpeg", ".mp4": "video/mp4", ".txt": "text/plain", ".webp": "image/webp"}


def _rows(n: int, now: datetime):
    rng = random.Random(n)  # noqa: S311 - reproducible data, not secrets
    span = timedelta(days=730).total_seconds()
    for i in range(n):
        temp = rng.random() < 0.10
        if temp and rng.random() < 0.5:
            created = now - timedelta(seconds=rng.uniform(60, 12 * 3600))  # young: kept
        else:
            created = now - timedelta(seconds=span * (1 - i / n) + 25 * 3600)
        prefix, ext, _ = rng.choices(PREFIXES, weights=[w for *_, w in PREFIXES])[0]
        upload_id = f"{int(created.timestamp() * 1000):012x}{rng.getrandbits(80):020x}"
        top = f"temp/{prefix}" if temp else prefix
        key = f"{top}{created:%Y/%m/%d}/{upload_id}{ext}"
        stamp = created.isoformat()
        yield (
            upload_id,
            key,
            top,
            int(rng.lognormvariate(12, 2)),
            hashlib.sha256(upload_id.encode()).hexdigest(),
            TYPES[ext],
            int(temp),
            "local",
            stamp,
            stamp,
            (created + timedelta(hours=24)).isoformat() if temp else None,
        )


def build(n: int) -> Path:
    """The cached media root for ``n`` rows (built on first use)."""
    root = CACHE / str(n)
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / ".stowage").mkdir(parents=True)
    db = sqlite3.connect(root / ".stowage" / "catalog.db")
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + TABLE)
    now = datetime.now(UTC)
    with db:
        db.executemany("INSERT INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?)", _rows(n, now))
    for (key,) in db.execute("SELECT key FROM objects WHERE is_temp = 1"):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    db.close()
    (root / ".built-at").write_text(now.isoformat())
    (root / ".complete").touch()
    return root


def working_copy(n: int, into: Path) -> Path:
    source = build(n)
    target = into / f"media-{n}"
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    db = target / ".stowage" / "catalog.db"
    db.unlink()
    shutil.copyfile(source / ".stowage" / "catalog.db", db)  # written to: a real copy
    return target


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def timed(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response


def ready(base: str, process: subprocess.Popen) -> None:
    """Wait for the first answer of /healthz with one patient request: a probe that gives up
    after seconds and asks again would pile requests onto a service slow to answer."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            httpx.get(f"{base}/healthz", timeout=1800)
            return
        except httpx.TransportError:
            time.sleep(0.2)


def api_figures(n: int, root: Path, env: dict, samples: int, pages: int) -> dict[str, list[float]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(root, port, **env)
    figures: dict[str, list[float]] = {}
    serve = [str(BIN / "stowage"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running(serve, env=env, log=root.parent / f"serve-{n}.log") as process:
        started = time.perf_counter()
        ready(base, process)
        figures["start-up (s, incl. schema work)"] = [time.perf_counter() - started]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=auth, timeout=600) as client:
            first = "/api/upload?limit=100"
            for name, url in (
                ("/healthz", "/healthz"),
                ("list, first page", first),
                ("list prefix=images/, first page", first + "&prefix=images/"),
                ("list is_temp=true, first page", first + "&is_temp=true"),
                ("stats/overview", "/api/upload/stats/overview"),
            ):
                figures[name] = [timed(client, url)[0] for _ in range(samples)]
            chain, cursors, cursor, page = [], [], None, 0
            rng = random.Random(n)  # noqa: S311 - reproducible picks, not secrets
            while page < pages:
                elapsed, response = timed(client, first + (f"&cursor={cursor}" if cursor else ""))
                chain.append(elapsed)
                page += 1
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
                cursors.append(cursor)
            figures[f"list, cursor chain to page {page}"] = chain
            figures[f"list, page {page}"] = chain[-1:]
            picked = [rng.choice(cursors) for _ in range(samples)]
            figures["list, random-depth cursor"] = [
                timed(client, f"{first}&cursor={c}")[0] for c in picked
            ]
            figures["/metrics, first scrape"] = [timed(client, "/metrics")[0]]
            figures["/metrics"] = [timed(client, "/metrics")[0] for _ in range(samples)]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--pages", type=int, default=5000, help="length of the cursor chain")
    parser.add_argument("--code", type=Path, help="another checkout's runtime/ directory")
    args = parser.parse_args()
    extra = {"PYTHONPATH": str(args.code.resolve())} if args.code else {}
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(dir=".cache") as tmp:
        for n in args.rows:
            built = time.perf_counter()
            build(n)
            print(f"# {n} rows: cache ready in {time.perf_counter() - built:.1f} s", flush=True)
            root = working_copy(n, Path(tmp))
            api = api_figures(n, root, extra, args.samples, args.pages)
            env = service_env(root, free_port(), **extra)
            cli = {
                "stowage stats": measured([str(BIN / "stowage"), "stats", "--json"], env),
                "stowage cleanup": measured(
                    [str(BIN / "stowage"), "cleanup", "--older-than", "24h"], env
                ),
            }
            results[n] = {"api": api, "cli": cli}
            print(f"# {n} rows done; cleanup said: {cli['stowage cleanup'].stdout.decode()}")
            report(results, only=n)
            shutil.rmtree(root)
    print("\n# all sizes")
    report(results)


def report(results: dict[int, dict], only: int | None = None) -> None:
    smallest = min(results)
    shown = {only: results[only]} if only else results
    print(
        "\n| request | rows | n | p50 ms | p99 ms | p99 vs smallest N |\n|---|---|---|---|---|---|"
    )
    for n, result in shown.items():
        for name, values in result["api"].items():
            base = results[smallest]["api"].get(name) or _same_kind(results[smallest], name)
            ratio = pct(values, 0.99) / pct(base, 0.99) if base else float("nan")
            if name.startswith("start-up"):
                print(f"| {name} | {n:,} | 1 | {values[0]:.1f} s | | {ratio:.2f}x |")
                continue
            print(
                f"| {name} | {n:,} | {len(values)} | {pct(values, 0.5):.1f} |"
                f" {pct(values, 0.99):.1f} | {ratio:.2f}x |"
            )
    print("\n| command | rows | wall s | peak RSS MiB | µs per row | per row vs smallest N |")
    print("|---|---|---|---|---|---|")
    for n, result in shown.items():
        for name, m in result["cli"].items():
            per_row = m.seconds / n * 1e6
            base = results[smallest]["cli"][name].seconds / smallest * 1e6
            print(
                f"| `{name}` | {n:,} | {m.seconds:.2f} | {m.peak_mib:.0f} | {per_row:.1f} |"
                f" {per_row / base:.2f}x |"
            )


def _same_kind(result: dict, name: str) -> list[float] | None:
    """The chain figures carry their page count in the name; match them by kind."""
    kind = name.rsplit(" ", 1)[0]
    return next((v for k, v in result["api"].items() if k.rsplit(" ", 1)[0] == kind), None)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()

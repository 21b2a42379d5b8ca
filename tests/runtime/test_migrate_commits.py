"""The cheaper record of a migration keeps its guarantees: workers' manifest rows share
commits but each save returns only once its own row is committed; a local destination's
directories are fsynced by the workers that wrote into them (one fsync shared by those who
need it at once), before a row says verified, never inside a commit; one path
check per object on a local source; and a run killed in the middle of such a batch (injected
in-process, and a real SIGKILL) resumes without recopying what it had verified."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from stowage.backends import LocalBackend, local_migration
from stowage.backends import local as local_module
from stowage.migrate.engine import Migration
from stowage.migrate.manifest import COPY, VERIFIED, Entry, Manifest
from stowage.migrate.plan import Options, plan
from tests.runtime.conftest import BIN
from tests.runtime.test_migrate import fill_local, migration_env, stowage

STATE = list(Entry.__dataclass_fields__).index("state")


class Killed(BaseException):
    """The injected death of the migrating process."""


class Recorded:
    """A manifest connection that logs every transaction's rows as it commits."""

    def __init__(self, db: sqlite3.Connection, on_commit) -> None:
        self._db, self._on_commit, self._rows = db, on_commit, []

    def executemany(self, sql, rows):
        rows = list(rows)
        self._rows += rows
        return self._db.executemany(sql, rows)

    def execute(self, sql, *args):
        if sql == "COMMIT":
            self._on_commit(self._rows)
            self._rows = []
        elif sql == "ROLLBACK":
            self._rows = []
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def tree(root: Path, objects: int) -> dict[str, bytes]:
    files = {
        f"images/{n:04d}.bin": hashlib.sha256(str(n).encode()).digest() for n in range(objects)
    }
    fill_local(root, files)
    return files


def migration(tmp_path: Path, workers: int = 8) -> Migration:
    options = Options(workers=workers, quiet=True)
    manifest = Manifest(tmp_path / "runs" / "run.sqlite")
    manifest.create_run("src", "dst", options.to_json())
    running = Migration(
        manifest, LocalBackend(tmp_path / "src"), LocalBackend(tmp_path / "dst"), options
    )
    plan(manifest, running.source, running.destination, options)
    return running


def test_concurrent_saves_share_commits_and_each_returns_committed(tmp_path):
    manifest = Manifest(tmp_path / "run.sqlite")
    manifest.create_run("src", "dst", {})
    commits = []
    manifest._db.set_trace_callback(lambda sql: sql == "COMMIT" and commits.append(sql))
    # A slow commit, as on a busy disk: saves queue up behind it.
    write = manifest._write

    def slow_write(rows) -> None:
        time.sleep(0.005)
        write(rows)

    manifest._write = slow_write
    wrong = []

    def worker(n: int) -> None:
        reader = sqlite3.connect(manifest.path)
        for step in range(10):
            entry = Entry(key=f"k{n:02d}", action=COPY, size=step)
            manifest.save(entry)
            seen = reader.execute("SELECT size FROM objects WHERE key = ?", (entry.key,))
            if seen.fetchone() != (step,):  # another connection sees it: committed
                wrong.append((n, step))
        reader.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(commits) <= 160 // 3, f"{len(commits)} commits for 160 saves"


def test_a_failed_commit_fails_every_save_of_its_batch_and_the_next_one_commits(tmp_path):
    manifest = Manifest(tmp_path / "run.sqlite")
    manifest.create_run("src", "dst", {})
    failing = [True]

    write = manifest._write

    def failing_write(rows) -> None:
        if failing.pop(0) if failing else False:
            raise OSError("fsync failed")
        write(rows)

    manifest._write = failing_write
    with pytest.raises(OSError, match="fsync failed"):
        manifest.save(Entry(key="a", action=COPY, size=1))
    assert manifest.entries() == []
    manifest.save(Entry(key="b", action=COPY, size=1))
    assert [e.key for e in manifest.entries()] == ["b"]


@pytest.fixture
def synced(monkeypatch):
    """Every rename and directory fsync, in order; each fsync slowed a little, as on a
    real disk (for old and new code alike, both modules' names are patched)."""
    events: list[tuple] = []
    lock = threading.Lock()
    real_replace, real_fsync = os.replace, local_migration.fsync_dir

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        with lock:
            events.append(("rename", Path(dst)))

    def fsync_dir(path):
        with lock:
            start = len(events)
        time.sleep(0.002)
        real_fsync(path)
        with lock:
            events.append(("fsync", Path(path), start))

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(local_migration, "fsync_dir", fsync_dir)
    monkeypatch.setattr(local_module, "fsync_dir", fsync_dir)
    return events, lock


def unsynced_verified(rows, root: Path, events, lock) -> list[str]:
    """Keys a transaction says are verified whose directory was not fsynced after (starting
    after) the file was renamed into it."""
    with lock:
        log = list(events)
    bad = []
    for row in rows:
        if row[STATE] != VERIFIED:
            continue
        target = root / row[0]
        renamed = max((i for i, e in enumerate(log) if e[:2] == ("rename", target)), default=-1)
        if not any(e[0] == "fsync" and e[1] == target.parent and e[2] > renamed for e in log):
            bad.append(row[0])
    return bad


def test_directories_are_fsynced_once_per_batch_before_rows_say_verified(tmp_path, synced):
    events, _ = synced
    tree(tmp_path / "src", 120)
    running = migration(tmp_path)
    bad: list[str] = []
    on_commit = lambda rows: bad.extend(unsynced_verified(rows, tmp_path / "dst", *synced))  # noqa: E731
    running.manifest._db = Recorded(running.manifest._db, on_commit)
    running.run()
    assert bad == []
    assert len(running.manifest.entries(VERIFIED)) == 120
    fsyncs = [e for e in events if e[0] == "fsync" and e[1] == tmp_path / "dst" / "images"]
    assert len(fsyncs) <= 120 // 2, f"{len(fsyncs)} fsyncs of one directory for 120 objects"


def test_one_path_check_per_object_on_a_local_source(tmp_path, monkeypatch):
    tree(tmp_path / "src", 50)
    running = migration(tmp_path, workers=2)
    resolved = []
    real = Path.resolve
    monkeypatch.setattr(
        Path, "resolve", lambda self, *a, **k: resolved.append(self) or real(self, *a, **k)
    )
    running.run()
    source = [p for p in resolved if p.is_relative_to(tmp_path / "src")]
    destination = [p for p in resolved if p.is_relative_to(tmp_path / "dst")]
    assert len(source) <= 50, f"{len(source)} source path checks for 50 objects"
    # The write's check, and the read-back's (what the key names now) of the verification.
    assert len(destination) <= 2 * 50, f"{len(destination)} destination path checks"


def test_a_run_killed_during_a_batch_resumes_without_recopying(tmp_path, synced):
    files = tree(tmp_path / "src", 120)
    running = migration(tmp_path)
    calls = [0]
    real_fsync = local_migration.fsync_dir

    def dying_fsync(path):
        calls[0] += 1
        if calls[0] == 8:  # in the middle of a batch's directory syncs
            running.stop.set()
            raise Killed
        real_fsync(path)

    bad: list[str] = []
    on_commit = lambda rows: bad.extend(unsynced_verified(rows, tmp_path / "dst", *synced))  # noqa: E731
    running.manifest._db = Recorded(running.manifest._db, on_commit)
    local_migration.fsync_dir = local_module.fsync_dir = dying_fsync
    with pytest.raises(Killed):
        running.run()
    local_migration.fsync_dir = local_module.fsync_dir = real_fsync
    running.manifest._db = running.manifest._db._db
    running.manifest.close()
    assert bad == []

    manifest = Manifest(tmp_path / "runs" / "run.sqlite")
    verified = {e.key: (tmp_path / "dst" / e.key).stat().st_ino for e in manifest.entries(VERIFIED)}
    assert 0 < len(verified) < 120
    resumed = Migration(manifest, running.source, running.destination, running.options)
    resumed.run()
    assert manifest.run().status == "completed"
    assert len(manifest.entries(VERIFIED)) == 120
    for key, inode in verified.items():
        assert (tmp_path / "dst" / key).stat().st_ino == inode, f"{key} was copied again"
    for key, data in files.items():
        assert (tmp_path / "dst" / key).read_bytes() == data
    manifest.close()


def test_kill_9_of_a_local_run_resumes_without_recopying_verified_files(tmp_path):
    files = tree(tmp_path / "src", 400)
    process = subprocess.Popen(
        [
            *(str(BIN / "stowage"), "migrate", "--quiet", "--workers", "8", "--bwlimit", "1K"),
            *(str(tmp_path / "src"), str(tmp_path / "dst")),
        ],
        env=migration_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    manifest = tmp_path / "runs"
    deadline = time.monotonic() + 60
    done = 0
    while done < 20:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
        found = list(manifest.glob("*.sqlite")) if manifest.exists() else []
        if found:
            with sqlite3.connect(found[0]) as db, contextlib.suppress(sqlite3.OperationalError):
                # (no table yet while the run creates the file)
                done = db.execute("SELECT COUNT(*) FROM objects WHERE state = ?", (VERIFIED,))
                done = done.fetchone()[0]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (found,) = manifest.glob("*.sqlite")
    with sqlite3.connect(found) as db:
        verified = [
            r[0] for r in db.execute("SELECT key FROM objects WHERE state = ?", (VERIFIED,))
        ]
    assert 20 <= len(verified) < 400
    inodes = {key: (tmp_path / "dst" / key).stat().st_ino for key in verified}
    for key in verified:
        assert (tmp_path / "dst" / key).read_bytes() == files[key]

    resumed = stowage(
        tmp_path, "migrate", str(tmp_path / "src"), str(tmp_path / "dst"), "--resume", found.stem
    )
    assert "completed, 0 failed" in resumed.stderr
    for key, inode in inodes.items():
        assert (tmp_path / "dst" / key).stat().st_ino == inode, f"{key} was copied again"
    assert stowage(tmp_path, "verify", str(tmp_path / "src"), str(tmp_path / "dst")).returncode == 0


def test_a_copy_adopted_on_resume_is_verified_only_after_its_directory_fsync(tmp_path, synced):
    """A killed process renamed files into place and died before their directories' fsync:
    the resume adopts those copies (same bytes), and must make their directories durable
    before it records them verified. One file per directory, so no other write's fsync
    covers them."""
    files = {f"d{n:03d}/{n}.bin": hashlib.sha256(str(n).encode()).digest() for n in range(40)}
    fill_local(tmp_path / "src", files)
    running = migration(tmp_path)
    real_fsync = local_migration.fsync_dir

    def dead_fsync(path):
        running.stop.set()
        raise Killed  # the first directory fsync, and every later one: the process is gone

    local_migration.fsync_dir = local_module.fsync_dir = dead_fsync
    with pytest.raises(Killed):
        running.run()
    local_migration.fsync_dir = local_module.fsync_dir = real_fsync
    running.manifest.close()
    renamed = [key for key in files if (tmp_path / "dst" / key).exists()]
    assert renamed, "the kill came before any rename"

    manifest = Manifest(tmp_path / "runs" / "run.sqlite")
    bad: list[str] = []
    on_commit = lambda rows: bad.extend(unsynced_verified(rows, tmp_path / "dst", *synced))  # noqa: E731
    manifest._db = Recorded(manifest._db, on_commit)
    Migration(manifest, running.source, running.destination, running.options).run()
    assert bad == []
    assert len(manifest.entries(VERIFIED)) == 40


def test_a_slow_directory_fsync_holds_only_the_writers_of_that_directory(tmp_path, monkeypatch):
    """One directory's fsync hangs (a slow disk, or a slow commit of its journal): the
    workers copying into other directories must go on verifying and recording, and the row
    of the file waiting for it must not say verified. (Before, every commit of rows first
    synced every directory written, so every save of every worker waited behind it.)"""
    files = {f"other/{n:03d}.bin": hashlib.sha256(str(n).encode()).digest() for n in range(40)}
    files["slow/one.bin"] = b"slow"
    fill_local(tmp_path / "src", files)
    running = migration(tmp_path, workers=4)
    slow, release = tmp_path / "dst" / "slow", threading.Event()
    real_fsync = local_migration.fsync_dir

    def fsync_dir(path):
        if Path(path) == slow:
            release.wait(timeout=30)
        real_fsync(path)

    monkeypatch.setattr(local_migration, "fsync_dir", fsync_dir)
    monkeypatch.setattr(local_module, "fsync_dir", fsync_dir)
    thread = threading.Thread(target=running.run)
    thread.start()
    try:
        reader = Manifest(tmp_path / "runs" / "run.sqlite")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            verified = {e.key for e in reader.entries(VERIFIED)}
            if len(verified) == 40:
                break
            time.sleep(0.05)
        assert len(verified - {"slow/one.bin"}) == 40, f"{len(verified)} of 40 verified"
        assert "slow/one.bin" not in verified
        reader.close()
    finally:
        release.set()
        thread.join()
    assert len(running.manifest.entries(VERIFIED)) == 41

"""Workers' manifest rows share commits, and each save still returns only once its own row
is committed."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from stowage.migrate.manifest import COPY, Entry, Manifest


def test_concurrent_saves_share_commits_and_each_returns_committed(tmp_path):
    manifest = Manifest(tmp_path / "run.sqlite")
    manifest.create_run("src", "dst", {})
    commits = []
    manifest._db.set_trace_callback(lambda sql: sql == "COMMIT" and commits.append(sql))
    # A slow step before each commit, as a directory fsync is: saves queue up behind it.
    manifest.before_commit = lambda: time.sleep(0.005)
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

    def before_commit() -> None:
        if failing.pop(0) if failing else False:
            raise OSError("fsync failed")

    manifest.before_commit = before_commit
    with pytest.raises(OSError, match="fsync failed"):
        manifest.save(Entry(key="a", action=COPY, size=1))
    assert manifest.entries() == []
    manifest.save(Entry(key="b", action=COPY, size=1))
    assert [e.key for e in manifest.entries()] == ["b"]

"""Issue 12 item 2: a migration's memory does not grow with the number of objects, and a
tree larger than any page the plan, the run and verify hold in memory still copies, verifies
and resumes completely. Real processes on real directories; peak RSS from bench/measure.py
(GNU time, a clean process)."""

from __future__ import annotations

import hashlib
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from bench.measure import measured
from stowage.backends import LocalBackend
from stowage.migrate.manifest import PAGE
from tests.runtime.conftest import BIN
from tests.runtime.test_migrate import migration_env, stowage

# More names than one page of the manifest or of verify's listings, and one batch of the plan.
PAST_A_PAGE = PAGE + 700


def small_tree(root: Path, objects: int) -> None:
    for n in range(objects):
        directory = root / f"d{n // 500:03d}"
        if n % 500 == 0:
            directory.mkdir(parents=True)
        (directory / f"{n:07d}.bin").write_bytes(n.to_bytes(4, "big"))


def states(tmp_path: Path) -> dict[str, int]:
    (manifest,) = (tmp_path / "runs").glob("*.sqlite")
    with sqlite3.connect(manifest) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM objects GROUP BY state").fetchall())


def test_a_tree_larger_than_a_page_is_copied_and_verified_completely(tmp_path):
    small_tree(tmp_path / "src", PAST_A_PAGE)
    (tmp_path / "src" / "d000" / "0000003.bin").write_bytes(b"not what it was")
    stowage(tmp_path, "migrate", "--quiet", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert states(tmp_path) == {"verified": PAST_A_PAGE}
    assert sum(1 for p in (tmp_path / "dst").rglob("*.bin")) == PAST_A_PAGE
    assert (tmp_path / "dst" / "d000" / "0000003.bin").read_bytes() == b"not what it was"
    verified = stowage(tmp_path, "verify", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert f"{PAST_A_PAGE} objects compared, 0 differences" in verified.stderr

    # Differences past the first page of either listing are all found.
    (tmp_path / "dst" / "d004" / "0002100.bin").unlink()
    (tmp_path / "dst" / "d005" / "0002650.bin").write_bytes(b"0000")
    (tmp_path / "dst" / "d005" / "zz-extra.bin").write_bytes(b"extra")
    differing = stowage(
        tmp_path, "verify", str(tmp_path / "src"), str(tmp_path / "dst"), check=False
    )
    assert differing.returncode == 1
    assert differing.stdout.splitlines() == [
        "missing  d004/0002100.bin",
        "sha256   d005/0002650.bin"
        f" ({hashlib.sha256((2650).to_bytes(4, 'big')).hexdigest()}"
        f" != {hashlib.sha256(b'0000').hexdigest()})",
        "extra    d005/zz-extra.bin",
    ]


def test_a_run_killed_past_the_first_page_resumes_to_every_object(tmp_path):
    small_tree(tmp_path / "src", PAST_A_PAGE)
    process = subprocess.Popen(
        [
            *(str(BIN / "stowage"), "migrate", "--quiet", "--workers", "2"),
            *(str(tmp_path / "src"), str(tmp_path / "dst")),
        ],
        env=migration_env(tmp_path),
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            done = states(tmp_path).get("verified", 0)
        except (ValueError, sqlite3.OperationalError):
            continue
        if done > PAGE // 2:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = states(tmp_path)
    assert 0 < partial.get("verified", 0) < PAST_A_PAGE, partial
    (run,) = (tmp_path / "runs").glob("*.sqlite")
    resumed = stowage(
        tmp_path,
        "migrate",
        "--quiet",
        str(tmp_path / "src"),
        str(tmp_path / "dst"),
        "--resume",
        run.stem,
    )
    assert resumed.returncode == 0
    assert states(tmp_path) == {"verified": PAST_A_PAGE}
    verified = stowage(tmp_path, "verify", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert f"{PAST_A_PAGE} objects compared, 0 differences" in verified.stderr


def test_peak_memory_does_not_grow_with_the_number_of_objects(tmp_path):
    """30,000 objects already at the destination (a rerun): the whole plan, the destination's
    listing, the run and the report pass through. The old code held an entry per object in
    each: 96 MiB for the migration and 112 MiB for verify (measured with the same command on
    the previous commit); the paged code stays near its 45 MiB start-up size."""
    small_tree(tmp_path / "src", 30_000)
    shutil.copytree(tmp_path / "src", tmp_path / "dst")
    env = migration_env(tmp_path)
    common = ["--quiet", str(tmp_path / "src"), str(tmp_path / "dst")]
    migrate = measured([str(BIN / "stowage"), "migrate", *common], env)
    assert states(tmp_path) == {"skipped": 30_000}
    verify = measured([str(BIN / "stowage"), "verify", *common], env)
    assert migrate.peak_mib < BOUND_MIB, migrate
    assert verify.peak_mib < BOUND_MIB, verify


BOUND_MIB = 75


def test_a_file_cannot_also_be_a_directory_however_the_keys_interleave(tmp_path):
    backend = LocalBackend(tmp_path)
    keys = ["a", "a-b", "a.c", "a/b", "a/b/c", "a0", "b", "b.d/e", "c", "c-", "c/d"]
    assert list(backend.cannot_hold(keys)) == [
        ("a", "a/ is also a directory of other keys"),
        ("a/b", "a/b/ is also a directory of other keys"),
        ("c", "c/ is also a directory of other keys"),
    ]

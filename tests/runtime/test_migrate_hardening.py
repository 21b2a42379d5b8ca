"""Review findings F5, F6, F16: destination prefixes are keys too, a resume re-checks what it
already verified against the source, and a rollback takes the run's half-written debris with
it. The real `stowage` CLI, real processes killed with SIGKILL, moto's S3 server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from tests.runtime.conftest import BIN
from tests.runtime.test_migrate import fill_local, migration_env, stowage


@pytest.fixture
def s3(aws_env, moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


def keys_in(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def only_run(tmp_path: Path) -> str:
    (manifest,) = (tmp_path / "runs").glob("*.sqlite")
    return manifest.stem


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _verified(tmp_path: Path) -> list[str]:
    manifests = list((tmp_path / "runs").glob("*.sqlite"))
    if not manifests:
        return []
    try:
        with sqlite3.connect(f"file:{manifests[0]}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT key FROM objects WHERE state = 'verified'").fetchall()
    except sqlite3.OperationalError:
        return []
    return [r[0] for r in rows]


def _start(tmp_path: Path, source: str, destination: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "stowage"), "migrate", source, destination, "--quiet", *extra],
        env=migration_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# --- F5: the destination's prefix goes through the key rules ----------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_destination_prefix_with_dot_dot_is_refused(tmp_path, s3, bucket, dry_run):
    fill_local(tmp_path / "src", {"videos/v.mp4": b"video bytes"})
    extra = ["--dry-run"] if dry_run else []
    result = stowage(
        tmp_path, "migrate", "src", f"s3://{bucket}/../evil", *extra, "--quiet", check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "'..'" in result.stderr
    assert keys_in(s3, bucket) == []


def test_prefix_plus_key_over_1024_bytes_is_reported_and_not_written(tmp_path, s3, bucket):
    long_key = "videos/" + "/".join(["a" * 200] * 5)  # 1011 bytes: a valid key on its own
    fill_local(tmp_path / "src", {long_key: b"long", "videos/short.mp4": b"short"})
    prefix = "x" * 20
    report = tmp_path / "report.json"
    result = stowage(
        tmp_path,
        "migrate",
        "src",
        f"s3://{bucket}/{prefix}",
        "--report",
        str(report),
        "--quiet",
        check=False,
    )
    assert result.returncode == 1, result.stderr
    (conflict,) = json.loads(report.read_text())["conflicts"]
    assert conflict["key"] == long_key
    assert "1032 bytes; the limit is 1024" in conflict["reason"]
    assert keys_in(s3, bucket) == [f"{prefix}/videos/short.mp4"]


@pytest.mark.parametrize("inner_is_destination", [True, False])
def test_nested_local_directories_are_refused(tmp_path, inner_is_destination):
    fill_local(tmp_path / "src", {"images/a.png": b"a", "sub/images/b.png": b"b"})
    before = sorted(str(p) for p in (tmp_path / "src").rglob("*"))
    pair = ("src", "src/sub") if inner_is_destination else ("src/sub", "src")
    result = stowage(tmp_path, "migrate", *pair, "--quiet", check=False)
    assert result.returncode == 2
    assert "one directory is inside the other" in result.stderr
    assert sorted(str(p) for p in (tmp_path / "src").rglob("*")) == before
    assert not (tmp_path / "runs").exists()


# --- F6: a source changed between the kill and the resume -------------------------------------


@pytest.mark.parametrize("same_size", [False, True])
def test_resume_recopies_a_verified_object_whose_source_changed(tmp_path, s3, bucket, same_size):
    names = [f"images/2026/img{n:03d}.png" for n in range(12)]
    fill_local(tmp_path / "src", {name: os.urandom(64 * 1024) for name in names})
    process = _start(tmp_path, "src", f"s3://{bucket}/m", "--bwlimit", "128K", "--workers", "1")
    _wait_for(lambda: len(_verified(tmp_path)) >= 2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    changed = _verified(tmp_path)[0]
    new_bytes = os.urandom(64 * 1024 if same_size else 64 * 1024 + 7)
    (tmp_path / "src" / changed).write_bytes(new_bytes)

    report = tmp_path / "resume.json"
    run_id = only_run(tmp_path)
    result = stowage(
        tmp_path,
        "migrate",
        "src",
        f"s3://{bucket}/m",
        "--resume",
        run_id,
        "--report",
        str(report),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"changed at the source since it was copied: {changed}" in result.stderr
    assert json.loads(report.read_text())["status"] == "completed"
    body = s3.get_object(Bucket=bucket, Key=f"m/{changed}")["Body"].read()
    assert body == new_bytes
    assert stowage(tmp_path, "verify", "src", f"s3://{bucket}/m").returncode == 0
    # The stale copy's version is gone too: a rollback then leaves nothing of the run.
    assert stowage(tmp_path, "rollback", run_id, "--quiet").returncode == 0
    assert keys_in(s3, bucket) == []


# --- F16: rollback of a killed run removes its own spool files, and only those ----------------


def test_rollback_of_a_killed_run_removes_its_part_files_only(tmp_path):
    fill_local(tmp_path / "src", {"videos/big.bin": os.urandom(6 * 1024 * 1024)})
    spool = tmp_path / "dst" / ".stowage-tmp"
    spool.mkdir(parents=True)
    # A live writer's spool file (this test process stands in for the service).
    foreign = spool / f"{os.getpid()}-upload.part"
    foreign.write_bytes(b"someone else's upload")
    process = _start(tmp_path, "src", "dst", "--bwlimit", "2M")
    _wait_for(
        lambda: any(p != foreign and p.stat().st_size > 1024 * 1024 for p in spool.glob("*.part"))
    )
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (ours,) = [p for p in spool.glob("*.part") if p != foreign]

    result = stowage(tmp_path, "rollback", only_run(tmp_path))
    assert f"removed the run's debris: {ours}" in result.stderr
    assert not ours.exists()
    assert foreign.read_bytes() == b"someone else's upload"
    assert (tmp_path / "src" / "videos/big.bin").stat().st_size == 6 * 1024 * 1024

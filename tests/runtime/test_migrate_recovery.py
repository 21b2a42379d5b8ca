"""Issue 11 items 3-5 and 7: rollback touches exactly what the run wrote, a dry run writes
nothing, a killed run's debris goes on resume and its status says interrupted, and operator
errors are one line with the documented exit status. Real processes, moto's S3 server."""

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

from tests.runtime.conftest import BIN, create_catalog_table, image_bytes
from tests.runtime.test_migrate import fill_local, fill_s3, migration_env, stowage, versions


@pytest.fixture
def s3(aws_env, moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


def only_run(tmp_path: Path) -> str:
    (manifest,) = (tmp_path / "runs").glob("*.sqlite")
    return manifest.stem


# --- item 3: rollback ------------------------------------------------------------------------


def test_rollback_removes_the_writes_of_entries_that_failed_afterwards(
    tmp_path, s3, bucket, moto_url
):
    """The catalog update fails after each copy was written (no such table): the objects are
    failed entries, and rollback still removes exactly the versions the run wrote."""
    fill_local(tmp_path / "src", {"images/a.png": image_bytes(), "images/b.png": b"bbb"})
    before = versions(s3, bucket)
    run = stowage(
        tmp_path,
        "migrate",
        str(tmp_path / "src"),
        f"s3://{bucket}",
        "--catalog",
        "dynamodb://no-such-table",
        check=False,
    )
    assert run.returncode == 1
    assert "failed    images/a.png: " in run.stderr  # the key, not a bare "object failed"
    assert len(versions(s3, bucket)) == 2  # written, then failed
    rolled = stowage(tmp_path, "rollback", only_run(tmp_path))
    assert "2 copies deleted" in rolled.stdout
    assert versions(s3, bucket) == before


def test_local_rollback_leaves_later_writes_alone_and_reports_them(tmp_path, s3, bucket):
    fill_s3(s3, bucket, "", {"images/a.png": b"from s3", "images/b.png": b"also from s3"})
    destination = tmp_path / "dst"
    fill_local(destination, {"images/a.png": b"local original"})
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(destination), "--overwrite")
    (destination / "images/b.png").write_bytes(b"the application's later write")
    (destination / "images/a.png").write_bytes(b"changed again")

    result = stowage(tmp_path, "rollback", only_run(tmp_path), check=False)
    assert result.returncode == 1
    assert "2 changed since the run (left alone)" in result.stdout
    assert "changed since the run, left alone: images/b.png" in result.stderr
    assert (destination / "images/b.png").read_bytes() == b"the application's later write"
    assert (destination / "images/a.png").read_bytes() == b"changed again"
    kept = next(Path(p) for p in _kept(result.stderr))
    assert kept.read_bytes() == b"local original"  # what it replaced is kept, not lost


def _kept(stderr: str) -> list[str]:
    prefix = "kept the replaced file: "
    return [line.removeprefix(prefix) for line in stderr.splitlines() if line.startswith(prefix)]


def test_s3_rollback_removes_only_its_own_version_under_a_later_write(tmp_path, s3, bucket):
    fill_local(tmp_path / "src", {"images/n.png": b"migrated"})
    stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}")
    s3.put_object(Bucket=bucket, Key="images/n.png", Body=b"the app wrote this later")
    result = stowage(tmp_path, "rollback", only_run(tmp_path), check=False)
    assert result.returncode == 1
    assert "changed since the run, left alone: images/n.png" in result.stderr
    assert s3.get_object(Bucket=bucket, Key="images/n.png")["Body"].read() == (
        b"the app wrote this later"
    )
    assert len(versions(s3, bucket)) == 1  # the run's own version is gone, the app's stays


# --- item 4: dry run -------------------------------------------------------------------------


def test_dry_run_writes_only_the_report_and_lists_deletions(tmp_path, s3, bucket):
    fill_s3(s3, bucket, "", {"images/x.png": b"x", "images/y.png": b"y"})
    destination = tmp_path / "not-yet"
    report = tmp_path / "plan.json"
    before = versions(s3, bucket)
    result = stowage(
        tmp_path,
        "migrate",
        f"s3://{bucket}",
        str(destination),
        "--dry-run",
        "--delete-source",
        "--report",
        str(report),
    )
    assert not destination.exists()
    assert not (tmp_path / "runs").exists()
    assert versions(s3, bucket) == before
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["copy", "copy"] + ["delete-source"] * 2
    assert "total delete-source: 2 objects, 2 bytes" in lines
    actions = json.loads(report.read_text())["actions"]
    assert {(a["action"], a["key"]) for a in actions} == {
        ("copy", "images/x.png"),
        ("copy", "images/y.png"),
        ("delete-source", "images/x.png"),
        ("delete-source", "images/y.png"),
    }


# --- item 5: a killed run ------------------------------------------------------------------


def _start(tmp_path: Path, source: str, destination: str, bwlimit: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "stowage"), "migrate", source, destination, "--bwlimit", bwlimit],
        env=migration_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_kill_9_during_a_download_leaves_part_files_that_resume_removes(tmp_path, s3, bucket):
    fill_s3(s3, bucket, "", {"videos/big.bin": os.urandom(6 * 1024 * 1024)})
    destination = tmp_path / "dst"
    process = _start(tmp_path, f"s3://{bucket}", str(destination), "2M")
    spool = destination / ".stowage-tmp"
    _wait_for(lambda: any(p.stat().st_size > 1024 * 1024 for p in spool.glob("*.part")))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (part,) = spool.glob("*.part")
    assert part.name.startswith(f"{process.pid}-")
    run_id = only_run(tmp_path)
    status = json.loads(stowage(tmp_path, "status", run_id, "--json").stdout)
    assert status["status"] == "interrupted"  # not "running" forever

    report = tmp_path / "resume.json"
    stowage(
        tmp_path,
        "migrate",
        f"s3://{bucket}",
        str(destination),
        "--resume",
        run_id,
        "--report",
        str(report),
    )
    assert not part.exists()
    assert json.loads(report.read_text())["debris_removed"] == [str(part)]
    assert stowage(tmp_path, "verify", f"s3://{bucket}", str(destination)).returncode == 0


def test_kill_9_during_a_multipart_upload_is_aborted_on_resume(tmp_path, s3, bucket):
    fill_local(tmp_path / "src", {"videos/big.bin": os.urandom(40 * 1024 * 1024)})
    s3.create_multipart_upload(Bucket=bucket, Key="videos/someone-else.bin")  # not the run's
    process = _start(tmp_path, str(tmp_path / "src"), f"s3://{bucket}", "8M")

    def run_uploads():
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [u for u in uploads if u["Key"] == "videos/big.bin"]

    _wait_for(lambda: run_uploads() and _parts(s3, bucket, run_uploads()[0]) >= 1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(run_uploads()) == 1
    run_id = only_run(tmp_path)
    stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--resume", run_id)
    assert run_uploads() == []
    others = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in others] == ["videos/someone-else.bin"]
    assert stowage(tmp_path, "verify", str(tmp_path / "src"), f"s3://{bucket}").returncode == 0


def _parts(s3, bucket: str, upload: dict) -> int:
    listed = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return len(listed.get("Parts", []))


def test_a_second_process_cannot_resume_a_live_run(tmp_path, s3, bucket):
    fill_local(tmp_path / "src", {f"images/{n}.bin": os.urandom(200_000) for n in range(10)})
    process = _start(tmp_path, str(tmp_path / "src"), f"s3://{bucket}", "500K")
    _wait_for(lambda: (tmp_path / "runs").exists() and list((tmp_path / "runs").glob("*.lock")))
    run_id = only_run(tmp_path)
    try:
        status = json.loads(stowage(tmp_path, "status", run_id, "--json").stdout)
        assert status["status"] == "running"
        second = stowage(
            tmp_path,
            "migrate",
            str(tmp_path / "src"),
            f"s3://{bucket}",
            "--resume",
            run_id,
            check=False,
        )
        assert second.returncode == 2
        assert "is still running in another process" in second.stderr
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- item 7: operator errors ---------------------------------------------------------------


def test_missing_bucket_is_one_line_and_exit_3(tmp_path, aws_env):
    fill_local(tmp_path / "src", {"images/a.png": b"a"})
    for args in (
        ("migrate", str(tmp_path / "src"), "s3://no-such-bucket-here/x"),
        ("migrate", "s3://no-such-bucket-here", str(tmp_path / "dst")),
        ("verify", str(tmp_path / "src"), "s3://no-such-bucket-here"),
    ):
        result = stowage(tmp_path, *args, check=False)
        assert result.returncode == 3, result.stderr
        assert result.stderr == "stowage: bucket no-such-bucket-here does not exist\n"
    missing_dir = stowage(
        tmp_path, "migrate", str(tmp_path / "nope"), str(tmp_path / "d"), check=False
    )
    assert (missing_dir.returncode, missing_dir.stderr.count("\n")) == (3, 1)
    assert "no such directory" in missing_dir.stderr


def test_no_credentials_is_one_line_and_exit_4(tmp_path, bucket):
    env = {
        k: v
        for k, v in migration_env(tmp_path).items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    fill_local(tmp_path / "src", {"images/a.png": b"a"})
    result = subprocess.run(
        [str(BIN / "stowage"), "migrate", str(tmp_path / "src"), f"s3://{bucket}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 4
    assert result.stderr.startswith("stowage: no AWS credentials found")
    assert result.stderr.count("\n") == 1


def test_sign_url_missing_key_bucket_or_credentials_is_one_line(tmp_path, bucket, moto_url):
    base = {
        **os.environ,
        "STOWAGE_LOCAL_ROOT": str(tmp_path / "media"),
        "STOWAGE_SIGNING_SECRET": "s" * 40,
    }
    s3_mode = {**base, "STOWAGE_STORAGE_MODE": "s3", "STOWAGE_S3_BUCKET": bucket}
    cases = [
        (base, 3, "stowage: no such object or file: images/none.png\n"),
        (s3_mode, 3, "stowage: no such object or file: images/none.png\n"),
        (
            {**s3_mode, "STOWAGE_S3_BUCKET": "no-such-bucket-x"},
            3,
            "stowage: bucket no-such-bucket-x does not exist\n",
        ),
    ]
    no_keys = {k: v for k, v in s3_mode.items() if not k.startswith("AWS_") or "ENDPOINT" in k}
    no_keys |= {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    cases.append((no_keys, 4, None))
    for env, status, message in cases:
        result = subprocess.run(
            [str(BIN / "stowage"), "sign-url", "images/none.png"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == status, result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
        if message:
            assert result.stderr == message


def test_the_same_run_with_a_real_catalog_table_passes(tmp_path, s3, bucket, moto_url):
    create_catalog_table("stowage-catalog-ok", moto_url)
    fill_local(tmp_path / "src", {"images/z.png": b"z"})
    ok = stowage(
        tmp_path,
        "migrate",
        str(tmp_path / "src"),
        f"s3://{bucket}",
        "--catalog",
        "dynamodb://stowage-catalog-ok",
    )
    assert ok.returncode == 0
    with sqlite3.connect(next((tmp_path / "runs").glob("*.sqlite"))) as db:
        assert db.execute("SELECT state FROM objects").fetchall() == [("verified",)]

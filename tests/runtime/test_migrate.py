"""Migration S3 <-> local disk against moto's server, judged by `stowage verify` and by
Debian's `rclone check` as an independent referee."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from stowage.catalog import Record, open_catalog
from stowage.keys import new_upload_id
from tests.helpers import ensure_debian_packages
from tests.runtime.conftest import BIN, image_bytes, stowage_cli

TRICKY_KEYS = [
    "images/café ☕/photo one.jpg",
    "images/plus+sign and %25 percent & amp.png",
    "images/" + "/".join(f"deep{n}" for n in range(30)) + "/leaf.bin",
    "videos/" + "x" * 200 + ".mp4",
    "transcripts/empty.txt",
    "processed/日本語/ファイル.json",
]


def content_for(key: str) -> bytes:
    if key.endswith("empty.txt"):
        return b""
    return hashlib.sha256(key.encode()).digest() * 100


@pytest.fixture
def s3(aws_env, moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


def migration_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "STOWAGE_MIGRATION_DIR": str(tmp_path / "runs")}


def stowage(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return stowage_cli(migration_env(tmp_path), *args, check=check, cwd=tmp_path)


def start_migration(tmp_path: Path, bucket: str, bwlimit: str, **popen) -> subprocess.Popen:
    """A slow local -> S3 migration in the background, to interrupt."""
    return subprocess.Popen(
        [
            *(str(BIN / "stowage"), "migrate", str(tmp_path / "src"), f"s3://{bucket}"),
            *("--workers", "2", "--bwlimit", bwlimit),
        ],
        env=migration_env(tmp_path),
        cwd=tmp_path,
        **popen,
    )


def fill_local(root: Path, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def fill_s3(s3, bucket: str, prefix: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        s3.put_object(
            Bucket=bucket,
            Key=prefix + key,
            Body=data,
            ContentType="image/png",
            CacheControl="max-age=600",
            Metadata={"owner": "app"},
        )


def versions(s3, bucket: str) -> list[tuple]:
    response = s3.list_object_versions(Bucket=bucket)
    return sorted(
        [(v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]) for v in response.get("Versions", [])]
        + [
            (m["Key"], m["VersionId"], "marker", m["IsLatest"])
            for m in response.get("DeleteMarkers", [])
        ]
    )


@pytest.fixture(scope="session")
def rclone(moto_url, tmp_path_factory) -> list[str]:
    binary = ensure_debian_packages("rclone", binary="rclone")
    config = tmp_path_factory.mktemp("rclone") / "rclone.conf"
    config.write_text(
        "[moto]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
        f"secret_access_key = testing\nendpoint = {moto_url}\nregion = eu-west-1\n"
    )
    return ["env", "-u", "AWS_CA_BUNDLE", binary, "--config", str(config)]


def rclone_check(rclone, source: str, destination: str) -> None:
    """rclone's verdict, reading every byte (--download), that both sides hold the same."""
    result = subprocess.run(
        [*rclone, "check", "--download", "--one-way=false", source, destination],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "0 differences found" in result.stderr


@pytest.mark.needs_root  # rclone from apt
@pytest.mark.parametrize("direction", ["local-to-s3", "s3-to-local"])
def test_tricky_keys_both_directions(tmp_path, s3, bucket, rclone, direction):
    objects = {key: content_for(key) for key in TRICKY_KEYS}
    objects["videos/big/multipart.bin"] = os.urandom(64 * 1024 * 1024)
    local = tmp_path / "local"
    if direction == "local-to-s3":
        fill_local(local, objects)
        source, destination = str(local), f"s3://{bucket}/media"
    else:
        fill_s3(s3, bucket, "media/", objects)
        source, destination = f"s3://{bucket}/media", str(local)

    result = stowage(tmp_path, "migrate", source, destination, "--workers", "4")
    assert "completed, 0 failed, 0 conflicts" in result.stderr
    assert stowage(tmp_path, "verify", source, destination).returncode == 0
    if direction == "local-to-s3":
        for key, data in objects.items():
            stored = s3.get_object(Bucket=bucket, Key="media/" + key)
            assert stored["Body"].read() == data
            assert stored["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
        rclone_check(rclone, str(local), f"moto:{bucket}/media")
    else:
        for key, data in objects.items():
            assert (local / key).read_bytes() == data
        head = os.getxattr(local / TRICKY_KEYS[0], "user.stowage.cache_control").decode()
        assert head == "max-age=600"  # attributes travel with the bytes
        rclone_check(rclone, f"moto:{bucket}/media", str(local))


def test_dry_run_lists_every_action_and_changes_nothing(tmp_path, s3, bucket):
    fill_local(
        tmp_path / "src",
        {"images/new.png": b"new", "images/same.png": b"same", "images/differs.png": b"mine"},
    )
    fill_s3(s3, bucket, "", {"images/same.png": b"same", "images/differs.png": b"theirs"})
    before = versions(s3, bucket)
    result = stowage(
        tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--dry-run", check=False
    )
    assert result.returncode == 1  # the plan already leaves the conflict behind
    lines = result.stdout.splitlines()
    assert any(line.startswith("copy") and line.endswith("images/new.png") for line in lines)
    assert any(line.startswith("skip-identical") and "images/same.png" in line for line in lines)
    assert any(line.startswith("conflict") and "images/differs.png" in line for line in lines)
    assert "total copy: 1 objects, 3 bytes" in lines
    assert versions(s3, bucket) == before
    assert not (tmp_path / "runs").exists()

    real = stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", check=False)
    assert real.returncode == 1  # the conflict is reported, not overwritten
    stored = s3.get_object(Bucket=bucket, Key="images/differs.png")["Body"].read()
    assert stored == b"theirs"


def test_kill_9_then_resume_copies_nothing_twice(tmp_path, s3, bucket):
    objects = {f"images/{n:03d}.bin": os.urandom(256 * 1024) for n in range(40)}
    fill_local(tmp_path / "src", objects)
    process = start_migration(
        tmp_path,
        bucket,
        "2M",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    manifest = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs").glob("*.sqlite")) if (tmp_path / "runs").exists() else []
        if found:
            manifest = found[0]
            with sqlite3.connect(manifest) as db:
                done = db.execute("SELECT COUNT(*) FROM objects WHERE state='verified'").fetchone()[
                    0
                ]
            if done >= 5:
                break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert manifest is not None
    with sqlite3.connect(manifest) as db:
        verified_before = {
            r[0] for r in db.execute("SELECT key FROM objects WHERE state='verified'")
        }
    assert 5 <= len(verified_before) < len(objects)
    versions_before = {k: v for k, v, _, _ in versions(s3, bucket) if k in verified_before}

    run_id = manifest.stem
    resumed = stowage(
        tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--resume", run_id
    )
    assert "completed, 0 failed" in resumed.stderr
    after = versions(s3, bucket)
    per_key: dict[str, int] = {}
    for key, _, _, _ in after:
        per_key[key] = per_key.get(key, 0) + 1
    assert per_key == dict.fromkeys(objects, 1), "an object was written twice"
    assert {k: v for k, v, _, _ in after if k in verified_before} == versions_before
    status = json.loads(stowage(tmp_path, "status", run_id, "--json").stdout)
    assert status["status"] == "completed"
    assert status["counts"] == {"copy/verified": {"objects": 40, "bytes": 40 * 256 * 1024}}


def test_corruption_is_reported_and_repaired(tmp_path, s3, bucket):
    objects = {f"videos/{n}.bin": os.urandom(50_000) for n in range(5)}
    fill_s3(s3, bucket, "", objects)
    destination = tmp_path / "dst"
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(destination))
    victim = destination / "videos/2.bin"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF  # same size, one flipped byte
    victim.write_bytes(bytes(data))

    report = tmp_path / "verify.json"
    result = stowage(
        tmp_path, "verify", f"s3://{bucket}", str(destination), "--report", str(report), check=False
    )
    assert result.returncode == 1
    assert result.stdout.startswith("sha256   videos/2.bin")
    assert json.loads(report.read_text())["differences"][0]["key"] == "videos/2.bin"

    stowage(tmp_path, "migrate", f"s3://{bucket}", str(destination), "--checksum")
    assert victim.read_bytes() == objects["videos/2.bin"]
    assert stowage(tmp_path, "verify", f"s3://{bucket}", str(destination)).returncode == 0


def test_rollback_restores_the_destination_exactly(tmp_path, s3, bucket):
    fill_s3(
        s3,
        bucket,
        "",
        {"images/keep.png": b"untouched", "images/replace.png": b"old", "images/same.png": b"same"},
    )
    s3.delete_object(Bucket=bucket, Key="images/keep.png")  # history with a delete marker
    fill_s3(s3, bucket, "", {"images/keep.png": b"untouched"})
    before = versions(s3, bucket)
    fill_local(
        tmp_path / "src",
        {
            "images/new.png": b"new",
            "images/replace.png": b"new content",
            "images/same.png": b"same",
        },
    )
    stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--overwrite")
    assert s3.get_object(Bucket=bucket, Key="images/replace.png")["Body"].read() == b"new content"
    run_id = next((tmp_path / "runs").glob("*.sqlite")).stem
    result = stowage(tmp_path, "rollback", run_id)
    assert "1 copies deleted, 1 overwritten objects restored" in result.stdout
    assert versions(s3, bucket) == before


def test_local_rollback_restores_overwritten_files(tmp_path, s3, bucket):
    fill_s3(s3, bucket, "", {"images/a.png": b"from s3", "images/b.png": b"also new"})
    destination = tmp_path / "dst"
    fill_local(destination, {"images/a.png": b"local original"})
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(destination), "--overwrite")
    assert (destination / "images/a.png").read_bytes() == b"from s3"
    run_id = next((tmp_path / "runs").glob("*.sqlite")).stem
    stowage(tmp_path, "rollback", run_id)
    assert (destination / "images/a.png").read_bytes() == b"local original"
    assert not (destination / "images/b.png").exists()


def test_delete_source_and_catalog_follow_the_objects_and_roll_back(tmp_path, s3, bucket):
    source = tmp_path / "media"
    objects = {"images/2026/01/01/a.png": b"aaa", "videos/2026/01/01/b.mp4": b"bbbb"}
    fill_local(source, objects)
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = open_catalog(catalog_url)
    for key, data in objects.items():
        catalog.add(
            Record(
                id=new_upload_id(),
                key=key,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content_type="image/png",
                is_temp=False,
                backend="local",
            )
        )
    stowage(
        tmp_path,
        "migrate",
        str(source),
        f"s3://{bucket}",
        "--delete-source",
        "--catalog",
        catalog_url,
    )
    assert not (source / "images/2026/01/01/a.png").exists()
    assert {catalog.get_by_key(k).backend for k in objects} == {"s3"}

    run_id = next((tmp_path / "runs").glob("*.sqlite")).stem
    result = stowage(tmp_path, "rollback", run_id)
    assert "2 sources restored, 2 catalog entries restored" in result.stdout
    for key, data in objects.items():
        assert (source / key).read_bytes() == data
        assert catalog.get_by_key(key).backend == "local"
    assert versions(s3, bucket) == []
    catalog.close()


def test_s3_source_delete_is_undone_by_removing_the_marker(tmp_path, s3, bucket):
    fill_s3(s3, bucket, "", {"images/x.png": b"x"})
    before = versions(s3, bucket)
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(tmp_path / "dst"), "--delete-source")
    assert any(kind == "marker" for _, _, kind, _ in versions(s3, bucket))
    run_id = next((tmp_path / "runs").glob("*.sqlite")).stem
    stowage(tmp_path, "rollback", run_id)
    assert versions(s3, bucket) == before
    assert not (tmp_path / "dst" / "images/x.png").exists()


def test_a_source_changed_after_planning_is_re_planned(tmp_path, bucket):
    from stowage.backends import LocalBackend
    from stowage.backends.s3 import S3Backend
    from stowage.migrate.engine import Migration
    from stowage.migrate.manifest import Manifest
    from stowage.migrate.plan import Options, plan

    fill_local(tmp_path / "src", {"images/a.bin": b"version one"})
    migration = Migration(
        Manifest(tmp_path / "runs" / "r1.sqlite"),
        LocalBackend(tmp_path / "src"),
        S3Backend(bucket, spool_dir=tmp_path),
        Options(quiet=True),
    )
    migration.manifest.create_run("src", "dst", Options().to_json())
    plan(migration.manifest, migration.source, migration.destination, migration.options)
    time.sleep(0.01)
    (tmp_path / "src" / "images/a.bin").write_bytes(b"version two, longer")
    migration.run()
    (entry,) = migration.manifest.entries()
    assert entry.state == "verified"
    assert entry.size == len(b"version two, longer")
    assert migration.destination.read_all("images/a.bin") == b"version two, longer"


def test_bad_locations_are_usage_errors(tmp_path):
    result = stowage(tmp_path, "migrate", "ftp://x/y", str(tmp_path / "d"), check=False)
    assert result.returncode == 2
    assert "locations are s3://bucket/prefix or a local path" in result.stderr
    missing = stowage(tmp_path, "status", "nope", check=False)
    assert missing.returncode == 3
    assert missing.stderr.startswith("stowage: no run nope in ")


def test_catalog_follows_identical_objects_on_a_rerun(tmp_path, s3, bucket):
    objects = {"images/2026/01/01/c.png": b"ccc"}
    fill_s3(s3, bucket, "", objects)
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = open_catalog(catalog_url)
    catalog.add(
        Record(
            id=new_upload_id(),
            key="images/2026/01/01/c.png",
            size=3,
            sha256=hashlib.sha256(b"ccc").hexdigest(),
            content_type="image/png",
            is_temp=False,
            backend="s3",
        )
    )
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(tmp_path / "dst"))
    assert catalog.get_by_key("images/2026/01/01/c.png").backend == "s3"
    stowage(tmp_path, "migrate", f"s3://{bucket}", str(tmp_path / "dst"), "--catalog", catalog_url)
    assert catalog.get_by_key("images/2026/01/01/c.png").backend == "local"
    second = sorted((tmp_path / "runs").glob("*.sqlite"))[-1].stem
    stowage(tmp_path, "rollback", second)
    assert catalog.get_by_key("images/2026/01/01/c.png").backend == "s3"
    assert (tmp_path / "dst" / "images/2026/01/01/c.png").exists()  # the first run's copy
    catalog.close()


def test_sigterm_finishes_in_flight_objects_and_resumes(tmp_path, s3, bucket):
    fill_local(tmp_path / "src", {f"images/{n:02d}.bin": os.urandom(200 * 1024) for n in range(30)})
    process = start_migration(tmp_path, bucket, "1M", stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob("runs/*.sqlite")):
        time.sleep(0.05)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "--resume" in stderr
    run_id = next((tmp_path / "runs").glob("*.sqlite")).stem
    status = json.loads(stowage(tmp_path, "status", run_id, "--json").stdout)
    assert status["status"] == "interrupted"
    assert "copy/failed" not in status["counts"]  # in-flight objects were finished, not cut
    stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--resume", run_id)
    assert stowage(tmp_path, "verify", str(tmp_path / "src"), f"s3://{bucket}").returncode == 0


def test_s3_to_s3_keeps_attributes_and_kms_key(tmp_path, s3, bucket, moto_url):
    kms_key = boto3.client("kms", endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]
    png = image_bytes("PNG")
    s3.put_object(
        Bucket=bucket,
        Key="src/images/k.png",
        Body=png,
        ContentType="image/png",
        CacheControl="max-age=60",
        Metadata={"team": "media"},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )
    target = f"{bucket}-copy"
    s3.create_bucket(Bucket=target, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    stowage(tmp_path, "migrate", f"s3://{bucket}/src", f"s3://{target}/dst")
    head = s3.head_object(Bucket=target, Key="dst/images/k.png")
    assert (head["ContentType"], head["CacheControl"]) == ("image/png", "max-age=60")
    assert head["Metadata"]["team"] == "media"
    assert head["SSEKMSKeyId"] == kms_key
    assert head["Metadata"]["sha256"] == hashlib.sha256(png).hexdigest()


def test_progress_is_drawn_on_a_terminal_only(tmp_path, s3, bucket):
    import pty

    fill_local(tmp_path / "src", {f"images/{n}.bin": os.urandom(10_000) for n in range(5)})
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "stowage"), "migrate", str(tmp_path / "src"), f"s3://{bucket}"],
        env=migration_env(tmp_path),
        cwd=tmp_path,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:
            break
        if not data:
            break
        output += data
    process.wait(timeout=60)
    os.close(controller)
    text = output.decode()
    assert "5/5 objects" in text
    assert "ETA" in text
    piped = stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}/again")
    assert "ETA" not in piped.stderr  # not a terminal: no progress line
    quiet = stowage(tmp_path, "migrate", str(tmp_path / "src"), f"s3://{bucket}/q", "--quiet")
    assert quiet.stderr == ""

"""Issue 11 items 1-2: every source name is migrated or reported, and copies arriving on S3
carry the sniffed type and their prefix's Cache-Control. Real files, moto's S3 server."""

from __future__ import annotations

import json
import unicodedata

import boto3
import pytest

from tests.runtime.conftest import image_bytes, mp4_bytes
from tests.runtime.test_migrate import fill_local, fill_s3, stowage

NFC = unicodedata.normalize("NFC", "images/café.png")
NFD = unicodedata.normalize("NFD", "images/café.png")
ALONE_NFD = unicodedata.normalize("NFD", "images/résumé/naïve.png")
BACKSLASH = "images/back\\slash.png"
CONTROL = "images/bell\x07.png"
VALID = "images/plain.png"


@pytest.fixture
def s3(aws_env, moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


def awkward(direction: str) -> dict[str, bytes]:
    """The same awkward set for both directions (plus ``a`` + ``a/b``, which only a bucket
    can hold)."""
    objects = {
        VALID: b"plain",
        NFC: b"composed",
        NFD: b"decomposed",
        ALONE_NFD: b"only decomposed",
        BACKSLASH: b"backslash",
        CONTROL: b"bell",
        "Images/Plain.png": b"case twin",
        "transcripts/empty.txt": b"",
    }
    if direction == "s3-to-local":
        objects |= {"videos/a": b"file a", "videos/a/b": b"file under a"}
    return objects


def locations(tmp_path, s3, bucket, direction, objects):
    if direction == "local-to-s3":
        fill_local(tmp_path / "src", objects)
        return str(tmp_path / "src"), f"s3://{bucket}/dst"
    fill_s3(s3, bucket, "src/", objects)
    return f"s3://{bucket}/src", str(tmp_path / "dst")


@pytest.mark.parametrize("direction", ["local-to-s3", "s3-to-local"])
def test_names_that_cannot_be_keys_are_reported_never_skipped(tmp_path, s3, bucket, direction):
    objects = awkward(direction)
    source, destination = locations(tmp_path, s3, bucket, direction, objects)
    report = tmp_path / "report.json"

    dry = stowage(tmp_path, "migrate", source, destination, "--dry-run", check=False)
    assert dry.returncode == 1
    assert any(line.startswith("invalid-name") and NFD in line for line in dry.stdout.splitlines())

    run = stowage(tmp_path, "migrate", source, destination, "--report", str(report), check=False)
    assert run.returncode == 1, run.stderr
    body = json.loads(report.read_text())
    invalid = {item["key"]: item["reason"] for item in body["invalid_names"]}
    assert set(invalid) == {NFD, ALONE_NFD, BACKSLASH, repr(CONTROL)}
    assert "not NFC-normalized" in invalid[NFD]
    assert "--normalize-names nfc would rename it" in invalid[ALONE_NFD]
    assert "backslash" in invalid[BACKSLASH]
    assert f"invalid-name {NFD}: cannot be a key" in run.stderr
    if direction == "s3-to-local":
        assert [c["key"] for c in body["conflicts"]] == ["videos/a"]
    assert "0 failed" in run.stderr

    verify = stowage(tmp_path, "verify", source, destination, check=False)
    assert verify.returncode == 1
    assert f"invalid-name {BACKSLASH} (key contains a backslash)" in verify.stdout.splitlines()


@pytest.mark.parametrize("direction", ["local-to-s3", "s3-to-local"])
def test_normalize_names_nfc_renames_and_records_collisions_as_conflicts(
    tmp_path, s3, bucket, direction
):
    objects = {VALID: b"plain", NFC: b"composed", NFD: b"decomposed", ALONE_NFD: b"alone"}
    source, destination = locations(tmp_path, s3, bucket, direction, objects)
    report = tmp_path / "report.json"
    run = stowage(
        tmp_path,
        "migrate",
        source,
        destination,
        "--normalize-names",
        "nfc",
        "--report",
        str(report),
        check=False,
    )
    assert run.returncode == 1  # the NFC/NFD twins meet at one key: a conflict
    body = json.loads(report.read_text())
    assert body["renamed"] == [
        {"source_name": ALONE_NFD, "key": unicodedata.normalize("NFC", ALONE_NFD)}
    ]
    (conflict,) = body["conflicts"]
    assert (conflict["key"], conflict["source_name"]) == (NFC, NFD)
    assert "once normalized" in conflict["reason"]
    if direction == "local-to-s3":
        stored = s3.get_object(Bucket=bucket, Key="dst/" + NFC)["Body"].read()
        renamed = s3.get_object(
            Bucket=bucket, Key="dst/" + unicodedata.normalize("NFC", ALONE_NFD)
        )["Body"].read()
    else:
        stored = (tmp_path / "dst" / NFC).read_bytes()
        renamed = (tmp_path / "dst" / unicodedata.normalize("NFC", ALONE_NFD)).read_bytes()
    assert (stored, renamed) == (b"composed", b"alone")  # never overwritten by its twin

    # The run's manifest keeps the mapping; verify under the same policy names the twin.
    run_id = body["run_id"]
    status = json.loads(stowage(tmp_path, "status", run_id, "--json").stdout)
    assert status["counts"]["conflict/skipped"]["objects"] == 1
    verify = stowage(
        tmp_path, "verify", source, destination, "--normalize-names", "nfc", check=False
    )
    assert verify.returncode == 1
    assert verify.stdout.startswith(f"collision {NFC}")


def test_copies_on_s3_carry_the_sniffed_type_and_their_prefix_cache_control(tmp_path, s3, bucket):
    files = {
        "images/2026/01/01/photo": image_bytes("JPEG"),
        "images/2026/01/01/drawing.bin": image_bytes("PNG"),
        "videos/2026/01/01/clip.dat": mp4_bytes(),
        "temp/images/2026/01/01/t.png": image_bytes("PNG"),
        "processed/notes.txt": b"plain words\n",
        "other/blob": bytes(range(256)) * 4,
    }
    fill_local(tmp_path / "src", files)
    stowage(
        tmp_path,
        "migrate",
        str(tmp_path / "src"),
        f"s3://{bucket}",
        "--cache-control",
        "videos/=max-age=600",
    )
    heads = {key: s3.head_object(Bucket=bucket, Key=key) for key in files}
    types = {key: head["ContentType"] for key, head in heads.items()}
    assert types == {
        "images/2026/01/01/photo": "image/jpeg",
        "images/2026/01/01/drawing.bin": "image/png",
        "videos/2026/01/01/clip.dat": "video/mp4",
        "temp/images/2026/01/01/t.png": "image/png",
        "processed/notes.txt": "text/plain",
        "other/blob": "application/octet-stream",
    }
    caches = {key: head.get("CacheControl") for key, head in heads.items()}
    assert caches == {
        "images/2026/01/01/photo": "max-age=31536000, immutable",
        "images/2026/01/01/drawing.bin": "max-age=31536000, immutable",
        "videos/2026/01/01/clip.dat": "max-age=600",
        "temp/images/2026/01/01/t.png": "no-store",
        "processed/notes.txt": "max-age=31536000, immutable",
        "other/blob": None,
    }

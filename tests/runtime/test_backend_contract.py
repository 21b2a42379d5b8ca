"""One contract, every backend: local disk, S3 (moto's server over HTTP) and hybrid.

Capability differences are fixtures (``writable_root``), never ``if`` branches in tests.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading

import boto3
import pytest

from stowage.backends import HybridBackend, LocalBackend, S3Backend
from stowage.backends.base import ChecksumMismatch, ObjectAttributes
from stowage.errors import Conflict, InvalidKey

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "images/../../escape",
    "images/./x",
    "a//b",
    "trailing/",
    "back\\slash",
    "nul\x00byte",
    "tab\tkey",
    "e\u0301",  # decomposed: not NFC
    "k" * 1025,
]


@pytest.fixture(params=["local", "s3", "hybrid"])
def backend(request, tmp_path):
    if request.param == "local":
        return LocalBackend(tmp_path / "root")
    bucket = request.getfixturevalue("bucket")
    s3 = S3Backend(bucket, prefix="media/", spool_dir=tmp_path)
    if request.param == "s3":
        return s3
    return HybridBackend(LocalBackend(tmp_path / "root"), s3, s3_percent=50)


def put(backend, key: str, data: bytes, content_type: str = "application/octet-stream"):
    return backend.put_stream(key, io.BytesIO(data), content_type=content_type)


class TestContract:
    def test_round_trip_with_sha256(self, backend):
        data = os.urandom(300_000)
        info = put(backend, "images/2026/01/02/a.bin", data, "image/png")
        assert info.size == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert backend.read_all("images/2026/01/02/a.bin") == data
        head = backend.head("images/2026/01/02/a.bin")
        assert (head.size, head.sha256, head.content_type) == (len(data), info.sha256, "image/png")
        assert head.backend in ("local", "s3")

    def test_put_file_consumes_the_spool_file(self, backend, tmp_path):
        spool = tmp_path / "upload.part"
        spool.write_bytes(b"hello")
        digest = hashlib.sha256(b"hello").hexdigest()
        backend.put_file("transcripts/t.txt", spool, sha256=digest, content_type="text/plain")
        assert not spool.exists()
        assert backend.head("transcripts/t.txt").sha256 == digest

    def test_overwrite_replaces_whole_object(self, backend):
        put(backend, "videos/v.bin", b"old" * 1000)
        put(backend, "videos/v.bin", b"new")
        assert backend.read_all("videos/v.bin") == b"new"

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [(0, 0, b"0"), (2, 5, b"2345"), (7, None, b"789"), (8, 100, b"89")],
    )
    def test_range_reads(self, backend, start, end, expected):
        put(backend, "images/r.bin", b"0123456789")
        assert b"".join(backend.open_range("images/r.bin", start, end)) == expected

    def test_missing_object_is_file_not_found(self, backend):
        for operation in (
            lambda: backend.head("images/nope"),
            lambda: backend.open_range("images/nope"),
            lambda: backend.delete("images/nope"),
            lambda: backend.move("images/nope", "images/other"),
        ):
            with pytest.raises(FileNotFoundError):
                operation()
        assert backend.exists("images/nope") is False

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_every_method_validates_the_key(self, backend, key):
        for operation in (
            lambda: backend.head(key),
            lambda: backend.open_range(key),
            lambda: backend.delete(key),
            lambda: put(backend, key, b"x"),
            lambda: backend.move("images/a", key),
        ):
            with pytest.raises(InvalidKey):
                operation()

    def test_delete(self, backend):
        put(backend, "temp/images/x.bin", b"x")
        backend.delete("temp/images/x.bin")
        assert not backend.exists("temp/images/x.bin")

    def test_move_and_conflict(self, backend):
        put(backend, "temp/videos/2026/01/01/m.bin", b"move me")
        info = backend.move("temp/videos/2026/01/01/m.bin", "videos/2026/01/01/m.bin")
        assert info.size == 7
        assert not backend.exists("temp/videos/2026/01/01/m.bin")
        assert backend.read_all("videos/2026/01/01/m.bin") == b"move me"
        put(backend, "temp/videos/2026/01/01/n.bin", b"second")
        with pytest.raises(Conflict):
            backend.move("temp/videos/2026/01/01/n.bin", "videos/2026/01/01/m.bin")
        assert backend.read_all("videos/2026/01/01/m.bin") == b"move me"

    def test_list_by_prefix_in_key_order(self, backend):
        for key in ("images/b", "images/a/1", "videos/c", "images/a/2"):
            put(backend, key, key.encode())
        assert [i.key for i in backend.list("images/")] == ["images/a/1", "images/a/2", "images/b"]
        assert [i.key for i in backend.list("")] == [
            "images/a/1",
            "images/a/2",
            "images/b",
            "videos/c",
        ]

    def test_unicode_and_odd_keys(self, backend):
        keys = [
            "images/café ☕/space and +plus%.jpg",
            "images/" + "deep/" * 40 + "leaf",
            "images/0",
        ]
        for key in keys:
            put(backend, key, key.encode())
        for key in keys:
            assert backend.read_all(key) == key.encode()

    def test_zero_byte_object(self, backend):
        info = put(backend, "transcripts/empty.txt", b"")
        assert info.size == 0
        assert backend.read_all("transcripts/empty.txt") == b""

    def test_failed_write_leaves_nothing(self, backend):
        put(backend, "videos/keep.bin", b"original")

        class Broken(io.RawIOBase):
            def __init__(self):
                self.calls = 0

            def read(self, size=-1):
                self.calls += 1
                if self.calls > 3:
                    raise ConnectionError("client went away")
                return b"x" * 65536

        for key in ("videos/keep.bin", "videos/new.bin"):
            with pytest.raises(ConnectionError):
                backend.put_stream(key, Broken())
        assert backend.read_all("videos/keep.bin") == b"original"
        assert not backend.exists("videos/new.bin")

    def test_concurrent_writers_never_expose_a_mix(self, backend):
        payloads = [bytes([n]) * 200_000 for n in range(6)]
        threads = [
            threading.Thread(target=put, args=(backend, "images/race.bin", p)) for p in payloads
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert backend.read_all("images/race.bin") in payloads

    def test_a_promised_sha256_is_checked_and_attributes_kept(self, backend):
        key = "processed/2026/01/01/p.bin"
        data = os.urandom(20 * 1024 * 1024)  # above the S3 multipart threshold
        digest = hashlib.sha256(data).hexdigest()
        with pytest.raises(ChecksumMismatch):
            backend.put_stream(key, io.BytesIO(data), sha256="0" * 64)
        assert not backend.exists(key)
        attributes = ObjectAttributes(cache_control="public, max-age=60", metadata={"owner": "a"})
        info = backend.put_stream(
            key, io.BytesIO(data), content_type="video/mp4", sha256=digest, attributes=attributes
        )
        assert info.sha256 == digest
        head = backend.head(key)
        assert (head.content_type, head.cache_control, head.metadata) == (
            "video/mp4",
            "public, max-age=60",
            {"owner": "a"},
        )

    def test_multipart_upload(self, backend, tmp_path):
        key = "videos/2026/01/01/big.bin"
        handle = backend.start_multipart(key, content_type="video/mp4")
        part_size = 5 * 1024 * 1024
        data = os.urandom(part_size * 2 + 1000)
        pieces = [data[:part_size], data[part_size : 2 * part_size], data[2 * part_size :]]
        for number, piece in enumerate(pieces, 1):
            send_part(backend, key, handle, number, piece)
        info = backend.complete_multipart(key, handle, parts=3, content_type="video/mp4")
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert backend.read_all(key) == data

    def test_multipart_abort_and_incomplete(self, backend):
        key = "videos/2026/01/01/aborted.bin"
        handle = backend.start_multipart(key, content_type=None)
        send_part(backend, key, handle, 1, b"a" * (5 * 1024 * 1024))
        with pytest.raises(Conflict):
            backend.complete_multipart(key, handle, parts=2)
        backend.abort_multipart(key, handle)
        assert not backend.exists(key)


def send_part(backend, key: str, handle: str, number: int, data: bytes) -> None:
    """PUT a part the way a client would: to its URL, or to the service for local parts."""
    url = backend.part_url(key, handle, number, expires_in=600)
    if url is None:
        backend.receive_part(handle, number, io.BytesIO(data), limit=len(data))
        return
    import httpx

    response = httpx.put(url, content=data, headers={"Content-Type": "application/octet-stream"})
    response.raise_for_status()


class TestLocalOnly:
    """Local-disk specifics: the files themselves."""

    def test_keys_never_escape_the_root(self, tmp_path):
        backend = LocalBackend(tmp_path / "root")
        (tmp_path / "outside").mkdir()
        (tmp_path / "root" / "images").mkdir(parents=True)
        os.symlink(tmp_path / "outside", tmp_path / "root" / "images" / "link")
        with pytest.raises(InvalidKey):
            put(backend, "images/link/file.bin", b"x")
        assert not any((tmp_path / "outside").iterdir())

    def test_reserved_directories_are_not_keys(self, tmp_path):
        backend = LocalBackend(tmp_path / "root")
        for key in (".stowage-tmp/x", ".stowage/catalog.db"):
            with pytest.raises(InvalidKey):
                backend.head(key)

    def test_delete_prunes_empty_date_directories(self, tmp_path):
        backend = LocalBackend(tmp_path / "root")
        put(backend, "temp/images/2026/01/01/x.bin", b"x")
        backend.delete("temp/images/2026/01/01/x.bin")
        assert not (tmp_path / "root" / "temp").exists()


def test_s3_objects_carry_sha256_and_checksum(bucket, moto_url, tmp_path):
    backend = S3Backend(bucket, spool_dir=tmp_path)
    data = b"checksummed"
    put(backend, "images/c.bin", data, "image/png")
    head = boto3.client("s3", endpoint_url=moto_url).head_object(
        Bucket=bucket, Key="images/c.bin", ChecksumMode="ENABLED"
    )
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "ChecksumSHA256" in head


def test_hybrid_split_is_stable_and_close_to_the_percentage(bucket, tmp_path):
    hybrid = HybridBackend(
        LocalBackend(tmp_path / "root"), S3Backend(bucket, spool_dir=tmp_path), s3_percent=30
    )
    keys = [f"images/2026/01/01/{n:05d}.jpg" for n in range(2000)]
    sides = [hybrid.for_new(k).name for k in keys]
    assert sides == [hybrid.for_new(k).name for k in keys]
    share = sides.count("s3") / len(sides)
    assert 0.26 < share < 0.34


def test_hybrid_reads_where_the_locator_says(bucket, tmp_path):
    local, s3 = LocalBackend(tmp_path / "root"), S3Backend(bucket, spool_dir=tmp_path)
    put(s3, "images/moved.jpg", b"in s3")
    hybrid = HybridBackend(local, s3, s3_percent=0, locate=lambda key: "s3")
    assert hybrid.head("images/moved.jpg").backend == "s3"
    assert hybrid.read_all("images/moved.jpg") == b"in s3"


# --- what a migration needs from a location: the same contract on disk and on S3 ----------

NFD_NAME = "images/caf\u0065\u0301.png"


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path):
    """(backend, plant): ``plant`` writes any name, key or not, as another writer would."""
    if request.param == "local":
        backend = LocalBackend(tmp_path / "root")

        def plant(name: str, data: bytes) -> None:
            path = backend.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return backend, plant
    bucket = request.getfixturevalue("bucket")
    client = boto3.client("s3")

    def plant(name: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key="m/" + name, Body=data)

    return S3Backend(bucket, prefix="m/", spool_dir=tmp_path), plant


class TestMigrationCapabilities:
    def test_scan_reports_names_that_cannot_be_keys(self, location):
        backend, plant = location
        for name in ("images/ok.png", NFD_NAME, "images/back\\slash.png"):
            plant(name, b"x")
        found = {getattr(f, "key", None) or f.name: f for f in backend.scan("")}
        assert found["images/ok.png"].size == 1
        assert found[NFD_NAME].nfc_key == "images/caf\u00e9.png"
        assert "backslash" in found["images/back\\slash.png"].reason
        assert found["images/back\\slash.png"].nfc_key is None
        _, chunks = backend.open_listed(NFD_NAME)
        assert b"".join(chunks) == b"x"

    def test_undo_write_removes_only_its_own_bytes(self, location, tmp_path):
        backend, plant = location
        source = tmp_path / "file.bin"
        source.write_bytes(b"ours")
        digest = hashlib.sha256(b"ours").hexdigest()
        written = backend.write_file("videos/o.bin", source, sha256=digest, content_type=None)
        assert backend.verified_sha256("videos/o.bin", written) == digest
        assert source.exists()  # a copy: the file stays
        assert (
            backend.undo_write(
                "videos/o.bin", version_id=written.version_id, sha256=digest, previous=None
            )
            == "removed"
        )
        assert not backend.exists("videos/o.bin")

        written = backend.write_file("videos/o.bin", source, sha256=digest, content_type=None)
        plant("videos/o.bin", b"the application's")
        outcome = backend.undo_write(
            "videos/o.bin", version_id=written.version_id, sha256=digest, previous=None
        )
        assert outcome == "changed-since"
        assert backend.read_all("videos/o.bin") == b"the application's"

"""Plan, copy, verify, resume and roll back a migration between two locations.

Guarantees (PRODUCT.md, "Migration guarantees"):
- the plan lists every action before anything changes (``--dry-run`` stops there);
- every object is verified by SHA-256 end to end, never by ETag: hashed while read from the
  source, and checked at the destination (S3's own stored checksum, or a re-read on disk);
- the manifest records each step, so a rerun never recopies a verified object;
- a destination object that differs is a conflict unless ``--overwrite`` (or it is a
  corrupted copy of this very source, which is repaired);
- sources are deleted only with ``--delete-source`` and only after verification;
- rollback undoes exactly what the run changed (by version id on versioned buckets).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stowage.backends import Backend, LocalBackend
from stowage.backends.base import ChunkReader, HashingReader, ObjectAttributes, ObjectInfo
from stowage.errors import BadRequest, StowageError
from stowage.migrate.manifest import (
    CONFLICT,
    COPY,
    FAILED,
    OVERWRITE,
    PLANNED,
    ROLLED_BACK,
    SKIP,
    SKIPPED,
    VERIFIED,
    Entry,
    Manifest,
)
from stowage.progress import Progress

log = logging.getLogger("stowage.migrate")


# --- locations -----------------------------------------------------------------------------


def open_location(text: str) -> Backend:
    """``s3://bucket/prefix`` or a local directory."""
    if text.startswith("s3://"):
        from stowage.backends.s3 import S3Backend

        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise BadRequest(f"{text}: no bucket name")
        prefix = prefix.strip("/")
        return S3Backend(
            bucket,
            prefix=f"{prefix}/" if prefix else "",
            endpoint_url=os.environ.get("STOWAGE_S3_ENDPOINT_URL"),
            kms_key_id=os.environ.get("STOWAGE_KMS_KEY_ID"),
        )
    if "://" in text:
        raise BadRequest(f"{text}: locations are s3://bucket/prefix or a local path")
    return LocalBackend(Path(text))


# --- streaming helpers ---------------------------------------------------------------------


class RateLimit:
    """A token bucket shared by all workers: at most ``bytes_per_second`` overall."""

    def __init__(self, bytes_per_second: int | None) -> None:
        self.rate = bytes_per_second
        self._lock = threading.Lock()
        self._allowance = float(bytes_per_second or 0)
        self._last = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._allowance = min(
                    self._allowance + (now - self._last) * self.rate, float(self.rate)
                )
                self._last = now
                if self._allowance >= n or self._allowance >= self.rate:
                    self._allowance -= n
                    return
                wait = (n - self._allowance) / self.rate
            time.sleep(min(wait, 0.5))


class SourceReader(ChunkReader):
    """A source object's bytes as a file: hashed, counted and rate-limited as they are read."""

    def __init__(self, chunks: Iterator[bytes], limit: RateLimit, progress: Progress) -> None:
        super().__init__(chunks)
        self._limit = limit
        self._progress = progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if data:
            self._limit.take(len(data))
            self.sha256.update(data)
            self.size += len(data)
            self._progress.add_bytes(len(data))
        return data


# --- options and reports -------------------------------------------------------------------


@dataclass
class Options:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    workers: int = 8
    bwlimit: int | None = None
    overwrite: bool = False
    checksum: bool = False
    delete_source: bool = False
    catalog_url: str | None = None
    quiet: bool = False

    def selects(self, key: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(key, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self.exclude)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "quiet"}


def new_run_id() -> str:
    """Sortable by start time: ``20261121T142115123Z-1a2b3c`` (milliseconds, random tail)."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


# --- the migration ---------------------------------------------------------------------------


class Interrupted(Exception):
    """SIGINT/SIGTERM: in-flight objects finished, state saved; rerun with --resume."""


class Migration:
    def __init__(
        self, manifest: Manifest | None, source: Backend, destination: Backend, options: Options
    ) -> None:
        """``manifest`` may be ``None`` for planning only (``--dry-run``)."""
        self.manifest = manifest
        self.source = source
        self.destination = destination
        self.options = options
        self.stop = threading.Event()
        self._catalog = None

    @property
    def backup_dir(self) -> Path:
        """Where overwritten local files are kept until the run is rolled back or pruned."""
        return self.manifest.path.with_suffix(".backup")

    # -- planning -------------------------------------------------------------------------

    def plan(self) -> list[Entry]:
        """Inventory both sides and decide an action per source object."""
        destination = {
            info.key: info for info in self.destination.list("") if self.options.selects(info.key)
        }
        entries = []
        for info in self.source.list(""):
            if not self.options.selects(info.key):
                continue
            entries.append(self._decide(info, destination.get(info.key)))
        return entries

    def _decide(self, src: ObjectInfo, dst: ObjectInfo | None) -> Entry:
        entry = Entry(
            key=src.key,
            action=COPY,
            size=src.size,
            src_modified=src.modified.isoformat(),
            src_version=src.version_id,
            src_sha256=src.sha256,
        )
        if dst is None:
            return entry
        src_full = src if src.sha256 else self.source.head(src.key)
        dst_full = dst if dst.sha256 else self.destination.head(dst.key)
        src_sha = src_full.sha256
        if self.options.checksum or not src_sha:
            src_sha = self.source.sha256(src.key)
        entry.src_sha256 = src_sha
        dst_sha = dst_full.sha256
        if self.options.checksum or not dst_sha:
            dst_sha = self.destination.sha256(dst.key)
        entry.dst_prev_version = dst_full.version_id
        entry.dst_prev_sha256 = dst_sha
        if dst.size == src.size and dst_sha == src_sha:
            entry.action, entry.state = SKIP, SKIPPED
        elif dst_full.sha256 == src_sha:
            entry.action, entry.reason = OVERWRITE, "repair: destination claims this source's hash"
        elif self.options.overwrite:
            entry.action, entry.reason = OVERWRITE, "--overwrite"
        else:
            entry.action, entry.state = CONFLICT, SKIPPED
            entry.reason = "destination differs; rerun with --overwrite to replace it"
        return entry

    # -- copying --------------------------------------------------------------------------

    def run(self, entries: list[Entry]) -> None:
        todo = [e for e in entries if e.state in (PLANNED, FAILED)]
        progress = Progress(len(todo), sum(e.size for e in todo), quiet=self.options.quiet)
        limit = RateLimit(self.options.bwlimit)
        self.manifest.set_status("running")
        previous = self._trap_signals()
        try:
            with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
                for _ in pool.map(lambda e: self._copy_one(e, limit, progress), todo):
                    pass
            if self.options.catalog_url and not self.stop.is_set():
                # Identical objects already at the destination are its objects too.
                for entry in entries:
                    if entry.action == SKIP and not entry.catalog_prev_backend:
                        self._update_catalog(entry)
                        self.manifest.save(entry)
        finally:
            progress.close()
            self._restore_signals(previous)
            if self._catalog is not None:
                self._catalog.close()
        if self.stop.is_set():
            self.manifest.set_status("interrupted")
            raise Interrupted(self.manifest.run_id)
        failed = self.manifest.entries(FAILED)
        self.manifest.set_status("failed" if failed else "completed")

    def _trap_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        handler = lambda signum, frame: self.stop.set()  # noqa: E731
        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous) -> None:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)

    def _copy_one(self, entry: Entry, limit: RateLimit, progress: Progress) -> None:
        if self.stop.is_set():
            return
        try:
            self._transfer(entry, limit, progress)
            if self.options.delete_source:
                self._delete_source(entry)
            if self.options.catalog_url:
                self._update_catalog(entry)
        except (StowageError, OSError, ValueError) as exc:
            entry.state, entry.error = FAILED, f"{type(exc).__name__}: {exc}"
            log.warning("object failed", extra={"key": entry.key, "error": entry.error})
        except Exception as exc:  # boto errors and the like: record, keep going
            entry.state, entry.error = FAILED, f"{type(exc).__name__}: {exc}"
        self.manifest.save(entry)
        progress.add_object()

    def _transfer(self, entry: Entry, limit: RateLimit, progress: Progress) -> None:
        if self._adopt_existing(entry):
            return
        if entry.action == OVERWRITE:
            self._keep_previous(entry)
        if isinstance(self.source, LocalBackend) and hasattr(self.destination, "upload_path"):
            self._upload_local_file(entry, limit, progress)
            return
        src, chunks = self.source.open_object(entry.key)
        self._note_changes(entry, src)
        expected = entry.src_sha256 or src.sha256
        reader = SourceReader(chunks, limit, progress)
        info = self.destination.put_stream(
            entry.key,
            reader,
            content_type=src.content_type,
            sha256=expected,
            attributes=_attributes(src),
        )
        if reader.size != src.size:
            raise StowageError(f"read {reader.size} bytes of {src.size}")
        entry.src_sha256 = reader.sha256.hexdigest()
        self._verify_destination(entry, info)

    def _upload_local_file(self, entry: Entry, limit: RateLimit, progress: Progress) -> None:
        """Disk -> S3: hash the file (and its S3 part checksums) first, then let S3 read the
        parts from disk; S3's checksum of what it stored must equal ours."""
        path = self.source.path_for(entry.key)
        src = self.source.head(entry.key)
        self._note_changes(entry, src)
        with open(path, "rb") as handle:
            reader = HashingReader(handle, part_size=self.destination.transfer.multipart_chunksize)
            while chunk := reader.read(1024 * 1024):
                limit.take(len(chunk))
                progress.add_bytes(len(chunk))
        if reader.size != src.size:
            raise StowageError(f"{entry.key} changed while it was read")
        entry.src_sha256 = reader.hexdigest()
        info = self.destination.upload_path(
            entry.key,
            path,
            sha256=entry.src_sha256,
            content_type=src.content_type,
            attributes=_attributes(src),
            s3_checksum=reader.s3_checksum(),
        )
        if info.size != src.size or self.source.head(entry.key).modified != src.modified:
            raise StowageError(f"{entry.key} changed during the upload; rerun to copy it again")
        self._verify_destination(entry, info)

    @staticmethod
    def _note_changes(entry: Entry, src: ObjectInfo) -> None:
        """A source object that changed since planning is planned again from what is read now."""
        if (src.size, src.version_id, src.modified.isoformat()) != (
            entry.size,
            entry.src_version,
            entry.src_modified,
        ):
            log.info("source changed; re-planned", extra={"key": entry.key})
            entry.size, entry.src_version = src.size, src.version_id
            entry.src_modified, entry.src_sha256 = src.modified.isoformat(), src.sha256

    def _adopt_existing(self, entry: Entry) -> bool:
        """After a crash the destination may already hold this run's complete copy (writes
        are atomic); verify and adopt it instead of copying again."""
        if entry.action != COPY:
            return False
        try:
            existing = self.destination.head(entry.key)
        except FileNotFoundError:
            return False
        if existing.size != entry.size or existing.sha256 is None:
            return False
        entry.src_sha256 = entry.src_sha256 or self.source.sha256(entry.key)
        if existing.sha256 != entry.src_sha256:
            return False
        self._verify_destination(entry, existing)
        return True

    def _verify_destination(self, entry: Entry, info: ObjectInfo) -> None:
        """End to end: the destination's bytes must hash to the source's SHA-256. An S3
        destination compared its own stored checksum during the write; disk is re-read."""
        if isinstance(self.destination, LocalBackend) or not hasattr(
            self.destination, "stored_checksum"
        ):
            actual = self.destination.sha256(entry.key)
            if actual != entry.src_sha256:
                raise StowageError(f"destination hash {actual} != source {entry.src_sha256}")
        elif info.sha256 != entry.src_sha256:
            raise StowageError(f"destination hash {info.sha256} != source {entry.src_sha256}")
        entry.dst_version = info.version_id
        entry.state, entry.error = VERIFIED, None

    def _keep_previous(self, entry: Entry) -> None:
        """Before overwriting: on disk, hard-link the old file into the run's backup; on S3,
        the bucket's versioning keeps it (its version id is in the manifest)."""
        if isinstance(self.destination, LocalBackend):
            old = self.destination.path_for(entry.key)
            if old.exists() and not entry.backup:
                backup = self.backup_dir / entry.key
                backup.parent.mkdir(parents=True, exist_ok=True)
                backup.unlink(missing_ok=True)
                os.link(old, backup)
                entry.backup = str(backup)
        elif not self.destination.versioned():
            raise StowageError(
                "refusing to overwrite in an unversioned bucket: rollback could not restore it"
            )
        self.manifest.save(entry)

    def _delete_source(self, entry: Entry) -> None:
        if entry.state != VERIFIED or entry.source_deleted:
            return
        self.source.delete(entry.key)
        entry.source_deleted = 1
        if hasattr(self.source, "latest_delete_marker"):
            entry.source_marker = self.source.latest_delete_marker(entry.key)

    def _update_catalog(self, entry: Entry) -> None:
        if entry.state not in (VERIFIED, SKIPPED) or entry.action == CONFLICT:
            return
        catalog = self._open_catalog()
        record = catalog.get_by_key(entry.key)
        if record is None:
            return
        entry.catalog_prev_backend = record.backend
        catalog.update(record.changed(backend=self.destination.name))

    def _open_catalog(self):
        if self._catalog is None:
            from stowage.catalog import open_catalog

            self._catalog = open_catalog(self.options.catalog_url)
        return self._catalog

    # -- rollback -------------------------------------------------------------------------

    def rollback(self) -> dict[str, int]:
        """Undo what this run did, newest state first. Returns counts of what was undone."""
        counts = {"deleted": 0, "restored": 0, "sources_restored": 0, "catalog_restored": 0}
        catalog = None
        for entry in self.manifest.entries(VERIFIED, FAILED, SKIPPED):
            if entry.state == FAILED and entry.action != OVERWRITE:
                continue
            if entry.state == SKIPPED and not entry.catalog_prev_backend:
                continue
            if entry.source_deleted:
                self._restore_source(entry)
                counts["sources_restored"] += 1
            if entry.catalog_prev_backend and self.options.catalog_url:
                catalog = catalog or self._open_catalog()
                record = catalog.get_by_key(entry.key)
                if record is not None:
                    catalog.update(record.changed(backend=entry.catalog_prev_backend))
                    counts["catalog_restored"] += 1
            if entry.action == COPY and entry.state == VERIFIED:
                self._remove_copy(entry)
                counts["deleted"] += 1
            elif entry.action == OVERWRITE and entry.state != SKIPPED:
                self._restore_previous(entry)
                counts["restored"] += 1
            entry.state = ROLLED_BACK
            self.manifest.save(entry)
        if catalog is not None:
            catalog.close()
        self.manifest.set_status("rolled-back")
        return counts

    def _remove_copy(self, entry: Entry) -> None:
        if hasattr(self.destination, "delete_version") and entry.dst_version not in (None, "null"):
            self.destination.delete_version(entry.key, entry.dst_version)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.destination.delete(entry.key)

    def _restore_previous(self, entry: Entry) -> None:
        if isinstance(self.destination, LocalBackend):
            if entry.backup and Path(entry.backup).exists():
                target = self.destination.path_for(entry.key)
                os.replace(entry.backup, target)
        elif entry.dst_version not in (None, "null"):
            self.destination.delete_version(entry.key, entry.dst_version)

    def _restore_source(self, entry: Entry) -> None:
        if entry.source_marker and hasattr(self.source, "delete_version"):
            self.source.delete_version(entry.key, entry.source_marker)
            return
        # A local source comes back from its verified copy at the destination.
        reader = self.destination.open_range(entry.key)
        info = self.source.put_stream(entry.key, ChunkReader(reader), sha256=entry.src_sha256)
        if info.sha256 != entry.src_sha256:
            raise StowageError(f"restored source {entry.key} does not match its hash")

    def cleanup_backups(self) -> None:
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def _attributes(src: ObjectInfo) -> ObjectAttributes:
    return ObjectAttributes(
        cache_control=src.cache_control, metadata=src.metadata, kms_key_id=src.kms_key_id
    )


# --- verify ----------------------------------------------------------------------------------


@dataclass
class Difference:
    key: str
    problem: str  # missing | extra | size | sha256
    source: str | None = None
    destination: str | None = None


def verify(source: Backend, destination: Backend, options: Options) -> tuple[list[Difference], int]:
    """Compare both sides object by object, reading every byte. Returns (differences,
    objects compared)."""
    src = {i.key: i for i in source.list("") if options.selects(i.key)}
    dst = {i.key: i for i in destination.list("") if options.selects(i.key)}
    differences = [Difference(k, "missing") for k in sorted(src.keys() - dst.keys())]
    differences += [Difference(k, "extra") for k in sorted(dst.keys() - src.keys())]
    both = sorted(src.keys() & dst.keys())
    progress = Progress(len(both), sum(src[k].size for k in both), quiet=options.quiet)

    def compare(key: str) -> Difference | None:
        try:
            if src[key].size != dst[key].size:
                return Difference(key, "size", str(src[key].size), str(dst[key].size))
            a, b = source.sha256(key), destination.sha256(key)
            return None if a == b else Difference(key, "sha256", a, b)
        finally:
            progress.add_bytes(src[key].size)
            progress.add_object()

    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        differences += [d for d in pool.map(compare, both) if d is not None]
    progress.close()
    return sorted(differences, key=lambda d: (d.key, d.problem)), len(both)

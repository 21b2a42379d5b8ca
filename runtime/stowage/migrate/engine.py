"""Run a migration: plan → copy → verify → record, for each object, in parallel.

Guarantees (PRODUCT.md, "Migration guarantees"):
- every object is verified by SHA-256 end to end, never by ETag: hashed as it passes from
  the source to the destination (a file on disk before it is sent), and checked at the
  destination by the destination itself;
- the manifest records each write the moment it returns, so a rerun never recopies a
  verified object and a rollback knows every byte this run wrote;
- a resumed run first removes what its dead predecessors left behind (spool files, open
  multipart uploads);
- sources are deleted only with ``--delete-source`` and only after verification;
- the bandwidth cap applies to the bytes on the wire, in either direction;
- the entries are read from the manifest a page at a time, with a bounded number in flight:
  memory does not grow with the number of objects.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from stowage.backends import Backend
from stowage.backends.base import CHUNK_SIZE, ObjectInfo, Unlisted
from stowage.backends.readers import HashingReader
from stowage.errors import StowageError
from stowage.migrate.attributes import Stamp
from stowage.migrate.manifest import (
    CONFLICT,
    COPY,
    FAILED,
    OVERWRITE,
    PLANNED,
    SKIP,
    SKIPPED,
    VERIFIED,
    Entry,
    KeysOf,
    Manifest,
)
from stowage.migrate.plan import Options, listed_sha256
from stowage.migrate.transfer import RateLimit, SourceReader
from stowage.progress import Progress
from stowage.sniff import SNIFF_BYTES

log = logging.getLogger("stowage.migrate")
STALE_BATCH = 500


class Interrupted(Exception):
    """SIGINT/SIGTERM: in-flight objects finished, state saved; rerun with --resume."""


class Migration:
    def __init__(
        self, manifest: Manifest, source: Backend, destination: Backend, options: Options
    ) -> None:
        self.manifest = manifest
        self.source = source
        self.destination = destination
        self.options = options
        self.stop = threading.Event()
        self.stamp = Stamp(options.cache_rules)
        self.limit = RateLimit(options.bwlimit)
        self.debris: list[str] = []
        self.first_attempt = False
        self._catalog = None

    @property
    def backup_dir(self) -> Path:
        """Where overwritten local files are kept until the run is rolled back or pruned."""
        return self.manifest.path.with_suffix(".backup")

    # -- the run --------------------------------------------------------------------------

    def run(self) -> None:
        """Copy every planned (or failed) entry of the manifest, read from it a page at a
        time, with at most a few pages' worth in flight."""
        self.manifest.acquire()
        self.first_attempt = not self.manifest.run().pids[:-1]
        self._discard_debris()
        objects, total = self.manifest.totals(PLANNED, FAILED)
        progress = Progress(objects, total, quiet=self.options.quiet)
        self.manifest.set_status("running")
        previous = self._trap_signals()
        try:
            with self.destination.deferred_directory_syncs():
                self._copy_all(progress)
            if self.options.catalog_url and not self.stop.is_set():
                # Identical objects already at the destination are its objects too.
                for entry in self.manifest.iterate(
                    SKIPPED, where="action = ? AND catalog_prev_backend IS NULL", params=(SKIP,)
                ):
                    self._update_catalog(entry)
                    self.manifest.save(entry)
        finally:
            progress.close()
            self._restore_signals(previous)
            self.close_catalog()
        if self.stop.is_set():
            self.manifest.set_status("interrupted")
            self.manifest.release()
            raise Interrupted(self.manifest.run_id)
        failed, _ = self.manifest.totals(FAILED)
        self.manifest.set_status("failed" if failed else "completed")
        self.manifest.release()

    def _copy_all(self, progress: Progress) -> None:
        slots = threading.BoundedSemaphore(4 * self.options.workers)
        raised: list[BaseException] = []

        def done(future) -> None:
            if future.exception() is not None:
                raised.append(future.exception())
            slots.release()

        with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
            for entry in self.manifest.iterate(PLANNED, FAILED):
                if self.stop.is_set() or raised:
                    break
                slots.acquire()
                pool.submit(self._copy_one, entry, progress).add_done_callback(done)
        if raised:
            raise raised[0]

    def _discard_debris(self) -> None:
        """What earlier, dead processes of this run left: their spool files and open
        multipart uploads to the keys still to copy."""
        run = self.manifest.run()
        dead = run.pids[:-1]
        if not dead:
            return
        keys = KeysOf(self.manifest, "state", PLANNED, FAILED)
        self.debris = self.destination.discard_debris(pids=dead, keys=keys)
        for item in self.debris:
            log.info("removed debris of an interrupted run", extra={"item": item})

    def _trap_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        handler = lambda signum, frame: self.stop.set()  # noqa: E731
        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous) -> None:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)

    def _copy_one(self, entry: Entry, progress: Progress) -> None:
        if self.stop.is_set():
            return
        try:
            self._transfer(entry, progress)
            if self.options.delete_source:
                self._delete_source(entry)
            if self.options.catalog_url:
                self._update_catalog(entry)
        except Exception as exc:  # one object's failure is recorded; the run goes on
            entry.state, entry.error = FAILED, f"{type(exc).__name__}: {exc}"
            log.warning("object %s failed: %s", entry.key, entry.error)
        self.manifest.save(entry)
        progress.add_object()

    def _on_bytes(self, progress: Progress):
        def on_bytes(n: int) -> None:
            self.limit.take(n)
            progress.add_bytes(n)

        return on_bytes

    # -- copy → verify → record -----------------------------------------------------------

    def _transfer(self, entry: Entry, progress: Progress) -> None:
        if self._adopt_existing(entry):
            return
        if entry.action == OVERWRITE and not entry.backup:
            entry.backup = self.destination.keep_previous(entry.key, self.backup_dir)
            self.manifest.save(entry)
        path = self.source.local_path(entry.name)
        if path is None:
            info = self._copy_stream(entry, progress)
        else:
            info = self._copy_file(entry, path, progress)
        entry.dst_version, entry.written_sha256 = info.version_id, info.sha256
        self.manifest.save(entry)  # on record before anything else can fail
        self._verify_destination(entry, info)

    def _copy_stream(self, entry: Entry, progress: Progress) -> ObjectInfo:
        src, chunks = self.source.open_listed(entry.name)
        self._note_changes(entry, src)
        reader = SourceReader(chunks, self._on_bytes(progress))
        content_type, attributes = self.stamp(entry.key, src, reader.peek(SNIFF_BYTES))
        info = self.destination.put_stream(
            entry.key,
            reader,
            content_type=content_type,
            sha256=entry.src_sha256 or src.sha256,
            attributes=attributes,
        )
        if reader.size != src.size:
            raise StowageError(f"read {reader.size} bytes of {src.size}")
        entry.src_sha256 = info.sha256  # of every byte read, hashed once, as it was stored
        return info

    def _copy_file(self, entry: Entry, path: Path, progress: Progress) -> ObjectInfo:
        """A file on disk: hash it (and the destination's part checksums) first, then let the
        destination read it from disk; the destination's checksum must equal ours."""
        src = self.source.head_local(entry.name, path)
        self._note_changes(entry, src)
        with open(path, "rb") as handle:
            reader = HashingReader(handle, part_size=self.destination.checksum_part_size)
            head = reader.read(SNIFF_BYTES)
            while reader.read(CHUNK_SIZE):
                pass
        if reader.size != src.size:
            raise StowageError(f"{entry.key} changed while it was read")
        entry.src_sha256 = reader.hexdigest()
        content_type, attributes = self.stamp(entry.key, src, head)
        info = self.destination.write_file(
            entry.key,
            path,
            sha256=entry.src_sha256,
            content_type=content_type,
            attributes=attributes,
            stored_checksum=reader.s3_checksum(),
            on_bytes=self._on_bytes(progress),
        )
        now = self.source.head_local(entry.name, path)
        if (now.size, now.modified) != (src.size, src.modified):
            raise StowageError(f"{entry.key} changed during the copy; rerun to copy it again")
        return info

    def stale_copies(self) -> list[str]:
        """Planned again: verified entries whose source has changed since it was copied, so
        a resumed run neither counts nor keeps a stale copy. Told by the source's listing
        (size, modification time, version id), a page of names at a time, not by a request
        per object nor by reading it; returns the keys."""
        stale: list[str] = []
        batch: list[tuple[str, ObjectInfo | None]] = []
        for found in self.source.scan_current():
            if isinstance(found, Unlisted):
                batch.append((found.name, None))
            else:
                batch.append((found.key, found))
            if len(batch) >= STALE_BATCH:
                stale += self._replan_changed(batch)
                batch = []
        return stale + self._replan_changed(batch)

    def _replan_changed(self, listed: list[tuple[str, ObjectInfo | None]]) -> list[str]:
        verified = self.manifest.with_names((name for name, _ in listed), VERIFIED)
        changed = []
        for name, src in listed:
            entry = verified.get(name)
            if entry is None or entry.source_deleted:
                continue
            if src is None:  # a name that is a key only once normalized: ask for its facts
                src = self.source.head_listed(name)
            if _same_source(entry, src):
                continue
            log.info("source %s changed since it was verified; copying it again", entry.key)
            entry.state, entry.src_sha256 = PLANNED, None
            entry.size, entry.src_version = src.size, src.version_id
            entry.src_modified = src.modified.isoformat()
            changed.append(entry)
        self.manifest.add(changed)
        return [entry.key for entry in changed]

    @staticmethod
    def _note_changes(entry: Entry, src: ObjectInfo) -> None:
        """A source object that changed since planning is planned again from what is read now."""
        if (src.size, src.version_id, src.modified.isoformat()) != (
            entry.size,
            entry.src_version,
            entry.src_modified,
        ):
            log.info("source %s changed; re-planned", entry.key)
            entry.size, entry.src_version = src.size, src.version_id
            entry.src_modified, entry.src_sha256 = src.modified.isoformat(), src.sha256

    def _adopt_existing(self, entry: Entry) -> bool:
        """After a crash the destination may already hold this run's complete copy (writes
        are atomic); verify and adopt it instead of copying again. An earlier attempt's
        recorded write that cannot be adopted is undone first, so the record never loses it."""
        if self.first_attempt and not entry.written_sha256:
            return False  # planned from the destination's listing a moment ago: nothing to adopt
        try:
            existing = self.destination.head(entry.key)
        except FileNotFoundError:
            existing = None
        if entry.written_sha256:
            ours = existing is not None and (existing.sha256, existing.version_id) == (
                entry.written_sha256,
                entry.dst_version,
            )
            if ours and self._adopt(entry, existing):
                return True
            self.destination.undo_write(
                entry.key, version_id=entry.dst_version, sha256=entry.written_sha256, previous=None
            )
            entry.written_sha256 = entry.dst_version = None
            self.manifest.save(entry)
            return False
        if entry.action != COPY or existing is None or existing.size != entry.size:
            return False
        return existing.sha256 is not None and self._adopt(entry, existing)

    def _adopt(self, entry: Entry, existing: ObjectInfo) -> bool:
        if not entry.src_sha256:
            entry.src_sha256 = self.source.head_listed(entry.name).sha256 or listed_sha256(
                self.source, entry.name
            )
        if existing.sha256 != entry.src_sha256:
            return False
        self.destination.adopt(entry.key)
        entry.written_sha256, entry.dst_version = existing.sha256, existing.version_id
        self.manifest.save(entry)
        self._verify_destination(entry, existing)
        return True

    def _verify_destination(self, entry: Entry, info: ObjectInfo) -> None:
        actual = self.destination.verified_sha256(entry.key, info)
        if actual != entry.src_sha256:
            raise StowageError(f"destination hash {actual} != source {entry.src_sha256}")
        # No row says verified before its directory is durable; the worker syncs it itself
        # (shared with that directory's other writers), so no commit of rows waits for it.
        self.destination.make_durable(entry.key)
        entry.state, entry.error = VERIFIED, None

    def _delete_source(self, entry: Entry) -> None:
        if entry.state != VERIFIED or entry.source_deleted:
            return
        entry.source_marker = self.source.remove_source(entry.name)
        entry.source_deleted = 1

    def _update_catalog(self, entry: Entry) -> None:
        if entry.state not in (VERIFIED, SKIPPED) or entry.action == CONFLICT:
            return
        catalog = self.open_catalog()
        record = catalog.get_by_key(entry.key)
        if record is None:
            return
        entry.catalog_prev_backend = record.backend
        catalog.update(record.changed(backend=self.destination.name))

    def close_catalog(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def open_catalog(self):
        if self._catalog is None:
            from stowage.catalog import open_catalog

            self._catalog = open_catalog(self.options.catalog_url)
        return self._catalog


def _same_source(entry: Entry, src: ObjectInfo) -> bool:
    """A listing and a HEAD disagree below the millisecond and on whether they name a version;
    neither difference is a change."""
    if src.size != entry.size or not entry.src_modified:
        return src.size == entry.size and not entry.src_modified
    if entry.src_version and src.version_id and entry.src_version != src.version_id:
        return False
    recorded = datetime.fromisoformat(entry.src_modified)
    return int(recorded.timestamp() * 1000) == int(src.modified.timestamp() * 1000)

"""What Stowage does, independent of HTTP: store, find, move, delete, list, clean up.

The API and the CLI call this; it keeps the backend and the catalog consistent. An object
is catalogued only after it is completely in place, and a failed catalog write removes the
object again, so no failure leaves a row without an object or a visible partial object.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stowage.backends import Backend, LocalBackend, build_backend
from stowage.catalog import Catalog, Record, Stats, open_catalog
from stowage.errors import (
    BackendError,
    BadRequest,
    Conflict,
    DiskFull,
    NotFound,
    TooLarge,
)
from stowage.keys import (
    KIND_PREFIX,
    TEMP_PREFIX,
    VARIANTS_PREFIX,
    new_key,
    new_upload_id,
    permanent_key,
    validate_key,
)
from stowage.multipart import MultipartUploads
from stowage.processes import pid_alive
from stowage.service_images import ImageVariants
from stowage.settings import Settings
from stowage.signing import cloudfront_signed_url, sign_file_url
from stowage.sniff import SNIFF_BYTES, sniff, sniffed_type
from stowage.variants import HostVariants

log = logging.getLogger("stowage")


@dataclass(frozen=True)
class Spooled:
    """A complete upload body in a spool file on the media filesystem."""

    path: Path
    sha256: str
    size: int
    head: bytes


# A cleanup over a million rows keeps its memory flat: the report counts everything but
# names only the first REPORT_NAMES of each kind.
REPORT_NAMES = 1000
CLEANUP_BATCH = 500


@dataclass
class CleanupReport:
    deleted_objects: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    orphan_spool_files: list[str] = field(default_factory=list)
    aborted_multipart: list[str] = field(default_factory=list)
    missing_objects: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("deleted_objects", "orphan_spool_files", "aborted_multipart", "missing_objects"), 0
        )
    )

    def note(self, kind: str, name: str) -> None:
        self.counts[kind] += 1
        names = getattr(self, kind)
        if len(names) < REPORT_NAMES:
            names.append(name)

    def deleted(self, key: str, size: int) -> None:
        self.note("deleted_objects", key)
        self.deleted_bytes += size


class Stowage(MultipartUploads, ImageVariants):
    def __init__(self, settings: Settings, backend: Backend, catalog: Catalog) -> None:
        self.settings = settings
        self.backend = backend
        self.catalog = catalog
        # Spool files live on the media filesystem so that a local put is a rename.
        self.spool = LocalBackend(backend.spool_root() or settings.local_root)
        self.variants = HostVariants.from_settings(settings, backend, self._original_of)

    @classmethod
    def from_settings(cls, settings: Settings) -> Stowage:
        catalog = open_catalog(settings.resolved_catalog_url)

        def locate(key: str) -> str | None:
            record = catalog.get_by_key(key)
            return record.backend if record else None

        return cls(settings, build_backend(settings, locate=locate), catalog)

    # -- uploads -----------------------------------------------------------------------

    def check_room(self, expected_bytes: int | None) -> None:
        """Refuse early what cannot fit: over the upload limit (413) or the disk (507)."""
        if expected_bytes is None:
            return
        if expected_bytes > self.settings.max_upload_bytes:
            raise TooLarge(
                f"upload of {expected_bytes} bytes exceeds {self.settings.max_upload_bytes}"
            )
        if expected_bytes > self.spool.free_bytes():
            raise DiskFull("not enough free space on the media filesystem for this upload")

    def store(
        self, kind: str, spooled: Spooled, *, is_temp: bool, filename: str | None = None
    ) -> Record:
        """Give a spooled upload its key, put it in the backend and catalog it. The key's
        extension and the stored type come from the sniffed bytes; the client's file name
        only names the file in an error."""
        try:
            if kind not in KIND_PREFIX:
                raise BadRequest(f"unknown upload kind {kind!r}")
            found = sniffed_type(kind, spooled.head, filename)
            content_type = found.content_type
            upload_id = new_upload_id()
            now = datetime.now(UTC)
            key = new_key(kind, upload_id, found.extension, is_temp=is_temp, now=now)
            info = self.backend.put_file(
                key, spooled.path, sha256=spooled.sha256, content_type=content_type
            )
        finally:
            spooled.path.unlink(missing_ok=True)
        record = Record(
            id=upload_id,
            key=key,
            size=spooled.size,
            sha256=spooled.sha256,
            content_type=content_type,
            is_temp=is_temp,
            backend=info.backend or self.backend.name,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(hours=self.settings.temp_max_age_hours) if is_temp else None,
        )
        self._catalog_or_remove(record)
        return record

    def _catalog_or_remove(self, record: Record) -> None:
        try:
            self.catalog.add(record)
        except BaseException:
            self.backend.delete(record.key)
            raise
        log.info("stored", extra={"upload_id": record.id, "key": record.key, "size": record.size})

    # -- reading -----------------------------------------------------------------------

    def get(self, upload_id: str) -> Record:
        return self.catalog.get(upload_id)

    def download_url(self, record: Record, *, ttl: int | None = None) -> str:
        ttl = ttl or self.settings.signed_url_ttl_seconds
        return self.sign_key(record.key, backend=record.backend, ttl=ttl)

    def sign_key(self, key: str, *, backend: str | None = None, ttl: int | None = None) -> str:
        """A signed, expiring URL for ``key`` wherever it lives."""
        ttl = ttl or self.settings.signed_url_ttl_seconds
        holder = self.backend.side(backend or self._side_of(key))
        url = holder.presign_download(key, expires_in=ttl)
        if url is None:
            return sign_file_url(self.settings.public_base_url, key, self.signing_secret(), ttl=ttl)
        s = self.settings
        if s.cloudfront_domain and s.cloudfront_key_pair_id and s.cloudfront_private_key_file:
            # The bucket the backend signs for is the origin of the distribution.
            return cloudfront_signed_url(
                s.cloudfront_domain,
                s.s3_prefix + key,
                key_pair_id=s.cloudfront_key_pair_id,
                private_key_file=s.cloudfront_private_key_file,
                ttl=ttl,
            )
        return url

    def _side_of(self, key: str) -> str:
        record = self.catalog.get_by_key(key)
        if record:
            return record.backend
        return self.backend.head(validate_key(key)).backend or self.backend.name

    def signing_secret(self) -> str:
        if self.settings.signing_secret is None:
            raise BadRequest("STOWAGE_SIGNING_SECRET is not set")
        return self.settings.signing_secret.get_secret_value()

    def list(self, *, prefix: str, is_temp: bool | None, limit: int, cursor: str | None):
        return self.catalog.list(prefix=prefix, is_temp=is_temp, limit=limit, cursor=cursor)

    def stats(self) -> Stats:
        return self.catalog.stats()

    # -- changing ----------------------------------------------------------------------

    def move_to_permanent(self, upload_id: str) -> Record:
        record = self.catalog.get(upload_id)
        if not record.is_temp:
            raise Conflict(f"upload {upload_id} is already permanent")
        destination = permanent_key(record.key)
        if self.catalog.get_by_key(destination):
            raise Conflict(f"{destination} is already catalogued")
        try:
            info = self.backend.move(record.key, destination)
        except (FileNotFoundError, Conflict, BackendError):
            if self.backend.exists(record.key):
                raise
            self.catalog.get(upload_id)  # 404 if a concurrent delete won
            raise Conflict(f"upload {upload_id} was moved by another request") from None
        moved = record.changed(
            key=destination, is_temp=False, expires_at=None, backend=info.backend or record.backend
        )
        try:
            self.catalog.update(moved, expected_key=record.key)
        except BaseException as exc:
            return self._settle_move(record, destination, exc)
        self.delete_variants(record.key)
        return moved

    def _settle_move(self, record: Record, destination: str, failure: BaseException) -> Record:
        """Our move of the bytes happened but our catalog update did not: agree with the
        row as it is now. Raises ``failure`` unless another request made the same move."""
        current = self.catalog.find(record.id)
        if current is not None and current.key == destination:
            return current  # a concurrent move of the same upload won; same bytes
        if current is None:  # deleted meanwhile: what we moved is nobody's
            with contextlib.suppress(FileNotFoundError):
                self.backend.delete(destination)
        elif current.key == record.key:
            self.backend.move(destination, record.key)
        raise failure

    def delete(self, upload_id: str) -> Record:
        for _ in range(5):
            record = self.catalog.get(upload_id)
            with contextlib.suppress(Conflict):
                self._remove(record)
                return record
        raise Conflict(f"upload {upload_id} keeps changing; try again")

    def _remove(self, record: Record) -> None:
        """Remove a record's bytes (on every side that holds them) and then its row, unless
        a concurrent request moved the row meanwhile (Conflict, row kept)."""
        try:
            self.backend.delete(record.key)
        except FileNotFoundError:
            log.warning("catalogued object was already gone", extra={"key": record.key})
        self.catalog.delete(record.id, expected_key=record.key)
        self.delete_variants(record.key)

    # -- maintenance ---------------------------------------------------------------------

    def cleanup(self, *, older_than: timedelta, dry_run: bool = False) -> CleanupReport:
        """Delete temp objects older than ``older_than`` (catalog first consulted, then the
        backend for temp objects the catalog never knew), orphaned spool files and stale
        multipart uploads."""
        report = CleanupReport()
        cutoff = datetime.now(UTC) - older_than
        batch: list[Record] = []
        for record in self.catalog.temp_created_before(cutoff):
            batch.append(record)
            if len(batch) == CLEANUP_BATCH:
                self._expire(batch, report, dry_run)
                batch = []
        self._expire(batch, report, dry_run)
        in_flight = {session.key for session in self.catalog.sessions()}
        for info in self.backend.list(TEMP_PREFIX):
            if info.key in in_flight:
                continue
            if info.modified < cutoff and self.catalog.get_by_key(info.key) is None:
                report.deleted(info.key, info.size)
                if not dry_run:
                    self.backend.delete(info.key)
        for path in self.spool.spool_files():
            if _orphaned(path, cutoff):
                report.note("orphan_spool_files", path.name)
                if not dry_run:
                    path.unlink(missing_ok=True)
        for session in list(self.catalog.sessions()):
            if session.created_at < datetime.now(UTC) - timedelta(days=7):
                report.note("aborted_multipart", session.id)
                if not dry_run:
                    with contextlib.suppress(NotFound):
                        self.abort_multipart(session.id)
        for directory in self.spool.spool_dir.glob("mpu-*"):
            if directory.stat().st_mtime < time.time() - 7 * 86400 and not dry_run:
                shutil.rmtree(directory, ignore_errors=True)
        return report

    def _expire(self, batch: list[Record], report: CleanupReport, dry_run: bool) -> None:
        """Remove a batch of expired temp records: bytes first, then the rows in one catalog
        write. A row moved to permanent or deleted meanwhile is not ours and stays out."""
        if dry_run:
            for record in batch:
                report.deleted(record.key, record.size)
            return
        for record in batch:
            try:
                self.backend.delete(record.key)
            except FileNotFoundError:
                report.note("missing_objects", record.key)
        for record in self.catalog.remove_rows(batch):
            report.deleted(record.key, record.size)

    def reindex(self) -> dict[str, int]:
        """Rebuild the catalog from what the backend holds: add what is missing, drop rows
        whose object is gone. Returns counts."""
        added = removed = 0
        seen: set[str] = set()
        for info in self.backend.list(""):
            seen.add(info.key)
            if info.key.startswith(VARIANTS_PREFIX) or self.catalog.get_by_key(info.key):
                continue
            full = info if info.sha256 and info.content_type else self.backend.head(info.key)
            sha256 = full.sha256 or self.backend.sha256(info.key)
            upload_id = (
                Path(info.key).stem if _looks_like_id(Path(info.key).stem) else new_upload_id()
            )
            is_temp = info.key.startswith(TEMP_PREFIX)
            created = info.modified.astimezone(UTC)
            self.catalog.add(
                Record(
                    id=upload_id,
                    key=info.key,
                    size=info.size,
                    sha256=sha256,
                    content_type=full.content_type
                    or sniff(b"".join(self.backend.open_range(info.key, 0, SNIFF_BYTES - 1)))
                    or "application/octet-stream",
                    is_temp=is_temp,
                    backend=info.backend or self.backend.name,
                    created_at=created,
                    updated_at=datetime.now(UTC),
                    expires_at=created + timedelta(hours=self.settings.temp_max_age_hours)
                    if is_temp
                    else None,
                )
            )
            added += 1
        for record in list(self.catalog.all()):
            if record.key not in seen:
                self.catalog.delete(record.id)
                removed += 1
        return {"added": added, "removed": removed, "objects": len(seen)}

    def health(self) -> None:
        """Raise unless the catalog answers and the media filesystem takes a write."""
        self.catalog.list(limit=1)
        probe = self.spool.spool_file()
        probe.write_bytes(b"")
        probe.unlink()

    def iter_object(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.backend.open_range(validate_key(key), start, end)

    def close(self) -> None:
        self.catalog.close()


def _looks_like_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def _orphaned(path: Path, cutoff: datetime) -> bool:
    """A spool file whose writer is dead, or that is older than the cleanup age."""
    pid_text = path.name.split("-", 1)[0]
    if pid_text.isdigit():
        pid = int(pid_text)
        if pid != os.getpid() and not pid_alive(pid):
            return True
    return datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff

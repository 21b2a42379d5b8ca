"""Undo exactly what one run wrote.

Each write the run made is on record with its SHA-256 (and version id on a versioned
bucket): only that is removed, what it replaced comes back, and an object changed since the
run is reported and left as it is. Deleted sources come back (S3: the delete marker goes; disk:
written back from the verified copy), and catalog locations are restored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from stowage.backends.base import CHANGED_SINCE
from stowage.backends.readers import ChunkReader
from stowage.errors import StowageError
from stowage.migrate.engine import Migration
from stowage.migrate.manifest import COPY, OVERWRITE, ROLLED_BACK, Entry, KeysOf


@dataclass
class RollbackReport:
    removed: int = 0
    restored: int = 0
    sources_restored: int = 0
    catalog_restored: int = 0
    changed_since: list[str] = field(default_factory=list)
    kept_backups: list[str] = field(default_factory=list)
    debris_removed: list[str] = field(default_factory=list)


def rollback(migration: Migration) -> RollbackReport:
    report = RollbackReport()
    manifest = migration.manifest
    manifest.acquire()
    try:
        # What the run's killed processes left half-written (spool files named by their pids,
        # open multipart uploads to its keys) is its own write too; nobody else's is touched.
        report.debris_removed = migration.destination.discard_debris(
            pids=manifest.run().pids[:-1],
            keys=KeysOf(manifest, "action", COPY, OVERWRITE),
        )
        for entry in manifest.iterate():
            if entry.state != ROLLED_BACK and _undo(migration, entry, report):
                entry.state = ROLLED_BACK
                manifest.save(entry)
    finally:
        migration.close_catalog()
    _prune_backups(migration, report)
    manifest.set_status("rolled-back")
    manifest.release()
    return report


def _undo(migration: Migration, entry: Entry, report: RollbackReport) -> bool:
    touched = False
    if entry.source_deleted:
        _restore_source(migration, entry)
        report.sources_restored += 1
        touched = True
    if entry.catalog_prev_backend and migration.options.catalog_url:
        catalog = migration.open_catalog()
        record = catalog.get_by_key(entry.key)
        if record is not None:
            catalog.update(record.changed(backend=entry.catalog_prev_backend))
            report.catalog_restored += 1
        touched = True
    if entry.written_sha256:
        outcome = migration.destination.undo_write(
            entry.key,
            version_id=entry.dst_version,
            sha256=entry.written_sha256,
            previous=entry.backup,
        )
        entry.undone = outcome
        if outcome == CHANGED_SINCE:
            report.changed_since.append(entry.key)
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
        touched = True
    return touched


def _restore_source(migration: Migration, entry: Entry) -> None:
    if migration.source.undelete(entry.name, entry.source_marker):
        return
    # A disk source comes back from its verified copy at the destination.
    chunks = migration.destination.open_range(entry.key)
    info = migration.source.put_stream(entry.key, ChunkReader(chunks), sha256=entry.src_sha256)
    if info.sha256 != entry.src_sha256:
        raise StowageError(f"restored source {entry.key} does not match its hash")


def _prune_backups(migration: Migration, report: RollbackReport) -> None:
    """Restored backups were moved back into place; any left belong to objects changed since
    the run, and stay for the operator to judge."""
    backup_dir = migration.backup_dir
    if not backup_dir.exists():
        return
    for path in sorted(backup_dir.rglob("*"), reverse=True):
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            report.kept_backups.append(str(path))
    with contextlib.suppress(OSError):
        backup_dir.rmdir()

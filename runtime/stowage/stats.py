"""What the host knows about its own store: disk use, objects and bytes by prefix, the temp
backlog, spool debris and the last cleanup. Shown by ``stowage stats`` and on ``/metrics``.

Disk use, spool files and the last cleanup are read from the media root; objects, bytes and
the temp backlog from the catalog, which keeps them as totals (SQLite) and indexes them, so
neither a scrape nor the command walks a million files. They count what the catalog holds:
objects by their top-level directory (``temp/`` for every temp object), the backlog as temp
objects created longer ago than ``temp_max_age_hours`` (what the next cleanup removes).
Files the catalog does not know (variants, debris) are not counted; ``stowage cleanup`` and
``stowage reindex`` deal with those. The age of the newest Lightsail snapshot is unknown here:
snapshots are listed only by the Lightsail API, and the host holds no AWS credentials
(host-only deployments have none at all).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily

from stowage.backends.local import SPOOL_DIR
from stowage.keys import TEMP_PREFIX
from stowage.settings import Settings, StorageMode

if TYPE_CHECKING:
    from stowage.catalog import Catalog
    from stowage.service import Stowage

# Stowage's own directories under the media root (catalog, spool): not media, not counted.
_INTERNAL = ".stowage"
CLEANUP_MARKER = Path(_INTERNAL) / "last-cleanup.json"
SNAPSHOT_UNKNOWN = (
    "unknown on the host: Lightsail lists snapshots only through its API, and the host has"
    " no AWS credentials (see the console or `aws lightsail get-auto-snapshots`)"
)
# /metrics is scraped often; the catalog's totals are cheap, but DynamoDB's are a table scan.
# The numbers are at most this old.
METRICS_CACHE_SECONDS = 60


@dataclass
class Usage:
    objects: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size


@dataclass
class HostStats:
    root: str
    disk_total_bytes: int
    disk_used_bytes: int
    disk_free_bytes: int
    disk_used_percent: float
    prefixes: dict[str, Usage] = field(default_factory=dict)
    temp_expired: Usage = field(default_factory=Usage)
    temp_max_age_hours: int = 24
    spool: Usage = field(default_factory=Usage)
    last_cleanup_at: str | None = None
    last_cleanup_age_seconds: float | None = None
    newest_snapshot_age_seconds: float | None = None
    newest_snapshot: str = SNAPSHOT_UNKNOWN

    def as_json(self) -> dict:
        return asdict(self)


def _files(directory: Path) -> Iterator[os.DirEntry]:
    """Regular files under ``directory``, never following symbolic links."""
    stack = [directory]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield entry


def on_disk(settings: Settings) -> bool:
    """Whether this service keeps objects on its own disk (local or hybrid mode)."""
    return settings.storage_mode is not StorageMode.S3


def record_cleanup(root: Path, now: datetime | None = None) -> None:
    """Note that a cleanup finished (``stowage cleanup`` calls this after a real run)."""
    marker = Path(root) / CLEANUP_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    spool = marker.with_suffix(".tmp")
    spool.write_text(json.dumps({"finished_at": stamp}))
    os.replace(spool, marker)


def _last_cleanup(root: Path) -> datetime | None:
    try:
        stamp = json.loads((root / CLEANUP_MARKER).read_text())["finished_at"]
        return datetime.fromisoformat(stamp)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def collect(root: Path, *, temp_max_age_hours: int, catalog: Catalog | None) -> HostStats:
    """Measure everything the host can know: the disk from ``root``, objects from ``catalog``
    (None when no object lives on this disk: an S3-mode service, whose catalog may be a
    DynamoDB table that a scrape every minute on every host must not scan)."""
    root = Path(root).resolve()
    disk = shutil.disk_usage(root)
    stats = HostStats(
        root=str(root),
        disk_total_bytes=disk.total,
        disk_used_bytes=disk.used,
        disk_free_bytes=disk.free,
        disk_used_percent=round(100 * disk.used / disk.total, 1) if disk.total else 0.0,
        temp_max_age_hours=temp_max_age_hours,
    )
    for prefix, usage in catalog.stats().by_prefix.items() if catalog else ():
        if prefix:  # a key with no directory has no prefix to count it under
            top = stats.prefixes.setdefault(prefix.split("/", 1)[0] + "/", Usage())
            top.objects += usage["objects"]
            top.bytes += usage["bytes"]
    stats.prefixes = dict(sorted(stats.prefixes.items()))
    expired_before = datetime.now(UTC) - timedelta(hours=temp_max_age_hours)
    if catalog:
        stats.temp_expired = Usage(*catalog.temp_backlog(expired_before))
    for entry in _files(root / SPOOL_DIR):
        stats.spool.add(entry.stat(follow_symlinks=False).st_size)
    finished = _last_cleanup(root)
    if finished is not None:
        stats.last_cleanup_at = finished.isoformat()
        stats.last_cleanup_age_seconds = round((datetime.now(UTC) - finished).total_seconds(), 1)
    return stats


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _age(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours // 24}d {hours % 24}h ago" if hours >= 24 else f"{hours}h {rest // 60}m ago"


def render_table(stats: HostStats) -> str:
    """The terminal view: one aligned table."""
    temp = stats.prefixes.get(TEMP_PREFIX, Usage())
    rows = [
        ("media root", stats.root),
        (
            "disk",
            f"{stats.disk_used_percent}% used, {_size(stats.disk_free_bytes)} free of"
            f" {_size(stats.disk_total_bytes)}",
        ),
        *(
            (f"  {prefix}", f"{usage.objects} objects, {_size(usage.bytes)}")
            for prefix, usage in stats.prefixes.items()
        ),
        ("temp backlog", f"{temp.objects} objects, {_size(temp.bytes)}"),
        (
            f"  older than {stats.temp_max_age_hours}h",
            f"{stats.temp_expired.objects} objects, {_size(stats.temp_expired.bytes)}",
        ),
        ("spool files", f"{stats.spool.objects} files, {_size(stats.spool.bytes)}"),
        (
            "last cleanup",
            f"{stats.last_cleanup_at} ({_age(stats.last_cleanup_age_seconds)})"
            if stats.last_cleanup_at is not None and stats.last_cleanup_age_seconds is not None
            else "never recorded on this host",
        ),
        ("newest snapshot", stats.newest_snapshot),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class HostStatsCollector:
    """Prometheus collector: the same numbers as ``stowage stats``, cached briefly."""

    def __init__(self, service: Callable[[], Stowage]) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._cached: tuple[float, HostStats] | None = None

    def _stats(self) -> HostStats:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > METRICS_CACHE_SECONDS:
                service = self._service()
                stats = collect(
                    service.settings.local_root,
                    temp_max_age_hours=service.settings.temp_max_age_hours,
                    catalog=service.catalog if on_disk(service.settings) else None,
                )
                self._cached = (time.monotonic(), stats)
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self._stats()
        except OSError:
            # No media root on this machine (an S3-only service): nothing to measure here,
            # and /metrics must still answer with the service's own numbers.
            return
        for name, value, text in (
            ("disk_total_bytes", stats.disk_total_bytes, "Size of the media filesystem"),
            ("disk_used_bytes", stats.disk_used_bytes, "Used bytes of the media filesystem"),
            ("disk_free_bytes", stats.disk_free_bytes, "Free bytes of the media filesystem"),
            ("temp_expired_objects", stats.temp_expired.objects, "Temp objects past expiry"),
            ("temp_expired_bytes", stats.temp_expired.bytes, "Bytes of temp objects past expiry"),
            ("spool_files", stats.spool.objects, "Spool files (uploads in flight or debris)"),
            ("spool_bytes", stats.spool.bytes, "Bytes in spool files"),
        ):
            yield GaugeMetricFamily(f"stowage_{name}", text, value=value)
        objects = GaugeMetricFamily(
            "stowage_stored_objects", "Catalogued objects by prefix", labels=["prefix"]
        )
        stored = GaugeMetricFamily(
            "stowage_stored_bytes", "Bytes of catalogued objects by prefix", labels=["prefix"]
        )
        for prefix, usage in stats.prefixes.items():
            objects.add_metric([prefix], usage.objects)
            stored.add_metric([prefix], usage.bytes)
        yield objects
        yield stored
        # Absent until a cleanup ran here: an alert on "no cleanup for a day" must not fire
        # on a zero that means "unknown".
        if stats.last_cleanup_at is not None:
            yield GaugeMetricFamily(
                "stowage_last_cleanup_timestamp_seconds",
                "When the last temp cleanup finished (Unix time)",
                value=datetime.fromisoformat(stats.last_cleanup_at).timestamp(),
            )

"""What a migration needs from the local backend beyond the storage contract: every name
on disk accounted for (names that cannot be keys reported, not skipped), exact undo by the
SHA-256 written, and cleaning up the spool files of a dead run."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stowage.backends.base import (
    CHANGED_SINCE,
    REMOVED,
    RESTORED,
    ObjectInfo,
    Unlisted,
    classify,
    listed_name,
)
from stowage.backends.dirsync import DirectorySyncs
from stowage.errors import InvalidKey, NotFound
from stowage.processes import pid_alive


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _continues(key: str, prefix: str) -> bool:
    """Whether keys after ``key`` (in order) may still lie under ``prefix + "/"``."""
    return key.startswith(prefix) and (len(key) == len(prefix) or key[len(prefix)] <= "/")


class LocalMigration:
    """Mixed into :class:`~stowage.backends.local.LocalBackend` (which provides ``root``,
    ``path_for``, ``_walk``, ``_info``, ``_chunks``, ``_prune`` and the storage methods)."""

    _syncs: DirectorySyncs | None = None  # within deferred_directory_syncs

    def _listed_path(self, name: str) -> Path:
        """The file of a scanned name that is a key once NFC-normalized (see ``listed_name``)."""
        key = unicodedata.normalize("NFC", listed_name(name))
        self.path_for(key)
        path = self.root / name
        # path_for has resolved the key's own path; only another spelling needs its own check.
        if key != name and not path.parent.resolve().is_relative_to(self.root):
            raise InvalidKey("key resolves outside the storage root")
        return path

    @contextmanager
    def deferred_directory_syncs(self) -> Iterator[None]:
        self._syncs = DirectorySyncs(lambda directory: fsync_dir(directory))
        try:
            yield
        finally:
            self._syncs.sync_all()
            self._syncs = None

    def make_durable(self, key: str) -> None:
        """The deferred fsync of the directory ``key`` was renamed into (or adopted in),
        shared with the other writers of that directory who need theirs at the same time."""
        if self._syncs is not None:
            self._syncs.sync((self.root / key).parent)

    def _directory_written(self, directory: Path) -> None:
        """After a rename into ``directory``: its fsync now, or by :meth:`make_durable`."""
        if self._syncs is None:
            fsync_dir(directory)
        else:
            self._syncs.written(directory)

    def check_location(self, *, as_destination: bool = False) -> None:
        if not self.root.is_dir() and not (as_destination and not self.root.exists()):
            raise NotFound(f"{self.root}: no such directory")

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo | Unlisted]:
        others: list[str] = []
        for name in self._walk(self.root, "", prefix, others):
            path = self.root / name
            try:
                size = path.lstat().st_size
            except FileNotFoundError:
                continue
            unlisted = classify(name, size)
            if unlisted is None:
                yield self._info(name, path)
            else:
                yield unlisted
        for name in others:
            yield Unlisted(name, "not a regular file (symlink, socket or device)")

    def cannot_hold(self, keys: Iterable[str]) -> Iterator[tuple[str, str]]:
        """A file cannot also be a directory: ``a`` next to ``a/b``. In key order, every key
        under ``a/`` follows ``a`` with only keys that start with ``a`` and a character
        before ``/`` between them, so only the current key's prefixes are held."""
        prefixes: list[str] = []
        reported: set[str] = set()
        for key in keys:
            while prefixes and not _continues(key, prefixes[-1]):
                reported.discard(prefixes.pop())
            for prefix in prefixes:
                if key[len(prefix) : len(prefix) + 1] == "/" and prefix not in reported:
                    reported.add(prefix)
                    yield prefix, f"{prefix}/ is also a directory of other keys"
            prefixes.append(key)

    def open_listed(self, name: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        path = self._listed_path(name)
        if not path.is_file():
            raise FileNotFoundError(name)
        return self._info(name, path), self._chunks(open(path, "rb"), 0, None)

    def head_listed(self, name: str) -> ObjectInfo:
        path = self._listed_path(name)
        if not path.is_file():
            raise FileNotFoundError(name)
        return self._info(name, path)

    def local_path(self, name: str) -> Path:
        return self._listed_path(name)

    def adopt(self, key: str) -> None:
        self._directory_written(self.path_for(key).parent)

    def head_local(self, name: str, path: Path) -> ObjectInfo:
        if not path.is_file():
            raise FileNotFoundError(name)
        return self._info(name, path)

    def keep_previous(self, key: str, backup_dir: Path) -> str | None:
        """A hard link to the file about to be replaced (no copy, same bytes and xattrs)."""
        old = self.path_for(key)
        if not old.is_file():
            return None
        backup = backup_dir / key
        backup.parent.mkdir(parents=True, exist_ok=True)
        backup.unlink(missing_ok=True)
        os.link(old, backup)
        return str(backup)

    def undo_write(
        self, key: str, *, version_id: str | None, sha256: str, previous: str | None
    ) -> str:
        path = self.path_for(key)
        try:
            current = self.sha256(key)
        except FileNotFoundError:
            return CHANGED_SINCE
        if current != sha256:
            return CHANGED_SINCE
        if previous and Path(previous).is_file():
            os.replace(previous, path)
            fsync_dir(path.parent)
            return RESTORED
        self.delete(key)
        return REMOVED

    def remove_source(self, name: str) -> str | None:
        path = self._listed_path(name)
        path.unlink()
        self._prune(path.parent)
        return None

    def discard_debris(self, *, pids: list[int], keys: Container[str]) -> list[str]:
        """Spool files are named ``{pid}-...part``: remove those of the dead run's pids,
        unless such a pid is alive again (reused by another writer, e.g. the service)."""
        dead = {str(pid) for pid in pids if pid == os.getpid() or not pid_alive(pid)}
        gone = []
        for spool in self.spool_files():
            if spool.name.split("-", 1)[0] in dead:
                spool.unlink(missing_ok=True)
                gone.append(str(spool))
        return gone

"""Local-disk backend: objects are files under a root directory.

Writes go to a spool file on the same filesystem, are fsynced, renamed into place and the
directory fsynced: a crash or a failed upload never leaves a partial object under its key.
Spool files carry the writer's pid, so ``stowage cleanup`` can tell orphans from live work.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from stowage.backends.base import (
    CHUNK_SIZE,
    AssembledDifferently,
    Backend,
    ChecksumMismatch,
    ObjectAttributes,
    ObjectInfo,
)
from stowage.backends.local_migration import LocalMigration, fsync_dir
from stowage.errors import Conflict, DiskFull, InvalidKey, TooLarge
from stowage.keys import RESERVED_SEGMENTS, VARIANTS_PREFIX, validate_key, validate_prefix

SPOOL_DIR = ".stowage-tmp"
# The longest file name ext4, XFS and tmpfs allow (bytes).
NAME_MAX = 255
_RESERVED = RESERVED_SEGMENTS
XATTR_SHA256 = "user.stowage.sha256"
XATTR_TYPE = "user.stowage.content_type"
XATTR_CACHE = "user.stowage.cache_control"
XATTR_META = "user.stowage.metadata"


def disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class LocalBackend(LocalMigration, Backend):
    name = "local"

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = Path(root).resolve()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        self.spool_dir = self.root / SPOOL_DIR

    # -- paths -------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file of ``key``; never outside the root, never inside Stowage's own dirs."""
        validate_key(key)
        if any(len(segment.encode()) > NAME_MAX for segment in key.split("/")):
            # A valid key (S3 holds it) that no file on this disk can be named after.
            raise InvalidKey(f"a segment of the key is longer than {NAME_MAX} bytes")
        path = self.root / key
        # validate_key rules out '..' and absolute keys, so with a resolved root any change
        # made by resolving is a symbolic link (file or directory) below it: never followed.
        if path.resolve() != path:
            raise InvalidKey("key passes through a symbolic link under the storage root")
        return path

    def spool_file(self) -> Path:
        """A new, unique spool path on the media filesystem (caller creates the file)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        return self.spool_dir / f"{os.getpid()}-{os.urandom(8).hex()}.part"

    @staticmethod
    def _write_new(
        path: Path, chunks: Iterable[bytes], *, limit: int | None = None
    ) -> tuple[str, int]:
        """Write ``chunks`` to the new file ``path``; returns (sha256, size). On any failure
        the file is removed; a full disk becomes :class:`DiskFull`."""
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "xb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise TooLarge(f"body exceeds {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise
        return digest.hexdigest(), size

    # -- writes ------------------------------------------------------------------------

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        return self._publish(key, path, sha256, content_type, attributes, replace=True)

    def _publish(
        self,
        key: str,
        path: Path,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
        *,
        replace: bool,
        target: Path | None = None,
    ) -> ObjectInfo:
        """Put the spool file ``path`` in place under ``key`` (at ``target``, its checked
        path, if the caller has it), consuming it. Without ``replace``, an existing object
        stays and :class:`FileExistsError` is raised."""
        target = target or self.path_for(key)
        try:
            self._set_attrs(path, sha256, content_type, attributes)
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            if replace:
                os.replace(path, target)
            else:
                os.link(path, target)  # unlike a rename, fails if the target exists
                path.unlink()
            self._directory_written(target.parent)
        except OSError as exc:
            path.unlink(missing_ok=True)
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise
        return self._info(key, target)

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        target = self.path_for(key)
        spool = self.spool_file()
        written, _ = self._write_new(spool, iter(lambda: stream.read(CHUNK_SIZE), b""))
        if sha256 is not None and written != sha256:
            spool.unlink(missing_ok=True)
            raise ChecksumMismatch(f"{key}: read {written}, expected {sha256}")
        return self._publish(
            key, spool, written, content_type, attributes, replace=True, target=target
        )

    def move(self, source: str, destination: str) -> ObjectInfo:
        src, dst = self.path_for(source), self.path_for(destination)
        if not src.is_file():
            raise FileNotFoundError(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            # link + unlink: fails instead of silently replacing an existing destination.
            os.link(src, dst)
        except FileExistsError:
            raise Conflict(f"{destination} already exists") from None
        try:
            src.unlink()
        except FileNotFoundError:
            # Deleted while we moved it: the delete won, and our link must not outlive it.
            dst.unlink(missing_ok=True)
            raise FileNotFoundError(source) from None
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
        return self.head(destination)

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink()
        except IsADirectoryError:
            raise FileNotFoundError(key) from None
        self._prune(path.parent)

    def set_focal(self, key: str, focal: str | None) -> None:
        """The catalog holds the point; the host's variants of ``key`` are removed (one
        directory, ``variants/{key}/``), to be rendered again around the new one."""
        self.head(key)
        try:
            variants = self.path_for(VARIANTS_PREFIX + key)
        except InvalidKey:  # too long to have variants
            return
        shutil.rmtree(variants, ignore_errors=not variants.exists())

    def _prune(self, directory: Path) -> None:
        """Remove now-empty date directories up to (not including) the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # -- multipart: parts are spool files of their own, assembled on completion ---------

    def _parts_dir(self, handle: str) -> Path:
        if not handle.isalnum():
            raise InvalidKey("malformed multipart handle")
        return self.spool_dir / f"mpu-{handle}"

    def start_multipart(self, key: str, *, content_type: str | None) -> str:
        self.path_for(key)
        handle = os.urandom(12).hex()
        self._parts_dir(handle).mkdir(parents=True)
        return handle

    def part_url(self, key: str, handle: str, number: int, *, expires_in: int) -> None:
        return None

    def receive_part(self, handle: str, number: int, stream: BinaryIO, *, limit: int) -> int:
        directory = self._parts_dir(handle)
        if not directory.is_dir():
            raise FileNotFoundError(handle)
        spool = directory / f".{number:05d}.{os.urandom(4).hex()}.tmp"
        _, size = self._write_new(spool, iter(lambda: stream.read(CHUNK_SIZE), b""), limit=limit)
        os.replace(spool, directory / f"{number:05d}.part")
        return size

    def complete_multipart(
        self, key: str, handle: str, *, parts: int, content_type: str | None = None
    ) -> ObjectInfo:
        directory = self._parts_dir(handle)
        files = [directory / f"{n:05d}.part" for n in range(1, parts + 1)]
        missing = [n for n, f in enumerate(files, 1) if not f.is_file()]
        if missing:
            raise Conflict(f"parts not received yet: {missing[:10]}")
        spool = self.spool_file()
        sha256, _ = self._write_new(spool, self._concatenated(files))
        try:
            info = self._publish(key, spool, sha256, content_type, replace=False)
        except FileExistsError:
            # Another completion of this upload got there first; it may be catalogued
            # already, so it is never replaced, least of all by different bytes.
            info = self.head(key)
            if (info.sha256 or self.sha256(key)) != sha256:
                raise AssembledDifferently(
                    f"{key} was completed meanwhile from other bytes (a part was re-sent)"
                ) from None
        shutil.rmtree(directory, ignore_errors=True)
        return info

    @staticmethod
    def _concatenated(files: list[Path]) -> Iterator[bytes]:
        for part in files:
            with open(part, "rb") as source:
                yield from iter(lambda source=source: source.read(CHUNK_SIZE), b"")

    def abort_multipart(self, key: str, handle: str) -> None:
        directory = self._parts_dir(handle)
        if not directory.is_dir():
            raise FileNotFoundError(handle)
        shutil.rmtree(directory)

    # -- reads -------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        path = self.path_for(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return self._info(key, path)

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.path_for(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except IsADirectoryError:
            raise FileNotFoundError(key) from None
        return self._chunks(handle, start, end)

    @staticmethod
    def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
        with handle:
            handle.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        for key in self._walk(self.root, "", prefix):
            try:
                yield self.head(key)
            except (FileNotFoundError, InvalidKey):
                continue

    def _walk(
        self, directory: Path, base: str, prefix: str, others: list[str] | None = None
    ) -> Iterator[str]:
        """Keys under ``directory`` in key order: a directory sorts as its name plus '/'.
        Names that are neither directories nor regular files go to ``others``."""
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        named = sorted(
            (e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e) for e in entries
        )
        for name, entry in named:
            key = base + name
            if not base and name.rstrip("/") in _RESERVED:
                continue
            if not (key.startswith(prefix) or prefix.startswith(key)):
                continue
            if name.endswith("/"):
                yield from self._walk(Path(entry.path), key, prefix, others)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                yield key
            elif others is not None and key.startswith(prefix):
                others.append(key)

    # -- maintenance -------------------------------------------------------------------

    def spool_root(self) -> Path:
        return self.root

    def spool_files(self) -> Iterator[Path]:
        yield from sorted(self.spool_dir.glob("*.part"))

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    # -- helpers -----------------------------------------------------------------------

    def _info(self, key: str, path: Path) -> ObjectInfo:
        stat = path.stat()
        attrs = self._get_attrs(path)
        metadata = attrs.get(XATTR_META)
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            sha256=attrs.get(XATTR_SHA256),
            content_type=attrs.get(XATTR_TYPE),
            backend=self.name,
            cache_control=attrs.get(XATTR_CACHE),
            metadata=json.loads(metadata) if metadata else None,
        )

    @staticmethod
    def _set_attrs(
        path: Path, sha256: str, content_type: str | None, attributes: ObjectAttributes | None
    ) -> None:
        """Keep the hash, type and copied attributes with the file (extended attributes), so
        reindexing and migration need no re-read; filesystems without xattrs just lose them."""
        values = {XATTR_SHA256: sha256, XATTR_TYPE: content_type}
        if attributes:
            values[XATTR_CACHE] = attributes.cache_control
            if attributes.metadata:
                values[XATTR_META] = json.dumps(attributes.metadata, sort_keys=True)
        try:
            for name, value in values.items():
                if value:
                    os.setxattr(path, name, value.encode())
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.E2BIG):
                raise

    @staticmethod
    def _get_attrs(path: Path) -> dict[str, str]:
        try:
            names = [n for n in os.listxattr(path) if n.startswith("user.stowage.")]
            return {name: os.getxattr(path, name).decode() for name in names}
        except OSError:
            return {}

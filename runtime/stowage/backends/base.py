"""The backend interface every storage backend implements, and its shared types.

Contract (checked by tests/runtime/test_backend_contract.py for every backend):
- every public method validates its key first (:class:`~stowage.errors.InvalidKey`);
- a missing object raises ``FileNotFoundError``; a full disk :class:`~stowage.errors.DiskFull`;
- a write is atomic: readers see the old object or the whole new one, never a part;
- bytes stream in and out in chunks, never a whole object in memory.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from stowage.errors import TooLarge

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    sha256: str | None = None
    content_type: str | None = None
    version_id: str | None = None
    backend: str | None = None


class Backend(ABC):
    """One place objects live. Implementations: ``local`` and ``s3``."""

    name: str

    @abstractmethod
    def put_file(
        self, key: str, path: Path, *, sha256: str, content_type: str | None
    ) -> ObjectInfo:
        """Store the complete file at ``path`` (already hashed) under ``key``, consuming it."""

    @abstractmethod
    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store everything read from ``stream`` under ``key``; the result carries its SHA-256."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Facts about one object."""

    @abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive; ``None`` = to the end) of an object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def move(self, source: str, destination: str) -> ObjectInfo:
        """Rename ``source`` to ``destination`` (which must not exist)."""

    # -- multipart uploads: one contract, the client PUTs numbered parts then completes --

    @abstractmethod
    def start_multipart(self, key: str, *, content_type: str | None) -> str:
        """Begin a multipart upload to ``key``; returns the backend's upload handle."""

    @abstractmethod
    def part_url(self, key: str, handle: str, number: int, *, expires_in: int) -> str | None:
        """A URL the client PUTs part ``number`` to, or ``None`` if the service receives it."""

    def receive_part(self, handle: str, number: int, stream: BinaryIO, *, limit: int) -> int:
        """Store part ``number`` sent to the service (when ``part_url`` is ``None``)."""
        raise NotImplementedError(f"the {self.name} backend receives parts directly")

    @abstractmethod
    def complete_multipart(
        self, key: str, handle: str, *, parts: int, content_type: str | None = None
    ) -> ObjectInfo:
        """Assemble parts 1..``parts`` into the object; the result carries its SHA-256."""

    @abstractmethod
    def abort_multipart(self, key: str, handle: str) -> None:
        """Discard every part received so far."""

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except FileNotFoundError:
            return False
        return True

    def read_all(self, key: str) -> bytes:
        """Whole object in memory: for small objects and tests only."""
        return b"".join(self.open_range(key))

    def sha256(self, key: str) -> str:
        """SHA-256 of the stored bytes, computed by reading them back."""
        digest = hashlib.sha256()
        for chunk in self.open_range(key):
            digest.update(chunk)
        return digest.hexdigest()


class HashingReader:
    """Wraps a binary stream; hashes and counts what passes through, enforcing a size limit."""

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise TooLarge(f"body exceeds {self._limit} bytes")
        self.sha256.update(data)
        return data

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()

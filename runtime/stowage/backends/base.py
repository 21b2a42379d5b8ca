"""The backend interface every storage backend implements, and its shared types.

Contract (checked by tests/runtime/test_backend_contract.py for every backend):
- every public method validates its key first (:class:`~stowage.errors.InvalidKey`);
- a missing object raises ``FileNotFoundError``; a full disk :class:`~stowage.errors.DiskFull`;
- a write is atomic: readers see the old object or the whole new one, never a part;
- bytes stream in and out in chunks, never a whole object in memory.
"""

from __future__ import annotations

import base64
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
    cache_control: str | None = None
    metadata: dict[str, str] | None = None  # user metadata, besides Stowage's own sha256
    kms_key_id: str | None = None


@dataclass(frozen=True)
class ObjectAttributes:
    """What a copy carries over besides bytes and content type."""

    cache_control: str | None = None
    metadata: dict[str, str] | None = None
    kms_key_id: str | None = None


class ChecksumMismatch(Exception):
    """The bytes read did not hash to what the source promised; nothing was kept."""


class Backend(ABC):
    """One place objects live. Implementations: ``local`` and ``s3``."""

    name: str

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        """Store the complete file at ``path`` (already hashed) under ``key``, consuming it."""

    @abstractmethod
    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        """Store everything read from ``stream`` under ``key``; the result carries the SHA-256
        of the bytes stored. With ``sha256`` given, a mismatch removes what was written and
        raises :class:`ChecksumMismatch`."""

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

    def open_object(self, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's facts and its bytes, read consistently (backends may do it in one
        request)."""
        return self.head(key), self.open_range(key)

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


class ChunkReader:
    """A file-like ``read(size)`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class HashingReader:
    """Wraps a binary stream; hashes and counts what passes through, enforcing a size limit.

    With ``part_size`` it also hashes each ``part_size`` slice, to predict the composite
    checksum S3 stores for a multipart upload made with that part size.
    """

    def __init__(self, stream, limit: int | None = None, part_size: int | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self._part_size = part_size
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._parts: list[bytes] = []
        self._part = hashlib.sha256()
        self._part_fill = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise TooLarge(f"body exceeds {self._limit} bytes")
        self.sha256.update(data)
        if self._part_size:
            view = memoryview(data)
            while view:
                take = min(len(view), self._part_size - self._part_fill)
                self._part.update(view[:take])
                self._part_fill += take
                view = view[take:]
                if self._part_fill == self._part_size:
                    self._parts.append(self._part.digest())
                    self._part, self._part_fill = hashlib.sha256(), 0
        return data

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()

    def s3_checksum(self) -> str:
        """Base64 SHA-256 as S3 reports it: of the object, or of the part digests when the
        body was large enough to go up in parts."""
        if not self._part_size or self.size < self._part_size:
            return base64.b64encode(self.sha256.digest()).decode()
        parts = self._parts + ([self._part.digest()] if self._part_fill else [])
        return base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()

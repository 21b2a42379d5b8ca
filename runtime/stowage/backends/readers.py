"""File-like readers the backends and the migration stream bytes through."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

from stowage.errors import TooLarge


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

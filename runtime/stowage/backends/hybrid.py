"""Hybrid backend: a stable share of new keys goes to S3, the rest to local disk.

The gradual-rollout (and rollback) switch: raise the percentage to move new writes to S3,
lower it to bring them back. A key's side depends only on the key, so retries land in the
same place. Reads go where ``locate`` (the catalog) says the object lives, else where the
key hashes, else the other side. A key may live on both sides (a copy-mode migration leaves
it so): ``delete`` and ``move`` act on every side that holds it, or the copy they missed
would be served again.

A multipart handle carries the side it was started on, so parts, completion and abort reach
that side even if the percentage changed meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from stowage.backends.base import Backend, ObjectInfo
from stowage.errors import Conflict
from stowage.keys import validate_key


def s3_share(key: str) -> int:
    """0..99, fixed per key: the percentile that decides where a new key is written."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100


class HybridBackend(Backend):
    name = "hybrid"

    def __init__(
        self,
        local: Backend,
        s3: Backend,
        *,
        s3_percent: int,
        locate: Callable[[str], str | None] | None = None,
    ) -> None:
        self.sides = {local.name: local, s3.name: s3}
        self.local, self.s3 = local, s3
        self.s3_percent = s3_percent
        self.locate = locate

    def for_new(self, key: str) -> Backend:
        return self.s3 if s3_share(validate_key(key)) < self.s3_percent else self.local

    def _candidates(self, key: str) -> list[Backend]:
        first = self.for_new(key)
        order = [first, self.local if first is self.s3 else self.s3]
        if self.locate and (where := self.locate(key)) in self.sides:
            order.remove(self.sides[where])
            order.insert(0, self.sides[where])
        return order

    def _holder(self, key: str) -> Backend:
        for backend in self._candidates(key):
            if backend.exists(key):
                return backend
        raise FileNotFoundError(key)

    def _holders(self, key: str) -> list[Backend]:
        """Every side that holds ``key``, the one reads prefer first."""
        holders = [backend for backend in self._candidates(key) if backend.exists(key)]
        if not holders:
            raise FileNotFoundError(key)
        return holders

    def put_file(self, key, path: Path, *, sha256, content_type, attributes=None) -> ObjectInfo:
        return self.for_new(key).put_file(
            key, path, sha256=sha256, content_type=content_type, attributes=attributes
        )

    def put_stream(
        self, key, stream: BinaryIO, *, content_type=None, sha256=None, attributes=None
    ) -> ObjectInfo:
        return self.for_new(key).put_stream(
            key, stream, content_type=content_type, sha256=sha256, attributes=attributes
        )

    def head(self, key: str) -> ObjectInfo:
        return self._holder(key).head(key)

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._holder(key).open_range(key, start, end)

    def delete(self, key: str) -> None:
        for holder in self._holders(key):
            with contextlib.suppress(FileNotFoundError):
                holder.delete(key)

    def set_focal(self, key: str, focal: str | None) -> None:
        for holder in self._holders(key):
            holder.set_focal(key, focal)

    def move(self, source: str, destination: str) -> ObjectInfo:
        validate_key(destination)
        holders = self._holders(source)
        if any(side.exists(destination) for side in (self.local, self.s3)):
            raise Conflict(f"{destination} already exists")
        moved = [holder.move(source, destination) for holder in holders]
        return moved[0]

    def spool_root(self) -> Path | None:
        return self.local.spool_root()

    def side(self, name: str) -> Backend:
        return self.sides[name] if name in self.sides else super().side(name)

    def presign_download(self, key: str, *, expires_in: int) -> str | None:
        return self._holder(key).presign_download(key, expires_in=expires_in)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        merged = {info.key: info for side in (self.local, self.s3) for info in side.list(prefix)}
        for key in sorted(merged):
            yield merged[key]

    def start_multipart(self, key: str, *, content_type: str | None) -> str:
        side = self.for_new(key)
        return f"{side.name}:{side.start_multipart(key, content_type=content_type)}"

    def _session_side(self, handle: str, key: str | None = None) -> tuple[Backend, str]:
        name, sep, inner = handle.partition(":")
        if sep and name in self.sides:
            return self.sides[name], inner
        # Handles from before sides were recorded in them.
        return (self.for_new(key) if key else self.local), handle

    def part_url(self, key: str, handle: str, number: int, *, expires_in: int) -> str | None:
        side, inner = self._session_side(handle, key)
        return side.part_url(key, inner, number, expires_in=expires_in)

    def receive_part(self, handle: str, number: int, stream: BinaryIO, *, limit: int) -> int:
        side, inner = self._session_side(handle)
        return side.receive_part(inner, number, stream, limit=limit)

    def complete_multipart(self, key, handle, *, parts, content_type=None) -> ObjectInfo:
        side, inner = self._session_side(handle, key)
        return side.complete_multipart(key, inner, parts=parts, content_type=content_type)

    def abort_multipart(self, key: str, handle: str) -> None:
        side, inner = self._session_side(handle, key)
        side.abort_multipart(key, inner)

"""Request bodies streamed to a spool file on the media filesystem, with bounded memory.

Starlette's own form parsing spools parts over 1 MiB to ``$TMPDIR`` before a handler runs
(a full /tmp then shows up as an opaque 400). Here the raw body or the ``file`` part of a
multipart form goes straight from ``request.stream()`` to a spool file next to the media,
hashed on the way, with the size limit enforced as bytes arrive. The bytes are never
joined or copied in Python: chunks go to the file with ``writev`` as they came.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from stowage.backends.local import disk_full
from stowage.errors import BadRequest, DiskFull, TooLarge
from stowage.service import Spooled
from stowage.sniff import SNIFF_BYTES

# A batch of received chunks is hashed and written by a worker thread while the event loop
# collects the next one: hashlib releases the GIL on large buffers, so hashing, the write
# and receiving overlap. At most two batches are held (one in flight, one collecting).
BATCH_BYTES = 1024 * 1024
IOV_MAX = 1024


def _write_all(fd: int, chunks: list[bytes | memoryview]) -> None:
    """One writev per up to IOV_MAX chunks, no joining copy; partial writes resumed."""
    views = [memoryview(chunk) for chunk in chunks if len(chunk)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + IOV_MAX])
        while written:
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


class SpoolWriter:
    """Streams chunks into a new spool file, hashed on the way, with bounded memory."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""
        self._sha = hashlib.sha256()
        self._batch: list[bytes | memoryview] = []
        self._batched = 0
        self._in_flight: asyncio.Future | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)

    async def write(self, chunk: bytes | memoryview) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(f"upload exceeds the limit of {self.limit} bytes")
        if len(self.head) < SNIFF_BYTES:
            self.head += bytes(chunk[: SNIFF_BYTES - len(self.head)])
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= BATCH_BYTES:
            await self._submit()

    def _hash_and_write(self, chunks: list[bytes | memoryview]) -> None:
        for chunk in chunks:
            self._sha.update(chunk)
        _write_all(self._fd, chunks)

    async def _submit(self) -> None:
        await self._settle()
        chunks, self._batch, self._batched = self._batch, [], 0
        loop = asyncio.get_running_loop()
        self._in_flight = loop.run_in_executor(None, self._hash_and_write, chunks)

    async def _settle(self) -> None:
        """Wait for the batch in flight; its write error is this upload's error."""
        if self._in_flight is None:
            return
        in_flight, self._in_flight = self._in_flight, None
        try:
            await in_flight
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise

    async def finish(self) -> Spooled:
        await self._submit()
        await self._settle()
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise
        return Spooled(path=self.path, sha256=self._sha.hexdigest(), size=self.size, head=self.head)

    def discard(self) -> None:
        """Remove the spool file. A batch still being written keeps the descriptor until
        it is done, so the file is closed and removed when the worker thread lets go."""

        def remove(done: asyncio.Future | None = None) -> None:
            if done is not None and not done.cancelled():
                done.exception()  # retrieved: the upload already failed for its own reason
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
            self.path.unlink(missing_ok=True)

        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            remove()
        else:
            in_flight.add_done_callback(remove)


async def spool_raw(request: Request, path: Path, limit: int) -> Spooled:
    """The whole request body, as sent."""
    writer = SpoolWriter(path, limit)
    try:
        async for chunk in request.stream():
            await writer.write(chunk)
        spooled = await writer.finish()
    except BaseException:
        writer.discard()
        raise
    if spooled.size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest("empty body")
    return spooled


async def spool_form_file(request: Request, path: Path, limit: int) -> tuple[Spooled, str | None]:
    """The ``file`` part of a multipart/form-data body, and its file name."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")

    writer = SpoolWriter(path, limit)
    state: dict = {
        "headers": {},
        "field": b"",
        "value": b"",
        "in_file": False,
        "seen": False,
        "filename": None,
        "pending": [],
    }

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        is_file = options.get(b"name") == b"file" and not state["seen"]
        state["in_file"] = is_file
        if is_file:
            state["seen"] = True
            raw = options.get(b"filename")
            state["filename"] = raw.decode("utf-8", "replace") if raw else None
        state["headers"] = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            # A view of the chunk we passed in; the parser's own look-behind buffer is
            # reused, so what comes from it is copied.
            piece = memoryview(data)[start:end] if type(data) is bytes else data[start:end]
            state["pending"].append(piece)

    def on_part_end() -> None:
        state["in_file"] = False

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except Exception as exc:  # the parser's errors are the client's malformed body
                raise BadRequest(f"malformed multipart body: {exc}") from None
            for piece in state["pending"]:
                await writer.write(piece)
            state["pending"].clear()
        parser.finalize()
        spooled = await writer.finish()
    except BaseException:
        writer.discard()
        raise
    if not state["seen"]:
        path.unlink(missing_ok=True)
        raise BadRequest("multipart form has no 'file' field")
    if spooled.size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest("the uploaded file is empty")
    return spooled, state["filename"]


async def spool_bytes(data: bytes, path: Path, limit: int) -> Spooled:
    writer = SpoolWriter(path, limit)
    try:
        await writer.write(data)
        return await writer.finish()
    except BaseException:
        writer.discard()
        raise

"""Request bodies streamed to a spool file on the media filesystem, with bounded memory.

Starlette's own form parsing spools parts over 1 MiB to ``$TMPDIR`` before a handler runs
(a full /tmp then shows up as an opaque 400). Here the raw body or the ``file`` part of a
multipart form goes straight from ``request.stream()`` to a spool file next to the media,
hashed on the way, with the size limit enforced as bytes arrive.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from stowage.backends.local import disk_full
from stowage.errors import BadRequest, DiskFull, TooLarge
from stowage.service import Spooled
from stowage.sniff import SNIFF_BYTES

FLUSH_BYTES = 1024 * 1024


class SpoolWriter:
    """Collects chunks into a new spool file; flushes ~1 MiB at a time off the event loop."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""
        self._sha = hashlib.sha256()
        self._buffer = bytearray()
        self._file = open(path, "xb")  # noqa: SIM115 - closed in finish/discard

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(f"upload exceeds the limit of {self.limit} bytes")
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._sha.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        try:
            await anyio.to_thread.run_sync(self._file.write, data)
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise

    async def finish(self) -> Spooled:
        await self._flush()
        try:
            await anyio.to_thread.run_sync(self._file.close)
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise
        return Spooled(path=self.path, sha256=self._sha.hexdigest(), size=self.size, head=self.head)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


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
            state["pending"].append(data[start:end])

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

"""Serving object bytes: to API clients by key, and behind signed ``/files/`` links.

Behind Nginx (``STOWAGE_BEHIND_NGINX``) a local object is handed to Nginx with
``X-Accel-Redirect`` so no media byte passes through Python; ``/files/`` links are then
verified and served by Nginx alone and never reach the service.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from stowage.api.deps import Authorized, ServiceDep
from stowage.backends.base import ObjectInfo
from stowage.errors import StowageError
from stowage.keys import validate_key
from stowage.service import Stowage
from stowage.signing import verify_file_url
from stowage.sniff import ALLOWED

router = APIRouter(tags=["files"])

INTERNAL_PREFIX = "/_stowage_internal/"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
# Stored bytes are never a page: no type sniffing, no script, no same-origin access.
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
_SERVABLE = {content_type for types in ALLOWED.values() for content_type in types}


def served_type(stored: str | None) -> str:
    """The Content-Type to send: a media type Stowage accepts, else an opaque download.

    Whatever the catalog or an object's metadata says (an old version, a client-declared
    type, a file placed on disk by hand), ``text/html`` or ``image/svg+xml`` never go out."""
    base = (stored or "").split(";", 1)[0].strip().lower()
    return base if base in _SERVABLE else "application/octet-stream"


class RangeNotSatisfiable(StowageError):
    status = 416
    code = "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range, ``None`` for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # unsupported forms (several ranges): serve the whole file, as allowed
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(f"bytes */{size}")
        start, end = max(size - length, 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start > end:
            raise RangeNotSatisfiable(f"bytes */{size}")
    if start >= size:
        raise RangeNotSatisfiable(f"bytes */{size}")
    return start, end


async def stream_object(service: Stowage, info: ObjectInfo, request: Request) -> Response:
    span = parse_range(request.headers.get("range"), info.size)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        **MEDIA_HEADERS,
    }
    if info.sha256:
        headers["ETag"] = f'"{info.sha256}"'
    media_type = served_type(info.content_type)
    if request.method == "HEAD":
        headers["Content-Length"] = str(info.size)
        return Response(status_code=200, headers=headers, media_type=media_type)
    start, end = span if span else (0, info.size - 1)
    chunks = await run_in_threadpool(service.iter_object, info.key, start, end)
    headers["Content-Length"] = str(max(end - start + 1, 0))
    if span:
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    return StreamingResponse(
        _iterate(chunks), status_code=206 if span else 200, headers=headers, media_type=media_type
    )


async def _iterate(chunks):
    iterator = iter(chunks)
    sentinel = object()
    while (chunk := await run_in_threadpool(next, iterator, sentinel)) is not sentinel:
        yield chunk


@router.get(
    "/api/files/{key:path}",
    dependencies=[Authorized],
    summary="An object's bytes by key (range requests supported)",
)
async def get_file(key: str, request: Request, service: ServiceDep) -> Response:
    validate_key(key)
    info = await run_in_threadpool(service.backend.head, key)
    if service.settings.behind_nginx and info.backend == "local":
        return Response(
            headers={
                "X-Accel-Redirect": INTERNAL_PREFIX + quote(key, safe="/"),
                # Nginx keeps this type for the redirected answer and adds the media headers.
                "Content-Type": served_type(info.content_type),
                **MEDIA_HEADERS,
            }
        )
    return await stream_object(service, info, request)


@router.get(
    "/files/{key:path}",
    summary="A signed download link (verified by Nginx when it is in front)",
)
async def signed_file(
    key: str,
    request: Request,
    service: ServiceDep,
    expires: str | None = None,
    md5: str | None = None,
) -> Response:
    validate_key(key)
    verify_file_url(key, expires, md5, service.signing_secret())
    info = await run_in_threadpool(service.backend.head, key)
    return await stream_object(service, info, request)


router.head("/api/files/{key:path}", dependencies=[Authorized], include_in_schema=False)(get_file)
router.head("/files/{key:path}", include_in_schema=False)(signed_file)

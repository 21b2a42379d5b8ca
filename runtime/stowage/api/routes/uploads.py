"""Uploads: store, inspect, download, move, delete, list, clean up, stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from stowage.api.bodies import spool_bytes, spool_form_file, spool_raw
from stowage.api.deps import Authorized, ServiceDep
from stowage.api.models import (
    CleanupOut,
    StatsOut,
    TranscriptText,
    UploadList,
    UploadOut,
)
from stowage.errors import NotFound
from stowage.keys import validate_prefix
from stowage.service import Stowage

router = APIRouter(prefix="/api/upload", tags=["uploads"], dependencies=[Authorized])

IsTemp = Annotated[bool, Query(description="Store under temp/ (expires) instead of permanent.")]

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Raw body; name the file in the X-Filename header.",
            },
        },
    }
}


async def receive(request: Request, service: Stowage, kind: str, is_temp: bool) -> UploadOut:
    length = request.headers.get("content-length")
    service.check_room(int(length) if length and length.isdigit() else None)
    spool_path = service.spool.spool_file()
    limit = service.settings.max_upload_bytes
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        spooled, filename = await spool_form_file(request, spool_path, limit)
    else:
        spooled = await spool_raw(request, spool_path, limit)
        header = request.headers.get("x-filename")
        filename = unquote(header) if header else None
    record = await run_in_threadpool(
        service.store, kind, spooled, is_temp=is_temp, filename=filename
    )
    request.app.state.metrics.uploaded(kind, record.size)
    return UploadOut.of(record, service.download_url(record))


def _upload_route(path: str, kind: str, summary: str):
    @router.post(
        path,
        status_code=status.HTTP_201_CREATED,
        response_model=UploadOut,
        summary=summary,
        openapi_extra=_BODY_DOC,
        name=f"upload_{kind}",
    )
    async def upload(request: Request, service: ServiceDep, is_temp: IsTemp = False) -> UploadOut:
        return await receive(request, service, kind, is_temp)

    return upload


_upload_route("/video", "video", "Upload a video")
_upload_route("/image", "image", "Upload an image")
_upload_route("/transcript-file", "transcript", "Upload a transcript file")


@router.post(
    "/transcript-text",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    summary="Store transcript text sent as JSON",
)
async def upload_transcript_text(
    body: TranscriptText, request: Request, service: ServiceDep, is_temp: IsTemp = False
) -> UploadOut:
    data = body.content.encode("utf-8")
    service.check_room(len(data))
    spooled = await spool_bytes(data, service.spool.spool_file(), service.settings.max_upload_bytes)
    record = await run_in_threadpool(
        service.store,
        "transcript",
        spooled,
        is_temp=is_temp,
        filename=body.filename or "transcript.txt",
    )
    request.app.state.metrics.uploaded("transcript", record.size)
    return UploadOut.of(record, service.download_url(record))


@router.get("", response_model=UploadList, summary="List uploads in creation order")
def list_uploads(
    service: ServiceDep,
    prefix: str = "",
    is_temp: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> UploadList:
    validate_prefix(prefix)
    records, next_cursor = service.list(prefix=prefix, is_temp=is_temp, limit=limit, cursor=cursor)
    return UploadList(
        items=[UploadOut.of(r, service.download_url(r)) for r in records], next_cursor=next_cursor
    )


@router.post("/cleanup-temp", response_model=CleanupOut, summary="Delete expired temp uploads")
def cleanup_temp(
    service: ServiceDep, hours: Annotated[float, Query(gt=0, le=24 * 3650)] = 24
) -> CleanupOut:
    report = service.cleanup(older_than=timedelta(hours=hours))
    return CleanupOut(
        deleted_objects=report.counts["deleted_objects"],
        deleted_bytes=report.deleted_bytes,
        orphan_spool_files=report.counts["orphan_spool_files"],
        aborted_multipart=report.counts["aborted_multipart"],
    )


@router.get("/stats/overview", response_model=StatsOut, summary="Totals by prefix and backend")
def stats(service: ServiceDep) -> StatsOut:
    totals = service.stats()
    return StatsOut.model_validate(totals.__dict__)


@router.get("/{upload_id}", response_model=UploadOut, summary="An upload's metadata")
def get_upload(upload_id: str, service: ServiceDep) -> UploadOut:
    record = service.get(upload_id)
    return UploadOut.of(record, service.download_url(record))


@router.get(
    "/{upload_id}/download",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    response_class=RedirectResponse,
    summary="Redirect to a signed, expiring URL",
)
def download(upload_id: str, service: ServiceDep) -> RedirectResponse:
    record = service.get(upload_id)
    return RedirectResponse(
        service.download_url(record), status_code=307, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/{upload_id}/move-to-permanent", response_model=UploadOut, summary="Keep a temp upload"
)
def move_to_permanent(upload_id: str, service: ServiceDep) -> UploadOut:
    record = service.move_to_permanent(upload_id)
    return UploadOut.of(record, service.download_url(record))


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an upload, or abort a multipart upload",
)
def delete_upload(upload_id: str, service: ServiceDep) -> None:
    try:
        service.abort_multipart(upload_id)
        return
    except NotFound:
        pass
    service.delete(upload_id)

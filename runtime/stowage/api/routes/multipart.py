"""Resumable multipart uploads: one contract whether parts go to S3 or to the service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from stowage.api.deps import Authorized, ServiceDep
from stowage.api.models import MultipartIn, MultipartOut, PartOut, UploadOut
from stowage.backends.readers import ChunkReader
from stowage.signing import verify_part

router = APIRouter(prefix="/api/upload", tags=["multipart"])


@router.post(
    "/multipart",
    status_code=status.HTTP_201_CREATED,
    response_model=MultipartOut,
    dependencies=[Authorized],
    summary="Start a multipart upload; PUT each part to its URL, then complete",
)
def start(body: MultipartIn, service: ServiceDep) -> MultipartOut:
    session, urls = service.start_multipart(
        body.kind,
        size=body.size,
        filename=body.filename,
        content_type=body.content_type,
        is_temp=body.is_temp,
    )
    return MultipartOut(id=session.id, key=session.key, part_size=session.part_size, part_urls=urls)


def _pulled(request: Request) -> Iterator[bytes]:
    """The async request body, chunk by chunk, for code running in a worker thread."""
    stream = request.stream().__aiter__()
    while True:
        try:
            yield anyio.from_thread.run(stream.__anext__)
        except StopAsyncIteration:
            return


@router.put(
    "/{upload_id}/parts/{number}",
    response_model=PartOut,
    summary="Receive one part (local backend; the URL is signed, no bearer token needed)",
)
async def put_part(
    upload_id: str,
    number: Annotated[int, Path(ge=1, le=10_000)],
    request: Request,
    service: ServiceDep,
    expires: Annotated[str | None, Query(max_length=12)] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> PartOut:
    verify_part(upload_id, number, expires, signature, service.signing_secret())

    def receive() -> int:
        return service.receive_part(upload_id, number, ChunkReader(_pulled(request)))

    size = await run_in_threadpool(receive)
    return PartOut(part=number, size=size)


@router.post(
    "/{upload_id}/complete",
    response_model=UploadOut,
    dependencies=[Authorized],
    summary="Assemble the parts into the object",
)
def complete(upload_id: str, request: Request, service: ServiceDep) -> UploadOut:
    record = service.complete_multipart(upload_id)
    request.app.state.metrics.uploaded(record.key.split("/")[0], record.size)
    return UploadOut.of(record, service.download_url(record))

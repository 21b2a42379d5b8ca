"""An image's focal point: where its ``cover`` variants centre their crop."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from stowage.api.deps import Authorized, ServiceDep
from stowage.api.models import FocalPoint, UploadOut

router = APIRouter(prefix="/api/upload", tags=["uploads"], dependencies=[Authorized])


@router.put(
    "/{upload_id}/focal-point",
    response_model=UploadOut,
    summary="Set where cover variants of an image centre (x, y in 0-1 from the top left)",
)
async def set_focal_point(upload_id: str, body: FocalPoint, service: ServiceDep) -> UploadOut:
    record = await run_in_threadpool(service.set_focal_point, upload_id, (body.x, body.y))
    return UploadOut.of(record, service.download_url(record))


@router.delete(
    "/{upload_id}/focal-point",
    response_model=UploadOut,
    summary="Clear an image's focal point: cover variants take the automatic centre",
)
async def clear_focal_point(upload_id: str, service: ServiceDep) -> UploadOut:
    record = await run_in_threadpool(service.set_focal_point, upload_id, None)
    return UploadOut.of(record, service.download_url(record))

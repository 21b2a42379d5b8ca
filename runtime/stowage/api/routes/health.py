"""Liveness and metrics (no token: scraped by monitoring on the host)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from stowage.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the catalog answers and the storage root is writable")
async def healthz(service: ServiceDep) -> dict[str, str]:
    await run_in_threadpool(service.health)
    return {"status": "ok", "mode": service.settings.storage_mode.value}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")

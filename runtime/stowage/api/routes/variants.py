"""``GET /variants/{original_key}/{w}x{h}[-cover].{fmt}``: a variant Nginx did not find on
disk (its ``try_files`` hands the miss here). No token: Nginx has already checked the
signature of a private prefix (without Nginx in front, the service checks it itself)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from stowage.api.deps import ServiceDep
from stowage.api.routes.files import MEDIA_HEADERS
from stowage.errors import NotFound
from stowage.variants import Busy

router = APIRouter(tags=["variants"])
RETRY_AFTER_SECONDS = 2


# HEAD too: Nginx answers HEAD for a stored variant, so a miss must not be a 405.
@router.api_route("/variants/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def variant(request: Request, service: ServiceDep, path: str) -> Response:
    if service.variants is None:
        raise NotFound("image variants are not configured on this host")
    # The path as sent (percent-encoded): the core decodes the key itself, as at the edge.
    raw = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
    try:
        body, content_type = await service.variants.get(
            raw,
            expires=request.query_params.get("expires"),
            md5=request.query_params.get("md5"),
        )
    except Busy as exc:
        request.app.state.metrics.failed(exc.code)
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )
    headers = {**MEDIA_HEADERS, "Cache-Control": service.variants.config.cache_control}
    return Response(body, media_type=content_type, headers=headers)

"""The FastAPI application: routers, the error contract, metrics and access logs."""

from __future__ import annotations

import errno
import logging
import re
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from stowage import __version__
from stowage.api.guard import Guard
from stowage.api.metrics import Metrics
from stowage.api.models import ErrorOut
from stowage.api.observe import Observe
from stowage.api.routes import files, focal, health, multipart, uploads, variants
from stowage.errors import DiskFull, InvalidKey, StowageError
from stowage.service import Stowage
from stowage.settings import Settings, load_settings
from stowage.stats import HostStatsCollector

log = logging.getLogger("stowage.api")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_type",
    416: "range_not_satisfiable",
}


_ERRORS = {
    400: "Bad input (key, parameters, body)",
    401: "No bearer token",
    403: "Wrong token or signature",
    404: "No such upload or object",
    409: "Conflicts with what is stored",
    413: "Over the upload limit",
    415: "Content type not allowed for this kind",
    507: "Media filesystem full",
}


def error(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods documented for the path the router matched (Starlette's own 405 names
    only the first route's, and FastAPI serves each method of a path from its own route)."""
    route = request.scope.get("route")
    documented = request.app.openapi()["paths"].get(getattr(route, "path", None), {})
    # Routes left out of the document (the variants Nginx hands over) name their own.
    return sorted(method.upper() for method in documented or getattr(route, "methods", ()))


def create_app(service: Stowage | None = None, settings: Settings | None = None) -> FastAPI:
    """The app; builds its service from the environment unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service is None:
            app.state.service = Stowage.from_settings(settings or load_settings())
        yield
        app.state.service.close()

    app = FastAPI(
        title="Stowage",
        version=__version__,
        description="Media-file storage on local disk or S3: uploads, signed downloads, cleanup.",
        lifespan=lifespan,
        redirect_slashes=False,
        # Every route may answer the error contract; the document says so.
        responses={
            status: {"model": ErrorOut, "description": description}
            for status, description in _ERRORS.items()
        },
    )
    if service is not None:
        app.state.service = service
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(HostStatsCollector(lambda: app.state.service))
    generate = app.openapi

    def openapi() -> dict:
        # Validation errors are answered as 400 with the error contract, never FastAPI's 422.
        schema = generate()
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        return schema

    app.openapi = openapi
    for module in (health, multipart, uploads, focal, files, variants):
        app.include_router(module.router)

    @app.exception_handler(StowageError)
    async def stowage_error(request: Request, exc: StowageError) -> JSONResponse:
        request.app.state.metrics.failed(exc.code)
        if exc.status >= 500:
            log.error("request failed", extra={"error": exc.code, "detail": exc.detail})
        return error(exc.status, exc.code, exc.detail)

    @app.exception_handler(FileNotFoundError)
    async def missing(request: Request, exc: FileNotFoundError) -> JSONResponse:
        request.app.state.metrics.failed("not_found")
        return error(404, "not_found", "no such object")

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        # ENOSPC can surface from any write on the upload path (spool, catalog, temp files).
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return await stowage_error(request, DiskFull("no space left on the media filesystem"))
        return await unexpected(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.app.state.metrics.failed("bad_request")
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error(400, "bad_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        request.app.state.metrics.failed(code)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {"Allow": ", ".join(allowed_methods(request))}
        if exc.status_code == 404 and _CONTROL.search(request.scope["path"]):
            # Path parameters do not match a newline: the route exists, the key is bad.
            return await stowage_error(request, InvalidKey("the path holds a control character"))
        return error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> JSONResponse:
        request.app.state.metrics.failed("client_disconnected")
        return error(400, "client_disconnected", "the client went away before the body ended")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request.app.state.metrics.failed("internal_error")
        log.exception("unhandled error", extra={"path": request.url.path})
        return error(500, "internal_error", "internal error (see the service log)")

    # Added before Observe, so it runs inside it: refusals are logged and timed too.
    app.add_middleware(Guard)
    app.add_middleware(Observe)

    return app

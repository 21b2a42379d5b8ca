"""Authentication and body limits before any route reads a byte of the body.

FastAPI reads and parses body parameters before it runs dependencies, so a token check in a
dependency comes after the whole body is in memory. This ASGI middleware runs first: every
``/api/`` request without a valid bearer token is answered 401/403 with its body unread, and
every body that is not a streamed upload is capped at ``STOWAGE_MAX_JSON_BYTES`` while it is
read (413). Streamed uploads keep their own limit (``STOWAGE_MAX_UPLOAD_BYTES``), enforced
by the spool writer as bytes arrive.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stowage.errors import Forbidden, StowageError, TooLarge, Unauthorized

# Routes whose bodies are streamed to disk by the route itself, never held in memory.
_STREAMED = (
    ("POST", re.compile(r"/api/upload/(video|image|transcript-file)")),
    # Multipart parts are authorized by their signed URL, checked before the body is read.
    ("PUT", re.compile(r"/api/upload/[^/]+/parts/[^/]+")),
)


def check_token(header: str, tokens: Iterable[SecretStr]) -> None:
    """``Authorization: Bearer <token>`` with one of the configured tokens, or raise."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    presented = token.strip().encode("utf-8", "surrogateescape")
    # Compare against every token so the time taken does not reveal which one matched.
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(candidate.get_secret_value().encode(), presented)
    if not matched:
        raise Forbidden("invalid token")


def _streamed(method: str, path: str) -> bool:
    return any(method == m and pattern.fullmatch(path) for m, pattern in _STREAMED)


class Guard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings = state.service.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        try:
            if not _streamed(method, path):
                check_token(headers.get("authorization", ""), settings.api_tokens)
                receive = await _capped(receive, headers, settings.max_json_bytes)
            elif method == "POST":
                check_token(headers.get("authorization", ""), settings.api_tokens)
        except StowageError as exc:
            state.metrics.failed(exc.code)
            # The answer goes out before the body is read; the server discards what follows.
            response = JSONResponse({"error": exc.code, "detail": exc.detail}, exc.status)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _capped(receive: Receive, headers: dict[str, str], limit: int) -> Receive:
    """The whole body read here (at most ``limit`` bytes), replayed to the app."""
    length = headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise TooLarge(f"request body exceeds the limit of {limit} bytes")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _replay([message])
        body += message.get("body", b"")
        if len(body) > limit:
            raise TooLarge(f"request body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):
            break
    return _replay([{"type": "http.request", "body": bytes(body), "more_body": False}], receive)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def replayed() -> Message:
        if messages:
            return messages.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return replayed

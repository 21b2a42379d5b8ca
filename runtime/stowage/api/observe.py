"""Latency metrics and one access-log line per request, as a pure ASGI middleware.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) relays every body message of
every request through a memory stream between two tasks; on a 1 GiB streamed upload that
relay was a visible share of the service's CPU. This one only wraps ``send`` to see the
status line.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("stowage.api")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            # The router writes the matched route into this same scope dict.
            template = getattr(scope.get("route"), "path", "unmatched")
            scope["app"].state.metrics.latency.labels(
                scope["method"], template, str(status)
            ).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

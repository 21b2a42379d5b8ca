"""Typed dependencies shared by the routers."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from stowage.errors import Forbidden, Unauthorized
from stowage.service import Stowage


def get_service(request: Request) -> Stowage:
    return request.app.state.service


def require_token(request: Request) -> None:
    """``Authorization: Bearer <token>`` with one of the configured tokens."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    tokens = request.app.state.service.settings.api_tokens
    # Compare against every token so the time taken does not reveal which one matched.
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(
            candidate.get_secret_value().encode(), token.strip().encode()
        )
    if not matched:
        raise Forbidden("invalid token")


ServiceDep = Annotated[Stowage, Depends(get_service)]
Authorized = Depends(require_token)

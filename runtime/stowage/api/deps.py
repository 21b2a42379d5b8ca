"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stowage.api.guard import check_token
from stowage.service import Stowage

# Documents the scheme in the OpenAPI document; the Guard middleware has already checked the
# token before any body was read, and this checks it again on every protected route.
_bearer = HTTPBearer(auto_error=False, description="One of STOWAGE_API_TOKENS")


def get_service(request: Request) -> Stowage:
    return request.app.state.service


def require_token(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    check_token(
        request.headers.get("authorization", ""), request.app.state.service.settings.api_tokens
    )


ServiceDep = Annotated[Stowage, Depends(get_service)]
Authorized = Depends(require_token)

"""The error contract: every failure a user can cause or see maps to one of these.

Backends raise ``FileNotFoundError`` for a missing object (like a filesystem would); the
service layer and API translate the rest from these classes, each with its HTTP status.
"""


class StowageError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidKey(StowageError, ValueError):
    status = 400
    code = "invalid_key"


class BadRequest(StowageError):
    status = 400
    code = "bad_request"


class Unauthorized(StowageError):
    status = 401
    code = "unauthorized"


class Forbidden(StowageError):
    status = 403
    code = "forbidden"


class NotFound(StowageError):
    status = 404
    code = "not_found"


class Conflict(StowageError):
    status = 409
    code = "conflict"


class Expired(StowageError):
    status = 410
    code = "expired"


class TooLarge(StowageError):
    status = 413
    code = "too_large"


class UnsupportedType(StowageError):
    status = 415
    code = "unsupported_type"


class DiskFull(StowageError):
    status = 507
    code = "insufficient_storage"


class BackendError(StowageError):
    status = 502
    code = "backend_error"

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


# --- what an operator sees: one line and an exit status ------------------------------------

EXIT_OK = 0
EXIT_LEFT_BEHIND = 1  # objects failed, conflicted or were reported; differences; a check alert
EXIT_USAGE = 2  # bad arguments, settings or key
EXIT_MISSING = 3  # a bucket, directory, object or run that does not exist
EXIT_DENIED = 4  # no credentials, or access denied
EXIT_FAILED = 5  # the operation itself failed (backend unreachable, disk full, ...)
EXIT_INTERRUPTED = 130


def describe(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, one line) for an error an operator can cause; ``None`` for a bug."""
    if isinstance(exc, InvalidKey | BadRequest):
        return EXIT_USAGE, exc.detail
    if isinstance(exc, NotFound):
        return EXIT_MISSING, exc.detail
    if isinstance(exc, Unauthorized | Forbidden):
        return EXIT_DENIED, exc.detail
    if isinstance(exc, StowageError):
        return EXIT_FAILED, exc.detail
    if isinstance(exc, FileNotFoundError):
        return EXIT_MISSING, f"no such object or file: {exc.filename or exc.args[0]}"
    if isinstance(exc, PermissionError):
        return EXIT_DENIED, f"permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError):
        return EXIT_FAILED, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return _describe_boto(exc)


def _describe_boto(exc: BaseException) -> tuple[int, str] | None:
    import sys

    if "botocore" not in sys.modules:
        return None
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return EXIT_DENIED, "no AWS credentials found (AWS_ACCESS_KEY_ID, profile or role)"
    if isinstance(exc, EndpointConnectionError):
        return EXIT_FAILED, f"cannot reach {exc.kwargs.get('endpoint_url', 'the S3 endpoint')}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = f"S3 {exc.operation_name}: {code} {error.get('Message', '')}".strip()
        if code in ("NoSuchBucket", "NoSuchKey", "404"):
            return EXIT_MISSING, message
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return EXIT_DENIED, message
        return EXIT_FAILED, message
    if isinstance(exc, BotoCoreError):
        return EXIT_FAILED, str(exc)
    return None

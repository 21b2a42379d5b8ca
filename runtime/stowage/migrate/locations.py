"""Where a migration reads and writes: ``s3://bucket/prefix`` or a local directory."""

from __future__ import annotations

import os
from pathlib import Path

from stowage.backends import Backend, LocalBackend
from stowage.errors import BadRequest


def open_location(text: str) -> Backend:
    """The backend for a location; nothing is created (a dry run writes nothing)."""
    if text.startswith("s3://"):
        from stowage.backends.s3 import S3Backend

        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise BadRequest(f"{text}: no bucket name")
        prefix = prefix.strip("/")
        return S3Backend(
            bucket,
            prefix=f"{prefix}/" if prefix else "",
            endpoint_url=os.environ.get("STOWAGE_S3_ENDPOINT_URL"),
            kms_key_id=os.environ.get("STOWAGE_KMS_KEY_ID"),
        )
    if "://" in text:
        raise BadRequest(f"{text}: locations are s3://bucket/prefix or a local path")
    return LocalBackend(Path(text), create=False)

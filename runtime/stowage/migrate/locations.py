"""Where a migration reads and writes: ``s3://bucket/prefix`` or a local directory."""

from __future__ import annotations

import os
from pathlib import Path

from stowage.backends import Backend, LocalBackend
from stowage.errors import BadRequest, InvalidKey
from stowage.keys import validate_prefix


def open_location(text: str) -> Backend:
    """The backend for a location; nothing is created (a dry run writes nothing)."""
    if text.startswith("s3://"):
        from stowage.backends.s3 import S3Backend

        bucket = text.removeprefix("s3://").partition("/")[0]
        if not bucket:
            raise BadRequest(f"{text}: no bucket name")
        return S3Backend(
            bucket,
            prefix=key_prefix(text),
            endpoint_url=os.environ.get("STOWAGE_S3_ENDPOINT_URL"),
            kms_key_id=os.environ.get("STOWAGE_KMS_KEY_ID"),
        )
    if "://" in text:
        raise BadRequest(f"{text}: locations are s3://bucket/prefix or a local path")
    return LocalBackend(Path(text), create=False)


def key_prefix(text: str) -> str:
    """What a location puts before every key: ``a/b/`` for ``s3://bucket/a/b``, nothing for a
    directory. It is judged by the same rules as a key, so ``s3://b/../x`` is refused."""
    if not text.startswith("s3://"):
        return ""
    prefix = text.removeprefix("s3://").partition("/")[2].strip("/")
    try:
        return validate_prefix(f"{prefix}/" if prefix else "")
    except InvalidKey as exc:
        raise InvalidKey(f"{text}: the prefix is not a valid key: {exc}") from None


def refuse_nesting(source: str, destination: str) -> None:
    """Two local directories where one holds the other: a copy would read its own writes."""
    if "://" in source or "://" in destination:
        return
    src, dst = Path(source).resolve(), Path(destination).resolve()
    if src.is_relative_to(dst) or dst.is_relative_to(src):
        raise BadRequest(f"{source} and {destination}: one directory is inside the other")

"""Storage backends and the factory that builds the configured one.

The S3 backend (and boto3, ~25 MiB of memory) is imported only when a mode needs it, so a
local-disk service on a 2 GB host stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stowage.backends.base import Backend, ObjectInfo
from stowage.backends.hybrid import HybridBackend
from stowage.backends.local import LocalBackend
from stowage.settings import Settings, StorageMode

if TYPE_CHECKING:
    from stowage.backends.s3 import S3Backend

__all__ = ["Backend", "HybridBackend", "LocalBackend", "ObjectInfo", "S3Backend", "build_backend"]


def __getattr__(name: str):
    if name == "S3Backend":
        from stowage.backends.s3 import S3Backend

        return S3Backend
    raise AttributeError(name)


def build_backend(settings: Settings, locate: Callable[[str], str | None] | None = None) -> Backend:
    local = LocalBackend(settings.local_root)
    if settings.storage_mode is StorageMode.LOCAL:
        return local
    from stowage.backends.s3 import S3Backend

    s3 = S3Backend(
        settings.s3_bucket,
        prefix=settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        kms_key_id=settings.kms_key_id,
        spool_dir=local.spool_dir,
    )
    if settings.storage_mode is StorageMode.S3:
        return s3
    return HybridBackend(local, s3, s3_percent=settings.hybrid_s3_percent, locate=locate)

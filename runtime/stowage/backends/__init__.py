"""Storage backends and the factory that builds the configured one."""

from collections.abc import Callable

from stowage.backends.base import Backend, ObjectInfo
from stowage.backends.hybrid import HybridBackend
from stowage.backends.local import LocalBackend
from stowage.backends.s3 import S3Backend
from stowage.settings import Settings, StorageMode

__all__ = ["Backend", "HybridBackend", "LocalBackend", "ObjectInfo", "S3Backend", "build_backend"]


def build_backend(settings: Settings, locate: Callable[[str], str | None] | None = None) -> Backend:
    local = LocalBackend(settings.local_root)
    if settings.storage_mode is StorageMode.LOCAL:
        return local
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

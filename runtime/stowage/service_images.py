"""The service's side of image variants: focal points and retiring an original's variants."""

from __future__ import annotations

import logging

from stowage.backends import Backend, LocalBackend
from stowage.catalog import Catalog, Record
from stowage.errors import NotFound, UnsupportedType
from stowage.images.focal import focal_text, parse_focal

log = logging.getLogger("stowage")


class ImageVariants:
    backend: Backend
    catalog: Catalog
    spool: LocalBackend

    def set_focal_point(self, upload_id: str, focal: tuple[float, float] | None) -> Record:
        """Where ``cover`` variants of an image centre (None: the automatic centre): kept
        with the original (``Backend.set_focal``, which retires its variants), then in the
        catalog row, unless a concurrent request moved the row meanwhile (Conflict)."""
        record = self.catalog.get(upload_id)
        if not record.content_type.startswith("image/"):
            raise UnsupportedType(f"upload {upload_id} is {record.content_type}, not an image")
        text = focal_text(focal) if focal else None
        try:
            self.backend.set_focal(record.key, text)
        except FileNotFoundError:
            raise NotFound(f"the bytes of upload {upload_id} are gone") from None
        updated = record.changed(focal_point=parse_focal(text))
        self.catalog.update(updated, expected_key=record.key)
        self.delete_variants(record.key)  # the host's disk, which in s3 mode is no side
        return updated

    def _original_of(self, key: str) -> Record | None:
        return self.catalog.get_by_key(key)

    def delete_variants(self, key: str) -> None:
        """Remove the image variants of ``key`` wherever they are stored: the backend's
        sides (the edge's in the bucket, the host's on disk) and the disk Nginx serves
        from, which in s3 mode is not a side of the backend."""
        for store in (self.backend, self.spool):
            removed = store.delete_variants(key)
            if removed:
                log.info("variants deleted", extra={"key": key, "count": len(removed)})

"""Catalog implementations and the factory that picks one from ``STOWAGE_CATALOG_URL``."""

from stowage.catalog.base import Catalog, MultipartSession, Record, Stats

__all__ = ["Catalog", "MultipartSession", "Record", "Stats", "open_catalog"]


def open_catalog(url: str) -> Catalog:
    """``sqlite:///PATH`` or ``dynamodb://TABLE`` (endpoint from ``AWS_ENDPOINT_URL_DYNAMODB``)."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        from stowage.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(Path(url.removeprefix("sqlite://")))
    if url.startswith("dynamodb://"):
        from stowage.catalog.dynamodb import DynamoCatalog

        return DynamoCatalog(url.removeprefix("dynamodb://"))
    raise ValueError(f"unsupported catalog URL {url!r}")

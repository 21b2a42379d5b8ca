"""Response and request bodies (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from stowage.catalog import Record


class FocalPoint(BaseModel):
    """Where ``cover`` variants centre, as fractions of the width and height from the top left."""

    model_config = ConfigDict(strict=True)

    x: float = Field(ge=0, le=1, allow_inf_nan=False)
    y: float = Field(ge=0, le=1, allow_inf_nan=False)


class UploadOut(BaseModel):
    id: str
    key: str
    size: int
    sha256: str
    content_type: str
    is_temp: bool
    created_at: datetime
    download_url: str
    backend: str
    focal_point: FocalPoint | None = None

    @classmethod
    def of(cls, record: Record, download_url: str) -> UploadOut:
        derived = ("download_url", "focal_point")
        facts = {name: getattr(record, name) for name in cls.model_fields if name not in derived}
        focal = record.focal_point
        return cls(
            **facts,
            download_url=download_url,
            focal_point=FocalPoint(x=focal[0], y=focal[1]) if focal else None,
        )


class UploadList(BaseModel):
    items: list[UploadOut]
    next_cursor: str | None


class TranscriptText(BaseModel):
    # Request bodies are taken as documented: no 0 for false, no "5" for 5.
    model_config = ConfigDict(strict=True)

    content: str = Field(min_length=1)
    filename: str | None = None


class MultipartIn(BaseModel):
    model_config = ConfigDict(strict=True)

    kind: str = Field(pattern="^(video|image|transcript)$")
    size: int = Field(gt=0)
    filename: str | None = Field(default=None, max_length=255)
    content_type: str | None = Field(default=None, max_length=255)
    is_temp: bool = False


class MultipartOut(BaseModel):
    id: str
    key: str
    part_size: int
    part_urls: list[str]


class PartOut(BaseModel):
    part: int
    size: int


class CleanupOut(BaseModel):
    deleted_objects: int
    deleted_bytes: int
    orphan_spool_files: int
    aborted_multipart: int


class GroupStats(BaseModel):
    objects: int
    bytes: int


class StatsOut(BaseModel):
    objects: int
    bytes: int
    temp_objects: int
    temp_bytes: int
    by_prefix: dict[str, GroupStats]
    by_backend: dict[str, GroupStats]


class ErrorOut(BaseModel):
    error: str
    detail: str

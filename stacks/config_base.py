"""The deployment config's building blocks: its errors, field types and strict base model,
and the sub-models small enough to stand alone (``stacks.config`` assembles them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from stacks.config_checks import key_prefix, media_prefix, region, ssh_cidr, web_origin


class ConfigError(Exception):
    """A deployment config that cannot be used; the message says where and why."""


class FieldError(ValueError):
    """A rule across fields that one field breaks: reported at that field's path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


Region = Annotated[str, AfterValidator(region)]
Prefix = Annotated[str, AfterValidator(key_prefix)]
MediaPrefix = Annotated[str, AfterValidator(key_prefix), AfterValidator(media_prefix)]
Cidr = Annotated[str, AfterValidator(ssh_cidr)]
Origin = Annotated[str, AfterValidator(web_origin)]
DomainName = Annotated[
    str,
    Field(max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"),
]


class _Model(BaseModel):
    """Strict base: unknown fields are errors, so a typo never silently means a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WatermarkConfig(_Model):
    """An overlay drawn on image variants of some prefixes (issue 14, item 4)."""

    overlay_key: str = Field(
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_./-]{0,254}\.(png|webp)$",
        description="Key of the overlay (PNG or WebP, alpha kept) in the media bucket; the"
        " resizer may read exactly this key.",
    )
    prefixes: list[Prefix] = Field(
        min_length=1, description="Variants of originals under these prefixes are marked."
    )
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"] = (
        "bottom-right"
    )
    opacity: float = Field(default=0.5, gt=0, le=1)
    scale_percent: float = Field(
        default=20, gt=0, le=100, description="The overlay's width as a share of the variant's."
    )
    margin_percent: float = Field(
        default=2, ge=0, le=25, description="Gap to the edges as a share of the shorter side."
    )

    @model_validator(mode="after")
    def _overlay_is_a_plain_key(self) -> WatermarkConfig:
        if any(s in ("", ".", "..") for s in self.overlay_key.split("/")):
            raise FieldError("overlay_key", "must have no empty, '.' or '..' segments")
        if self.overlay_key.startswith("variants/"):
            raise FieldError("overlay_key", "must not lie under variants/ (rendered variants)")
        return self

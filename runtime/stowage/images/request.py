"""What a variant request is, what the deployment allows, and the one parser of variant paths.

Variant paths: ``/variants/{original_key}/{w}x{h}.{fmt}`` (``fit``: inside the box; ``h`` = 0
keeps the aspect ratio) and ``/variants/{original_key}/{w}x{h}-cover.{fmt}`` (``cover``: fill
the box, crop the rest). Sizes come from the configured allowlist, written without leading
zeros; ``fmt`` is avif|webp|jpeg|png. Every variant of an original lies under
``variants/{original_key}/``, so one wildcard invalidation (or one directory) covers them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from stowage.errors import InvalidKey
from stowage.keys import VARIANTS_PREFIX, validate_key

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
FITS = ("fit", "cover")
_PATH = re.compile(
    r"^/variants/(?P<key>.+)/(?P<w>\d{1,5})x(?P<h>\d{1,5})(?P<cover>-cover)?\.(?P<fmt>[a-z]+)$"
)


# One spelling per key, as the CloudFront Function's validKey decides at the edge: an
# escaped unreserved character (%69 for i), sub-delimiter, ':' or '@', an escaped slash or
# backslash, a lower-case escape or a dot segment would decode into the same key as another
# URL (and past a prefix's location on the host). stowage.keys.url_path writes this spelling.
_NON_CANONICAL = re.compile(
    r"%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e|2f|5c|2[146-9a-c]|3[abd]|40)", re.I
)
_LOWER_HEX = re.compile(r"%(?:[a-f][0-9a-fA-F]|[0-9A-F][a-f])")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")


def _canonical_spelling(raw_key: str) -> None:
    if _NON_CANONICAL.search(raw_key) or _LOWER_HEX.search(raw_key) or _DOT_SEGMENT.search(raw_key):
        raise VariantError(
            400, "invalid original key: one spelling, percent-encoding only what needs it"
        )


class VariantError(Exception):
    """A request the resizer refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class VariantConfig:
    widths: tuple[int, ...]
    heights: tuple[int, ...] = (0,)
    formats: tuple[str, ...] = ("avif", "webp", "jpeg", "png")
    # Sizes allowed besides widths x heights, each (w, h) with both > 0.
    boxes: tuple[tuple[int, int], ...] = ()
    fits: tuple[str, ...] = FITS
    quality: dict[str, int] = field(default_factory=lambda: {"jpeg": 82, "webp": 80, "avif": 55})
    max_source_bytes: int = 50 * 1024 * 1024
    max_source_pixels: int = 50_000_000
    # Lambda@Edge caps a generated response at 1 MB and counts the base64 body.
    max_response_bytes: int = 1_000_000
    avif_speed: int = 9  # libaom speed 9: ~6x faster than 8 here at a similar size
    cache_control: str = "public, max-age=31536000, immutable"
    source_prefixes: tuple[str, ...] = ("images/",)
    # The animation budget; the edge's is derived from its memory and timeout at synth.
    max_animation_frames: int = 300
    max_animation_input_pixels: int = 100_000_000
    max_animation_output_pixels: int = 40_000_000

    @classmethod
    def from_json(cls, data: dict) -> VariantConfig:
        return cls(
            widths=tuple(data["widths"]),
            heights=tuple(data.get("heights", (0,))),
            formats=tuple(data.get("formats", cls.formats)),
            boxes=tuple((int(w), int(h)) for w, h in data.get("boxes", ())),
            # A bundle written before fit modes existed knows only "fit".
            fits=tuple(data.get("fits", ("fit",))),
            quality=dict(data.get("quality", {})) or {"jpeg": 82, "webp": 80, "avif": 55},
            max_source_bytes=data.get("max_source_bytes", cls.max_source_bytes),
            max_source_pixels=data.get("max_source_pixels", cls.max_source_pixels),
            # Required: a bundle that does not say which prefixes have variants serves none.
            source_prefixes=tuple(data["source_prefixes"]),
            max_animation_frames=data["max_animation_frames"],
            max_animation_input_pixels=data["max_animation_input_pixels"],
            max_animation_output_pixels=data["max_animation_output_pixels"],
        )

    def allows(self, width: int, height: int, fit: str) -> bool:
        """Whether the allowlist has this size in this fit mode: ``fit`` at widths x heights
        and at the boxes, ``cover`` only where both sides are given (> 0)."""
        if fit not in self.fits or (fit == "cover" and not (width and height)):
            return False
        return (width in self.widths and height in self.heights) or ((width, height) in self.boxes)

    def describe_sizes(self) -> str:
        boxes = ", ".join(f"{w}x{h}" for w, h in self.boxes)
        return (
            f"widths {list(self.widths)}, heights {list(self.heights)}"
            + (f", boxes [{boxes}]" if boxes else "")
            + f"; fits {list(self.fits)}"
        )


@dataclass(frozen=True)
class VariantRequest:
    original_key: str
    width: int
    height: int
    fmt: str
    fit: str = "fit"

    @property
    def variant_key(self) -> str:
        suffix = "-cover" if self.fit == "cover" else ""
        return f"variants/{self.original_key}/{self.width}x{self.height}{suffix}.{self.fmt}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


def parse_variant_uri(uri: str, config: VariantConfig) -> VariantRequest:
    """``/variants/images/a.jpg/800x0.webp`` -> request, or :class:`VariantError` (4xx).

    Everything a request can be refused for is decided here, before any byte is read."""
    match = _PATH.match(uri)
    if not match:
        raise VariantError(
            400, "expected /variants/{original_key}/{w}x{h}[-cover].{avif|webp|jpeg|png}"
        )
    _canonical_spelling(match["key"])
    try:
        key = validate_key(unquote(match["key"], errors="strict"))
    except (InvalidKey, UnicodeDecodeError) as exc:
        raise VariantError(400, f"invalid original key: {exc}") from None
    if key.startswith(VARIANTS_PREFIX):
        raise VariantError(400, "a variant of a variant is not served")
    if not key.startswith(config.source_prefixes):
        raise VariantError(
            403, f"variants are served only for originals under {', '.join(config.source_prefixes)}"
        )
    width, height, fmt = int(match["w"]), int(match["h"]), match["fmt"]
    fit = "cover" if match["cover"] else "fit"
    if (match["w"], match["h"]) != (str(width), str(height)):
        # One spelling per variant: another would be a second cache entry and stored object.
        raise VariantError(400, f"size must be written {width}x{height} (no leading zeros)")
    if fmt not in config.formats:
        raise VariantError(400, f"format {fmt!r} not allowed ({', '.join(config.formats)})")
    if not config.allows(width, height, fit):
        raise VariantError(
            400, f"size {width}x{height} ({fit}) not allowed ({config.describe_sizes()})"
        )
    request = VariantRequest(key, width, height, fmt, fit)
    try:
        validate_key(request.variant_key)
    except InvalidKey as exc:
        raise VariantError(400, f"the original key is too long to have variants: {exc}") from None
    return request

"""An optional watermark on image variants: an overlay image (a key in the media bucket)
drawn at a corner or the centre, at a configured opacity, on variants of configured
prefixes. Off unless the deployment config has ``cdn.watermark``.

The adapter (the edge handler, the host's service) fetches the overlay once and
:func:`prepare` decodes it; ``render(..., watermark=...)`` calls :meth:`Watermark.apply` on
the finished frames, so the overlay is drawn at the variant's own scale and never resized
with the photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
# An overlay is a logo, not a photo: more pixels than this is a misconfiguration, refused
# before decoding.
MAX_OVERLAY_PIXELS = 4096 * 4096


class WatermarkError(Exception):
    """The configured overlay cannot be used (missing, not an image, too large)."""


@dataclass(frozen=True)
class WatermarkSettings:
    key: str
    prefixes: tuple[str, ...]
    position: str = "bottom-right"
    opacity: float = 0.5
    # The overlay's width as a share of the variant's width (its height follows).
    scale: float = 0.2
    # The gap to the variant's edges as a share of its shorter side.
    margin: float = 0.02

    @classmethod
    def from_json(cls, data: dict | None) -> WatermarkSettings | None:
        if not data:
            return None
        return cls(
            key=data["key"],
            prefixes=tuple(data["prefixes"]),
            position=data["position"],
            opacity=data["opacity"],
            scale=data["scale"],
            margin=data["margin"],
        )

    def applies_to(self, original_key: str) -> bool:
        return original_key.startswith(self.prefixes)


@dataclass(frozen=True)
class Watermark:
    """A decoded overlay (RGBA, the opacity already in its alpha) and where it goes."""

    overlay: Image.Image
    settings: WatermarkSettings

    def apply(self, frames: list[Image.Image]) -> list[Image.Image]:
        """The frames (all one size) with the overlay drawn on each."""
        size, box = self._placement(frames[0].size)
        if size is None:
            return frames
        overlay = self.overlay.resize(size, Image.Resampling.LANCZOS)
        return [_draw(frame, overlay, box) for frame in frames]

    def _placement(self, variant: tuple[int, int]):
        """(overlay size, top-left corner) on a variant of this size, or (None, None) when
        the variant is too small to hold a visible mark."""
        width, height = variant
        margin = round(min(width, height) * self.settings.margin)
        ow, oh = self.overlay.size
        scale = min(width * self.settings.scale / ow, (height - 2 * margin) / oh)
        size = (round(ow * scale), round(oh * scale))
        if min(size) < 1 or size[0] > width - 2 * margin:
            return None, None
        if self.settings.position == "center":
            return size, ((width - size[0]) // 2, (height - size[1]) // 2)
        vertical, _, horizontal = self.settings.position.partition("-")
        top = margin if vertical == "top" else height - margin - size[1]
        left = margin if horizontal == "left" else width - margin - size[0]
        return size, (left, top)


def _draw(frame: Image.Image, overlay: Image.Image, box: tuple[int, int]) -> Image.Image:
    if frame.mode in ("RGBA", "LA"):
        # Composited, not pasted: a transparent variant keeps its own alpha under the mark.
        canvas = frame.convert("RGBA")
        canvas.alpha_composite(overlay, box)
        return canvas.convert(frame.mode)
    frame = frame.copy()
    frame.paste(overlay.convert(frame.mode), box, mask=overlay.getchannel("A"))
    return frame


def prepare(overlay: bytes, settings: WatermarkSettings) -> Watermark:
    """Decode the overlay once (any alpha kept) and fold the opacity into its alpha."""
    try:
        image = Image.open(io.BytesIO(overlay), formats=("PNG", "WEBP"))
        if image.width * image.height > MAX_OVERLAY_PIXELS:
            raise WatermarkError(
                f"watermark overlay {settings.key} has over {MAX_OVERLAY_PIXELS} pixels"
            )
        image = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WatermarkError(
            f"watermark overlay {settings.key} is not a decodable image ({exc})"
        ) from None
    alpha = image.getchannel("A").point(lambda value: round(value * settings.opacity))
    image.putalpha(alpha)
    image.info = {}
    return Watermark(image, settings)

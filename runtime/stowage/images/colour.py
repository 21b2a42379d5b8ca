"""Colour: the modes the encoders take, and embedded ICC profiles converted to sRGB.

Every variant is written without a profile: browsers take untagged images as sRGB, so the
pixels are converted into sRGB first and colours do not shift when the profile is dropped."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Pillow mode -> (the ICC colour space it holds, the mode its sRGB conversion is written in).
_ICC_MODES = {
    "RGB": ("RGB", "RGB"),
    "RGBA": ("RGB", "RGBA"),
    "CMYK": ("CMYK", "RGB"),
    "L": ("GRAY", "RGB"),
}
# Modes converted to an 8-bit mode before their profile is applied (LittleCMS takes these
# only through their 8-bit forms here).
NEEDS_8_BIT = ("P", "I;16", "I;16B", "I;16L", "I")


def to_rgb_family(image: Image.Image, fmt: str) -> Image.Image:
    """Modes the encoders take: CMYK and 16-bit to 8-bit RGB/L, palette expanded, alpha
    flattened onto white for JPEG (which has none)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    if fmt == "jpeg" and image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return image


def srgb_transform(icc: bytes | None, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from an embedded profile to sRGB, or None: no profile, or one that does
    not fit the pixels or does not parse, which is dropped (the pixels are taken as sRGB, as
    a browser would take them untagged) rather than failing the request."""
    if not icc or mode not in _ICC_MODES:
        return None
    space, out_mode = _ICC_MODES[mode]
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space.strip() != space:
            return None
        return ImageCms.buildTransform(profile, _SRGB, mode, out_mode, ImageCms.Intent.PERCEPTUAL)
    except (OSError, ImageCms.PyCMSError):
        return None

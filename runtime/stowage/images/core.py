"""The pure core of the image resizer: decode (guarded), crop, resize and encode a variant.

No AWS and no HTTP here: the edge handler and the host's service fetch and store, this
package decides and draws, so every case is testable with real image files and nothing else.
``request`` parses variant paths against the allowlist; ``crop`` places ``cover`` crops
(focal point, else an automatic attention-like centre); ``colour`` converts to sRGB;
``animation`` budgets and renders animated inputs.

Colour: an embedded ICC profile (Display P3, Adobe RGB, CMYK) is converted to sRGB and every
variant is written without a profile, EXIF (GPS), XMP or comment: browsers take untagged
images as sRGB, and a variant must not leak where a photo was taken.

HEIC/HEIF inputs (phone photos) decode through pillow-heif, under the same pixel budget.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from stowage.images.animation import animated_frames, animation
from stowage.images.colour import NEEDS_8_BIT, srgb_transform, to_rgb_family
from stowage.images.crop import cover_box, decode_box, output_size, saliency_centre
from stowage.images.request import (
    CONTENT_TYPES,
    VariantConfig,
    VariantError,
    VariantRequest,
    parse_variant_uri,
)

__all__ = [
    "CONTENT_TYPES",
    "MAX_OUTPUT_SIDE",
    "Rendered",
    "VariantConfig",
    "VariantError",
    "VariantRequest",
    "parse_variant_uri",
    "render",
]

# What uploads may store as images (stowage.sniff); Pillow would otherwise try every plugin.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF", "HEIF")
pillow_heif.register_heif_opener()
# The longest side each format gets: libjpeg's JPEG_MAX_DIMENSION, libwebp's
# WEBP_MAX_DIMENSION, libavif's default decoder limit (its encoder writes up to 65536, but
# a 1x40000 AVIF then opens in no decoder with default limits), and PNG's 31-bit header
# fields. Never upscaling keeps a thin original thin, so a 1x70000 strip
# is still 1x70000 at any allowed width.
MAX_OUTPUT_SIDE = {"jpeg": 65_500, "webp": 16_383, "avif": 32_768, "png": 2**31 - 1}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int


def render(
    source: bytes,
    request: VariantRequest,
    config: VariantConfig,
    *,
    focal: tuple[float, float] | None = None,
    watermark=None,
) -> Rendered:
    """Decode ``source`` (guarded), crop, resize, watermark (if given) and encode it as
    ``request`` asks. For ``cover``, ``focal`` (x, y in 0-1) is the crop centre; None: the
    automatic one."""
    if len(source) > config.max_source_bytes:
        raise VariantError(413, f"original is over {config.max_source_bytes} bytes")
    Image.MAX_IMAGE_PIXELS = config.max_source_pixels
    try:
        image = Image.open(io.BytesIO(source), formats=INPUT_FORMATS)
        if image.width * image.height > config.max_source_pixels:
            raise VariantError(413, f"original has over {config.max_source_pixels} pixels")
        _check_output_side(_oriented_size(image), request)
        count, canvas = animation(source, image, request, config)
        if count > 1:
            target = output_size(canvas, request.width, request.height, request.fit)
            box = None
            if request.fit == "cover":
                centre = focal or saliency_centre(image.convert("RGBA"), *_box(request))
                box = cover_box(canvas, request.width, request.height, centre)
            frames, durations = animated_frames(image, count, target, box)
        else:
            frames, durations = [_still(image, request, focal)], None
    except VariantError:
        raise
    except Image.DecompressionBombError:
        raise VariantError(413, f"original has over {config.max_source_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError, ValueError) as exc:
        raise VariantError(415, f"original is not a decodable image ({exc})") from None
    _check_output_side(frames[0].size, request)
    frames = watermark.apply(frames) if watermark is not None else frames
    for frame in frames:
        # Pillow's encoders copy ICC, EXIF, XMP and comments from ``info``.
        frame.info = {}
    try:
        body = _encode(frames, request.fmt, config, durations)
    except MemoryError:
        raise VariantError(413, "the variant is too large to encode in this memory") from None
    except (OSError, ValueError, RuntimeError, struct.error) as exc:
        # Pillow's encoders signal a size or mode they cannot write with these; the same
        # original and request would fail the same way again, so it is a refusal, not a 5xx.
        raise VariantError(
            422, f"the original cannot be encoded as {request.fmt} ({exc})"
        ) from None
    return Rendered(body, request.content_type, *frames[0].size)


def _box(request: VariantRequest) -> tuple[int, int]:
    return request.width, request.height


def _still(image: Image.Image, request: VariantRequest, focal) -> Image.Image:
    if image.format == "JPEG":
        # Shrink-on-load: JPEG decodes at 1/2, 1/4 or 1/8 scale straight away.
        needed = decode_box(_oriented_size(image), *_box(request), request.fit)
        image.draft(image.mode if image.mode in ("RGB", "L") else "RGB", _file_axes(image, needed))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    crop = None
    if request.fit == "cover":
        centre = focal or saliency_centre(image, *_box(request))
        crop = cover_box(image.size, *_box(request), centre)
    target = output_size(image.size, *_box(request), request.fit)
    icc = image.info.get("icc_profile")
    frame = to_rgb_family(image, "png") if icc and image.mode in NEEDS_8_BIT else image
    transform = srgb_transform(icc, frame.mode)
    if transform is not None:
        # Resized in the original's space first: the transform then runs on the variant's
        # pixels, not the original's.
        frame, crop = _resize(frame, target, crop), None
        grey = frame.mode == "L"
        frame = ImageCms.applyTransform(frame, transform)
        if grey:  # the sRGB of a grey is R = G = B: one channel again
            frame = frame.convert("L")
    return _resize(to_rgb_family(frame, request.fmt), target, crop)


def _resize(image: Image.Image, target: tuple[int, int], crop=None) -> Image.Image:
    if image.size == target and crop is None:
        return image
    return image.resize(target, Image.Resampling.LANCZOS, box=crop, reducing_gap=3.0)


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """The size after EXIF orientation, from the header: a PNG whose eXIf chunk follows the
    pixels would need a decode to find it, so it is taken as stored (the encoder's own check
    after the decode still refuses it)."""
    if image.format == "PNG" and "exif" not in image.info:
        return image.size
    if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        return image.height, image.width
    return image.size


def _check_output_side(size: tuple[int, int], request: VariantRequest) -> None:
    """Refuse (422) before any pixel is decoded a variant its format cannot hold."""
    width, height = output_size(size, *_box(request), request.fit)
    limit = MAX_OUTPUT_SIDE[request.fmt]
    if max(width, height) > limit:
        raise VariantError(
            422,
            f"the variant would be {width}x{height} px and {request.fmt} allows at most"
            f" {limit} px a side; ask for another format",
        )


def _file_axes(image: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
    """``box`` in the file's own orientation (EXIF may swap axes), as ``draft`` takes it."""
    if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        return box[1], box[0]
    return box


def _encode(frames: list[Image.Image], fmt: str, config: VariantConfig, durations) -> bytes:
    out = io.BytesIO()
    first = frames[0]
    if fmt == "jpeg":
        first.save(
            out, "JPEG", quality=config.quality.get("jpeg", 82), optimize=True, progressive=True
        )
    elif fmt == "png":
        first.save(out, "PNG", optimize=True)
    elif fmt == "webp":
        extra = {"method": 4}
        if len(frames) > 1:
            # Method 2 encodes an animation in half the time of 4 for ~3% more bytes here,
            # which doubles the frames the time budget admits.
            extra = {
                "method": 2,
                "save_all": True,
                "append_images": frames[1:],
                "duration": durations,
                "loop": 0,
            }
        first.save(out, "WEBP", quality=config.quality.get("webp", 80), **extra)
    elif fmt == "avif":
        first.save(out, "AVIF", quality=config.quality.get("avif", 55), speed=config.avif_speed)
    else:  # parse_variant_uri only lets configured formats through
        raise VariantError(400, f"unsupported format {fmt}")
    return out.getvalue()

"""The pure core of the edge image resizer: parse a variant path, render the variant.

No AWS here: ``handler.py`` fetches and stores, this module decides and draws, so every case
is testable with real image files and nothing else.

Variant paths: ``/variants/{original_key}/{w}x{h}.{fmt}`` where ``w``/``h`` come from the
configured allowlist (``h`` = 0 keeps the aspect ratio), written without leading zeros, and
``fmt`` is avif|webp|jpeg|png. Originals come only from the configured source prefixes.

Colour: an embedded ICC profile (Display P3, Adobe RGB, CMYK) is converted to sRGB and every
variant is written without a profile, EXIF (GPS), XMP or comment: browsers take untagged
images as sRGB, and a variant must not leak where a photo was taken.

HEIC/HEIF inputs (phone photos) decode through pillow-heif, under the same pixel budget.

Animated inputs (GIF, WebP, APNG) become animated WebP within a total budget: frames x
canvas pixels decoded, frames x target pixels encoded. Both are checked from the container
before any frame after the first is decoded.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field
from urllib.parse import unquote

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from stowage.errors import InvalidKey
from stowage.keys import VARIANTS_PREFIX, validate_key

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
_PATH = re.compile(r"^/variants/(?P<key>.+)/(?P<w>\d{1,5})x(?P<h>\d{1,5})\.(?P<fmt>[a-z]+)$")
# What uploads may store as images (stowage.sniff); Pillow would otherwise try every plugin.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF", "HEIF")
pillow_heif.register_heif_opener()
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Pillow mode -> (the ICC colour space it holds, the mode its sRGB conversion is written in).
_ICC_MODES = {"RGB": ("RGB", "RGB"), "RGBA": ("RGB", "RGBA"), "CMYK": ("CMYK", "RGB")}
# Inputs rendered as animations; other multi-frame files (TIFF pages, MPO) give frame 0.
ANIMATED_INPUTS = ("GIF", "WEBP", "PNG")
# The longest side each encoder writes: libjpeg's JPEG_MAX_DIMENSION, libwebp's
# WEBP_MAX_DIMENSION, AV1's 16-bit frame size (Pillow 13's libavif refuses 65537 here), and
# PNG's 31-bit header fields. Never upscaling keeps a thin original thin, so a 1x70000 strip
# is still 1x70000 at any allowed width.
MAX_OUTPUT_SIDE = {"jpeg": 65_500, "webp": 16_383, "avif": 65_536, "png": 2**31 - 1}


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
            quality=dict(data.get("quality", {})) or {"jpeg": 82, "webp": 80, "avif": 55},
            max_source_bytes=data.get("max_source_bytes", cls.max_source_bytes),
            max_source_pixels=data.get("max_source_pixels", cls.max_source_pixels),
            # Required: a bundle that does not say which prefixes have variants serves none.
            source_prefixes=tuple(data["source_prefixes"]),
            max_animation_frames=data["max_animation_frames"],
            max_animation_input_pixels=data["max_animation_input_pixels"],
            max_animation_output_pixels=data["max_animation_output_pixels"],
        )


@dataclass(frozen=True)
class VariantRequest:
    original_key: str
    width: int
    height: int
    fmt: str

    @property
    def variant_key(self) -> str:
        return f"variants/{self.original_key}/{self.width}x{self.height}.{self.fmt}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int


def parse_variant_uri(uri: str, config: VariantConfig) -> VariantRequest:
    """``/variants/images/a.jpg/800x0.webp`` -> request, or :class:`VariantError` (4xx).

    Everything a request can be refused for is decided here, before any byte is read."""
    match = _PATH.match(uri)
    if not match:
        raise VariantError(400, "expected /variants/{original_key}/{w}x{h}.{avif|webp|jpeg|png}")
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
    if (match["w"], match["h"]) != (str(width), str(height)):
        # One spelling per variant: another would be a second cache entry and stored object.
        raise VariantError(400, f"size must be written {width}x{height} (no leading zeros)")
    if fmt not in config.formats:
        raise VariantError(400, f"format {fmt!r} not allowed ({', '.join(config.formats)})")
    if width not in config.widths or height not in config.heights:
        raise VariantError(
            400,
            f"size {width}x{height} not allowed (widths {list(config.widths)},"
            f" heights {list(config.heights)})",
        )
    request = VariantRequest(key, width, height, fmt)
    try:
        validate_key(request.variant_key)
    except InvalidKey as exc:
        raise VariantError(400, f"the original key is too long to have variants: {exc}") from None
    return request


def _target_size(size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """Fit inside width x height (height 0: any), never larger than the original."""
    w, h = size
    scale = min(width / w, (height / h) if height else float("inf"), 1.0)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _to_rgb_family(image: Image.Image, fmt: str) -> Image.Image:
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


def render(
    source: bytes, request: VariantRequest, config: VariantConfig, *, watermark=None
) -> Rendered:
    """Decode ``source`` (guarded), resize, watermark (if given), encode as ``request`` asks."""
    if len(source) > config.max_source_bytes:
        raise VariantError(413, f"original is over {config.max_source_bytes} bytes")
    Image.MAX_IMAGE_PIXELS = config.max_source_pixels
    try:
        image = Image.open(io.BytesIO(source), formats=INPUT_FORMATS)
        if image.width * image.height > config.max_source_pixels:
            raise VariantError(413, f"original has over {config.max_source_pixels} pixels")
        _check_output_side(_oriented_size(image), request)
        count, canvas = _animation(source, image, request, config)
        if count > 1:
            target = _target_size(canvas, request.width, request.height)
            frames, durations = _animated_frames(image, count, target)
        else:
            target = _target_size(image.size, request.width, request.height)
            # Shrink-on-load: JPEG decodes at 1/2, 1/4 or 1/8 scale straight away.
            if image.format == "JPEG":
                image.draft(
                    image.mode if image.mode in ("RGB", "L") else "RGB", _draft_box(image, target)
                )
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            target = _target_size(image.size, request.width, request.height)
            icc = image.info.get("icc_profile")
            frame = _to_rgb_family(image, "png") if icc and image.mode == "P" else image
            transform = _srgb_transform(icc, frame.mode)
            if transform is not None:
                # Resized in the original's space first: the transform then runs on the
                # variant's pixels, not the original's.
                frame = _resize(frame, target)
                frame = ImageCms.applyTransform(frame, transform)
            frame = _resize(_to_rgb_family(frame, request.fmt), target)
            frames, durations = [frame], None
    except VariantError:
        raise
    except Image.DecompressionBombError:
        raise VariantError(413, f"original has over {config.max_source_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError, ValueError) as exc:
        raise VariantError(415, f"original is not a decodable image ({exc})") from None
    _check_output_side(frames[0].size, request)
    frames = watermark.apply(frames) if watermark is not None else frames
    for frame in frames:
        frame.info = {}  # Pillow's encoders copy ICC, EXIF, XMP and comments from ``info``.
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


def _resize(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    if image.size == target:
        return image
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _srgb_transform(icc: bytes | None, mode: str) -> ImageCms.ImageCmsTransform | None:
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
    width, height = _target_size(size, request.width, request.height)
    limit = MAX_OUTPUT_SIDE[request.fmt]
    if max(width, height) > limit:
        raise VariantError(
            422,
            f"the variant would be {width}x{height} px and {request.fmt} allows at most"
            f" {limit} px a side; ask for another format",
        )


def _draft_box(image: Image.Image, target: tuple[int, int]) -> tuple[int, int]:
    """The box to ask ``draft`` for, in the file's own orientation (EXIF may swap axes)."""
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        return target[1], target[0]
    return target


def _animation(
    source: bytes, image: Image.Image, request: VariantRequest, config: VariantConfig
) -> tuple[int, tuple[int, int]]:
    """Frame count and canvas of an input rendered as an animation (1 for a still), read
    from the container without decoding a frame, and refused (413) over the budget."""
    if request.fmt != "webp" or image.format not in ANIMATED_INPUTS:
        return 1, image.size
    if image.format == "GIF":
        # Pillow's n_frames walks every frame of the file; this stops past the cap.
        count, canvas = _gif_frames(source, config.max_animation_frames)
    else:
        count, canvas = image.n_frames, image.size  # WebP's and APNG's headers say
    if count <= 1:
        return 1, image.size
    if count > config.max_animation_frames:
        raise VariantError(413, f"animation has over {config.max_animation_frames} frames")
    pixels = canvas[0] * canvas[1]
    if pixels > config.max_source_pixels:
        raise VariantError(413, f"original has over {config.max_source_pixels} pixels")
    target = _target_size(canvas, request.width, request.height)
    for what, total, limit in (
        ("decode", count * pixels, config.max_animation_input_pixels),
        ("encode", count * target[0] * target[1], config.max_animation_output_pixels),
    ):
        if total > limit:
            raise VariantError(
                413,
                f"animation of {count} frames is {total / 1e6:.0f} megapixels to {what};"
                f" the limit is {limit / 1e6:.0f} (ask for a smaller width or a still format)",
            )
    return count, canvas


def _gif_frames(data: bytes, cap: int) -> tuple[int, tuple[int, int]]:
    """Frames and canvas of a GIF from its block structure, nothing decompressed; counting
    stops past ``cap``, so a file of a million tiny frames costs no more than cap + 1."""
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    count = 0
    while pos < len(data) and count <= cap:
        if data[pos] == 0x21:  # extension: label, then data sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif data[pos] == 0x2C and pos + 10 <= len(data):  # image descriptor
            left, top, w, h, packed = struct.unpack_from("<HHHHB", data, pos + 1)
            # A frame may reach past the logical screen; Pillow grows the canvas to fit.
            width, height = max(width, left + w), max(height, top + h)
            pos += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            count += 1
        else:  # the trailer, or bytes Pillow would skip: decode no more than counted so far
            break
    return count, (width, height)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _animated_frames(image: Image.Image, count: int, target: tuple[int, int]):
    frames, durations = [], []
    transform = _srgb_transform(image.info.get("icc_profile"), "RGBA")
    for index in range(count):
        image.seek(index)
        frame = image.convert("RGBA")
        if frame.size != target:
            frame = frame.resize(target, Image.Resampling.LANCZOS)
        if transform is not None:
            frame = ImageCms.applyTransform(frame, transform)
        frames.append(frame)
        durations.append(image.info.get("duration", 100))
    return frames, durations

"""Animated inputs (GIF, WebP, APNG) become animated WebP within a total budget: frames x
canvas pixels decoded, frames x target pixels encoded. Both are checked from the container
before any frame after the first is decoded. A ``cover`` animation crops every frame with
the same box (chosen on the first frame), so the subject does not jump between frames."""

from __future__ import annotations

import struct

from PIL import Image, ImageCms

from stowage.images.colour import srgb_transform
from stowage.images.crop import output_size
from stowage.images.request import VariantConfig, VariantError, VariantRequest

# Inputs rendered as animations; other multi-frame files (TIFF pages, MPO) give frame 0.
ANIMATED_INPUTS = ("GIF", "WEBP", "PNG")


def animation(
    source: bytes, image: Image.Image, request: VariantRequest, config: VariantConfig
) -> tuple[int, tuple[int, int]]:
    """Frame count and canvas of an input rendered as an animation (1 for a still), read
    from the container without decoding a frame, and refused (413) over the budget."""
    if request.fmt != "webp" or image.format not in ANIMATED_INPUTS:
        return 1, image.size
    if image.format == "GIF":
        # Pillow's n_frames walks every frame of the file; this stops past the cap.
        count, canvas = gif_frames(source, config.max_animation_frames)
    else:
        count, canvas = image.n_frames, image.size  # WebP's and APNG's headers say
    if count <= 1:
        return 1, image.size
    if count > config.max_animation_frames:
        raise VariantError(413, f"animation has over {config.max_animation_frames} frames")
    pixels = canvas[0] * canvas[1]
    if pixels > config.max_source_pixels:
        raise VariantError(413, f"original has over {config.max_source_pixels} pixels")
    target = output_size(canvas, request.width, request.height, request.fit)
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


def gif_frames(data: bytes, cap: int) -> tuple[int, tuple[int, int]]:
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


def animated_frames(image: Image.Image, count: int, target: tuple[int, int], crop_box=None):
    """Every frame as RGBA at ``target``, each cut to ``crop_box`` (None: the whole frame)."""
    frames, durations = [], []
    transform = srgb_transform(image.info.get("icc_profile"), "RGBA")
    for index in range(count):
        image.seek(index)
        frame = image.convert("RGBA")
        if frame.size != target or crop_box is not None:
            frame = frame.resize(target, Image.Resampling.LANCZOS, box=crop_box)
        if transform is not None:
            frame = ImageCms.applyTransform(frame, transform)
        frames.append(frame)
        durations.append(image.info.get("duration", 100))
    return frames, durations

"""Real image files with the properties that break naive resizers."""

from __future__ import annotations

import io
import struct

from PIL import Image


def jpeg(size=(1200, 800), color=(200, 40, 40), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def exif_rotated_jpeg(size=(1200, 800)) -> bytes:
    """Stored landscape, EXIF orientation 6: shown portrait (rotated 90° clockwise)."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def cmyk_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("CMYK", (900, 600), (0, 255, 255, 0)).save(out, "JPEG")
    return out.getvalue()


def png16() -> bytes:
    out = io.BytesIO()
    Image.new("I;16", (900, 600), 40000).save(out, "PNG")
    return out.getvalue()


def alpha_png() -> bytes:
    image = Image.new("RGBA", (900, 600), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 450, 600))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animated_gif(frames: int = 4) -> bytes:
    images = [
        Image.new("RGB", (700, 500), (index * 60, 255 - index * 60, 30)) for index in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg((1600, 1200))
    return data[: len(data) // 3]


def bomb_png() -> bytes:
    """A tiny file that claims 60,000 x 60,000 pixels."""
    out = io.BytesIO()
    Image.new("1", (60_000, 60_000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def noisy_png(size=(1280, 1280)) -> bytes:
    import os

    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def flat_animation(fmt: str, size: tuple[int, int], frames: int) -> bytes:
    """``frames`` flat frames, each a different colour from the one before (so no encoder
    merges them): cheap to make and to store, as costly as any to decode per pixel."""
    images = [
        Image.new("RGB", size, ((index * 37) % 256, (index * 91) % 256, 200 - index % 2 * 100))
        for index in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


def gif_of_tiny_frames(count: int, *, screen=(1, 1), last_frame_at=(0, 0)) -> bytes:
    """A GIF of ``count`` 1x1 frames written block by block (16 bytes a frame); the last one
    may sit at an offset past the logical screen, which decoders grow the canvas for."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"

    def frame(left: int, top: int) -> bytes:
        # 1x1 pixel, LZW minimum code size 2: clear code, index 0, end of information.
        return b"\x2c" + struct.pack("<HHHHB", left, top, 1, 1, 0) + b"\x02\x02\x44\x01\x00"

    return header + frame(0, 0) * (count - 1) + frame(*last_frame_at) + b"\x3b"

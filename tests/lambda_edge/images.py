"""Real image files with the properties that break naive resizers."""

from __future__ import annotations

import io

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

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


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _mluc(text: str) -> bytes:
    body = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(body), 28) + body


def display_p3_icc() -> bytes:
    """A Display P3 matrix/TRC ICC v4 profile written from its published numbers (Pillow and
    this system ship none): DCI-P3 primaries with the D65 white, Bradford-adapted to the ICC's
    D50 as Apple's "Display P3" profile states them, and the sRGB tone curve."""
    xyz = {
        "wtpt": (0.964203, 1.0, 0.824905),
        "rXYZ": (0.515121, 0.241196, -0.001053),
        "gXYZ": (0.291977, 0.692245, 0.041885),
        "bXYZ": (0.157104, 0.066574, 0.784073),
    }
    curve = b"para\0\0\0\0" + struct.pack(">HH", 3, 0)
    curve += b"".join(_s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    tags = [
        (b"desc", _mluc("Display P3 (test)")),
        (b"cprt", _mluc("No copyright, use freely")),
        *((name.encode(), b"XYZ \0\0\0\0" + b"".join(map(_s15, v))) for name, v in xyz.items()),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _icc(b"RGB ", tags)


def linear_gray_icc() -> bytes:
    """A greyscale ICC v4 profile whose tone curve is linear (gamma 1.0): a grey of 128 in it
    is sRGB's 188, so a dropped profile shows as a visibly darker variant."""
    tags = [
        (b"desc", _mluc("Linear gray (test)")),
        (b"cprt", _mluc("No copyright, use freely")),
        (b"wtpt", b"XYZ \0\0\0\0" + b"".join(map(_s15, (0.964203, 1.0, 0.824905)))),
        (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, 256)),  # gamma 1.0 (u8.8)
    ]
    return _icc(b"GRAY", tags)


def _icc(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for name, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += name + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", 0x04300000, b"mntr", colour_space, b"XYZ ")
    header += struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28
    header += b"".join(_s15(v) for v in (0.9642, 1.0, 0.8249)) + b"\0" * 48
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def p3_to_srgb(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """The sRGB value of a Display P3 colour, by the published linear P3 -> sRGB matrix (both
    D65): the reference the resizer's colour management is checked against."""

    def linear(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    def encoded(v: float) -> float:
        v = min(max(v, 0.0), 1.0)
        return 255 * (v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055)

    r, g, b = map(linear, rgb)
    return (
        encoded(1.2249401 * r - 0.2249404 * g),
        encoded(-0.0420569 * r + 1.0420571 * g),
        encoded(-0.0196376 * r - 0.0786361 * g + 1.0982735 * b),
    )


def p3_image(fmt: str, color=(180, 90, 60), size=(1200, 800)) -> bytes:
    """``fmt`` "PNG-P": a palette PNG, whose pixels are indices into a P3 palette."""
    image = Image.new("RGB", size, color)
    if fmt == "PNG-P":
        fmt, image = "PNG", image.convert("P", palette=Image.Palette.ADAPTIVE)
    out = io.BytesIO()
    image.save(out, fmt, icc_profile=display_p3_icc())
    return out.getvalue()


GPS_LATITUDE = (48.0, 51.0, 29.5)
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-xmp-location</x:xmpmeta>'
COMMENT = b"secret-jpeg-comment"


def jpeg_with_metadata(size=(1200, 800)) -> bytes:
    """A photo as a phone leaves it: EXIF with a GPS position, XMP and a COM segment."""
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", GPS_LATITUDE, "E", (2.0, 17.0, 40.0)
    out = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(
        out, "JPEG", exif=exif.tobytes(), xmp=XMP, comment=COMMENT
    )
    return out.getvalue()


def heic(size=(1200, 800), color=(30, 160, 90)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "HEIF", quality=80)
    return out.getvalue()

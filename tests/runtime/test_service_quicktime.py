"""Old QuickTime files start with a ``wide``, ``free``, ``mdat`` or ``moov`` atom instead of
``ftyp``: they are videos. Bytes that only look like one are not."""

from __future__ import annotations

import os
import struct

import pytest

from stowage.errors import UnsupportedType
from stowage.sniff import SNIFF_BYTES, sniffed_type


def atom(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mvhd() -> bytes:
    """A version-0 movie header: times, time scale 600, duration, rate 1.0, volume 1.0,
    the identity matrix and the next track id."""
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    body = (
        struct.pack(">B3xIIII", 0, 0, 0, 600, 6000)
        + struct.pack(">IH10x", 0x10000, 0x100)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2)
    )
    return atom(b"mvhd", body)


MEDIA = os.urandom(4096)
MOOV = atom(b"moov", mvhd() + atom(b"udta", atom(b"\xa9nam", b"clip")))

QUICKTIME = {
    "wide-mdat-moov": atom(b"wide") + atom(b"mdat", MEDIA) + MOOV,
    "free-wide-mdat": atom(b"free", bytes(8)) + atom(b"wide") + atom(b"mdat", MEDIA) + MOOV,
    "moov-first": MOOV + atom(b"mdat", MEDIA),
    "mdat-first": atom(b"mdat", MEDIA) + MOOV,
    "mdat-64-bit-size": struct.pack(">I4sQ", 1, b"mdat", 16 + len(MEDIA)) + MEDIA + MOOV,
}

NOT_VIDEO = {
    "text reading mdat": b"The mdat atom holds the media, says the transcript.\n" * 4,
    "text reading free": b"Tea free of charge for everyone in the room today.\n" * 4,
    "wide atom of the wrong size": struct.pack(">I", 9) + b"wide" + bytes(1) + atom(b"mdat", MEDIA),
    "moov without a header": atom(b"moov", atom(b"junk", bytes(32))) + atom(b"mdat", MEDIA),
    "free followed by html": atom(b"free", bytes(8)) + b"<html><script>alert(1)</script>",
    "truncated": atom(b"wide")[:6],
}


@pytest.mark.parametrize("name", QUICKTIME)
def test_quicktime_without_ftyp_is_a_video(name):
    found = sniffed_type("video", QUICKTIME[name][:SNIFF_BYTES])
    assert (found.content_type, found.extension) == ("video/quicktime", ".mov")


@pytest.mark.parametrize("name", NOT_VIDEO)
def test_bytes_that_only_look_like_quicktime_are_refused_as_video(name):
    with pytest.raises(UnsupportedType):
        sniffed_type("video", NOT_VIDEO[name][:SNIFF_BYTES])


def test_text_reading_mdat_is_still_a_transcript():
    found = sniffed_type("transcript", NOT_VIDEO["text reading mdat"][:SNIFF_BYTES])
    assert found.content_type == "text/plain"


def test_quicktime_upload_over_http(serve):
    api = serve()
    data = QUICKTIME["wide-mdat-moov"]
    sent = api.client.post(
        "/api/upload/video",
        content=data,
        headers=api.auth | {"X-Filename": "old.mp4", "Content-Type": "application/octet-stream"},
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["content_type"] == "video/quicktime"
    assert body["key"].endswith(".mov")
    assert (api.root / body["key"]).read_bytes() == data

"""Variants an encoder cannot write (a thin strip past a format's side limit) are refused
with a cacheable 4xx before any pixel is decoded, and an encoder failure that slips past
that check is still a deliberate 422, never the handler's 502."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from stowage.images import core as image_core
from tests.lambda_edge.test_handler import decoded, stored_keys


def strip_png(height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def header_only_png(height: int) -> bytes:
    """A valid PNG header on a strip whose pixel data is cut off: it opens, but decoding it
    fails, so a 422 (not 415) proves the limit was checked before any decode."""
    data = strip_png(height)
    idat = data.index(b"IDAT")
    return data[: idat + 12]


@pytest.mark.parametrize(
    ("height", "fmt", "limit"),
    [(70_000, "jpeg", 65_500), (20_000, "webp", 16_383), (40_000, "avif", 32_768)],
)
def test_thin_strip_over_the_format_limit_is_a_cacheable_422(
    edge, s3, bucket, miss, height, fmt, limit
):
    s3.put_object(Bucket=bucket, Key="images/tall.png", Body=strip_png(height))
    result = edge.handler(miss(f"/variants/images/tall.png/320x0.{fmt}"))
    assert result["status"] == "422", result
    assert f"1x{height} px and {fmt} allows at most {limit} px a side" in result["body"]
    assert result["headers"]["cache-control"][0]["value"] == "public, max-age=60"
    assert stored_keys(s3, bucket) == ["images/tall.png"]


@pytest.mark.parametrize(("height", "fmt"), [(70_000, "jpeg"), (20_000, "webp")])
def test_limit_is_checked_before_decoding(edge, s3, bucket, miss, height, fmt):
    s3.put_object(Bucket=bucket, Key="images/cut.png", Body=header_only_png(height))
    result = edge.handler(miss(f"/variants/images/cut.png/320x0.{fmt}"))
    assert result["status"] == "422", result


def test_exif_rotation_is_counted_before_decoding(edge, s3, bucket, miss):
    """Stored 20000x1, shown 1x20000 (orientation 6): too tall for WebP once rotated."""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (20_000, 1)).save(out, "JPEG", exif=exif.tobytes())
    s3.put_object(Bucket=bucket, Key="images/rot.jpg", Body=out.getvalue())
    result = edge.handler(miss("/variants/images/rot.jpg/320x0.webp"))
    assert result["status"] == "422", result
    assert "1x20000 px" in result["body"]


def test_an_avif_within_the_limit_opens_in_a_decoder(edge, s3, bucket, miss):
    """The review's finding: a 1x40000 AVIF was written, stored a year, and opened nowhere."""
    s3.put_object(Bucket=bucket, Key="images/tall.png", Body=strip_png(32_768))
    assert decoded(edge.handler(miss("/variants/images/tall.png/320x0.avif"))).size == (1, 32_768)


def test_the_same_strip_renders_where_the_format_allows_it(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/tall.png", Body=strip_png(20_000))
    assert decoded(edge.handler(miss("/variants/images/tall.png/320x0.png"))).size == (1, 20_000)
    assert decoded(edge.handler(miss("/variants/images/tall.png/320x0.jpeg"))).size == (1, 20_000)


@pytest.mark.parametrize(("height", "fmt"), [(70_000, "jpeg"), (20_000, "webp"), (70_000, "avif")])
def test_an_encoder_failure_is_a_deliberate_422(edge, s3, bucket, miss, monkeypatch, height, fmt):
    """With the side check lifted, the real encoder itself fails: still a 422 that names
    the format, nothing stored, never the 502 of an unexpected error."""
    monkeypatch.setitem(image_core.MAX_OUTPUT_SIDE, fmt, 10**9)
    s3.put_object(Bucket=bucket, Key="images/tall.png", Body=strip_png(height))
    result = edge.handler(miss(f"/variants/images/tall.png/320x0.{fmt}"))
    assert result["status"] == "422", result
    assert f"cannot be encoded as {fmt}" in result["body"]
    assert stored_keys(s3, bucket) == ["images/tall.png"]


def test_refusals_are_cacheable_and_failures_are_not(edge, s3, bucket, miss, monkeypatch):
    refused = edge.handler(miss("/variants/images/a.jpg/801x0.webp"))
    assert refused["status"] == "400"
    assert refused["headers"]["cache-control"][0]["value"] == "public, max-age=60"
    missing = edge.handler(miss("/variants/images/missing.jpg/800x0.webp"))
    assert missing["status"] == "404"
    assert missing["headers"]["cache-control"][0]["value"] == "public, max-age=60"

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=strip_png(10))
    monkeypatch.setattr(edge, "render", broken)
    failed = edge.handler(miss("/variants/images/a.jpg/800x0.webp"))
    assert failed["status"] == "502"
    assert failed["headers"]["cache-control"][0]["value"] == "no-store"

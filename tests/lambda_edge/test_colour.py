"""Variants are sRGB with no profile and no metadata, through the real handler and S3 (moto):
a Display P3 colour lands where sRGB puts it, and GPS EXIF, XMP and JPEG comments are gone,
for every format."""

from __future__ import annotations

import base64

import pytest

from tests.lambda_edge import images
from tests.lambda_edge.test_handler import decoded

FORMATS = ("jpeg", "webp", "png", "avif")
# Lossy encoders of a flat colour stay within a few levels; a dropped P3 profile is 14 off.
TOLERANCE = 5


@pytest.mark.parametrize("source", ["PNG", "JPEG", "PNG-P"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_display_p3_colour_lands_in_srgb(edge, s3, bucket, miss, source, fmt):
    colour = (180, 90, 60)
    expected = images.p3_to_srgb(colour)
    assert max(abs(a - b) for a, b in zip(expected, colour, strict=True)) > 10
    s3.put_object(Bucket=bucket, Key="images/p3", Body=images.p3_image(source, colour))
    variant = decoded(edge.handler(miss(f"/variants/images/p3/640x0.{fmt}")))
    assert variant.size == (640, 427)
    assert not variant.info.get("icc_profile"), "a variant carries no profile: it is sRGB"
    got = variant.convert("RGB").getpixel((320, 213))
    assert all(abs(a - b) <= TOLERANCE for a, b in zip(got, expected, strict=True)), (
        got,
        expected,
    )


@pytest.mark.parametrize("depth", ["L", "I;16"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_greyscale_profile_is_converted_too(edge, s3, bucket, miss, depth, fmt):
    """Grey 128 in a linear-gamma profile is sRGB's 188 (it was dropped unconverted: 128)."""
    from io import BytesIO

    from PIL import Image

    grey = Image.new("L", (900, 600), 128)
    if depth == "I;16":
        grey = Image.new("I;16", (900, 600), 128 * 257)
    out = BytesIO()
    grey.save(out, "PNG", icc_profile=images.linear_gray_icc())
    s3.put_object(Bucket=bucket, Key="images/grey.png", Body=out.getvalue())
    variant = decoded(edge.handler(miss(f"/variants/images/grey.png/320x0.{fmt}")))
    assert not variant.info.get("icc_profile")
    got = variant.convert("L").getpixel((160, 100))
    assert abs(got - 188) <= TOLERANCE, got


def test_cmyk_with_a_profile_and_srgb_inputs_still_render(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/cmyk.jpg", Body=images.cmyk_jpeg())
    assert decoded(edge.handler(miss("/variants/images/cmyk.jpg/320x0.png"))).mode == "RGB"
    s3.put_object(Bucket=bucket, Key="images/plain.jpg", Body=images.jpeg())
    plain = decoded(edge.handler(miss("/variants/images/plain.jpg/320x0.png")))
    assert plain.getpixel((10, 10)) == (200, 40, 40)


def test_a_broken_profile_is_dropped_not_a_failure(edge, s3, bucket, miss):
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (900, 600), (10, 20, 30)).save(out, "PNG", icc_profile=b"not a profile")
    s3.put_object(Bucket=bucket, Key="images/bad-icc.png", Body=out.getvalue())
    variant = decoded(edge.handler(miss("/variants/images/bad-icc.png/320x0.png")))
    assert variant.getpixel((5, 5)) == (10, 20, 30)
    assert not variant.info.get("icc_profile")


@pytest.mark.parametrize("fmt", FORMATS)
def test_gps_exif_xmp_and_comments_never_reach_a_variant(edge, s3, bucket, miss, fmt):
    original = images.jpeg_with_metadata()
    for secret in (images.XMP, images.COMMENT, b"SecretCam"):
        assert secret in original
    s3.put_object(Bucket=bucket, Key="images/phone.jpg", Body=original)
    result = edge.handler(miss(f"/variants/images/phone.jpg/640x0.{fmt}"))
    body = base64.b64decode(result["body"])
    variant = decoded(result)
    for secret in (images.XMP, images.COMMENT, b"SecretCam", b"xmpmeta", b"Exif\0\0"):
        assert secret not in body, (fmt, secret)
    assert not variant.getexif()
    assert not variant.getexif().get_ifd(0x8825)
    for key in ("exif", "xmp", "comment", "XML:com.adobe.xmp"):
        assert not variant.info.get(key), (fmt, key)

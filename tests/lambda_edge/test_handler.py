"""The origin-response handler with events shaped like AWS's documented examples, S3 from
moto's server, and every output decoded and checked."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.lambda_edge import images


def decoded(result: dict) -> Image.Image:
    assert result["status"] == "200", result
    assert result["bodyEncoding"] == "base64"
    return Image.open(io.BytesIO(base64.b64decode(result["body"])))


def stored_keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_passes_through_hits_and_other_paths(edge, miss):
    hit = miss("/variants/images/a.jpg/800x0.webp", status="200")
    assert edge.handler(hit) is hit["Records"][0]["cf"]["response"]
    other = miss("/images/a.jpg", status="404")
    assert edge.handler(other) is other["Records"][0]["cf"]["response"]


@pytest.mark.parametrize("status", ["403", "404"])
def test_miss_generates_stores_and_returns(edge, s3, bucket, kms_key, status, miss):
    s3.put_object(Bucket=bucket, Key="images/2026/a.jpg", Body=images.jpeg((2000, 1000)))
    result = edge.handler(miss("/variants/images/2026/a.jpg/800x0.webp", status))
    image = decoded(result)
    assert (image.format, image.size) == ("WEBP", (800, 400))
    assert result["headers"]["content-type"][0]["value"] == "image/webp"
    stored = s3.get_object(Bucket=bucket, Key="variants/images/2026/a.jpg/800x0.webp")
    assert stored["ContentType"] == "image/webp"
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"] == kms_key
    assert "immutable" in stored["CacheControl"]
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (800, 400)


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("avif", "AVIF"), ("jpeg", "JPEG"), ("png", "PNG")]
)
def test_every_format(edge, s3, bucket, fmt, pil_format, miss):
    s3.put_object(Bucket=bucket, Key="images/f.jpg", Body=images.jpeg((1000, 1000)))
    image = decoded(edge.handler(miss(f"/variants/images/f.jpg/320x0.{fmt}")))
    assert image.format == pil_format
    assert image.size == (320, 320)


def test_never_upscales(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/small.jpg", Body=images.jpeg((300, 150)))
    image = decoded(edge.handler(miss("/variants/images/small.jpg/1280x0.jpeg")))
    assert image.size == (300, 150)


@pytest.mark.parametrize(
    ("uri", "status", "detail"),
    [
        ("/variants/images/a.jpg/801x0.webp", 400, "not allowed"),
        ("/variants/images/a.jpg/800x0.gif", 400, "format"),
        ("/variants/images/../secret.jpg/800x0.webp", 400, "invalid original key"),
        ("/variants/images/a.jpg/800.webp", 400, "expected"),
        ("/variants/images/missing.jpg/800x0.webp", 404, "no original"),
    ],
)
def test_bad_requests_write_nothing(edge, s3, bucket, uri, status, detail, miss):
    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=images.jpeg())
    result = edge.handler(miss(uri))
    assert result["status"] == str(status)
    assert detail in result["body"]
    assert stored_keys(s3, bucket) == ["images/a.jpg"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"%PDF-1.7 definitely not an image", 415),
        (images.truncated_jpeg(), 415),
        (images.bomb_png(), 413),
    ],
    ids=["non-image", "truncated-jpeg", "decompression-bomb"],
)
def test_unusable_originals(edge, s3, bucket, body, status, miss):
    s3.put_object(Bucket=bucket, Key="images/bad", Body=body)
    result = edge.handler(miss("/variants/images/bad/640x0.webp"))
    assert result["status"] == str(status), result
    assert stored_keys(s3, bucket) == ["images/bad"]


def test_exif_orientation_is_honoured(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/rot.jpg", Body=images.exif_rotated_jpeg((1200, 800)))
    image = decoded(edge.handler(miss("/variants/images/rot.jpg/320x0.png"))).convert("RGB")
    assert image.size == (320, 480)  # portrait after rotation
    top, bottom = image.getpixel((160, 20)), image.getpixel((160, 460))
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60


def test_cmyk_and_16_bit_and_alpha(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/cmyk.jpg", Body=images.cmyk_jpeg())
    s3.put_object(Bucket=bucket, Key="images/deep.png", Body=images.png16())
    s3.put_object(Bucket=bucket, Key="images/alpha.png", Body=images.alpha_png())
    cmyk = decoded(edge.handler(miss("/variants/images/cmyk.jpg/640x0.jpeg")))
    assert cmyk.mode == "RGB"
    deep = decoded(edge.handler(miss("/variants/images/deep.png/640x0.png")))
    assert deep.mode in ("L", "RGB")
    assert deep.getpixel((10, 10)) not in (0, 255)  # scaled to 8 bits, not clipped
    flat = decoded(edge.handler(miss("/variants/images/alpha.png/640x0.jpeg")))
    assert flat.mode == "RGB"
    assert flat.getpixel((600, 200)) == pytest.approx((255, 255, 255), abs=3)  # flattened on white
    kept = decoded(edge.handler(miss("/variants/images/alpha.png/640x0.webp")))
    assert kept.mode == "RGBA"


def test_animated_gif(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/anim.gif", Body=images.animated_gif(frames=4))
    animated = decoded(edge.handler(miss("/variants/images/anim.gif/320x0.webp")))
    assert animated.is_animated
    assert animated.n_frames == 4
    assert animated.size == (320, 229)
    still = decoded(edge.handler(miss("/variants/images/anim.gif/320x0.jpeg")))
    assert getattr(still, "n_frames", 1) == 1


def test_oversized_result_is_stored_and_redirected(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/noise.png", Body=images.noisy_png((1280, 1280)))
    result = edge.handler(miss("/variants/images/noise.png/1280x0.png", querystring="v=2"))
    assert result["status"] == "307"
    assert result["headers"]["location"][0]["value"] == "/variants/images/noise.png/1280x0.png?v=2"
    assert result["headers"]["cache-control"][0]["value"] == "no-store"
    assert "variants/images/noise.png/1280x0.png" in stored_keys(s3, bucket)


def test_oversized_result_redirect_keeps_signed_url_parameters(edge, s3, bucket, miss):
    """When CloudFront forwards the viewer's signed-URL parameters, the redirect carries them
    verbatim; with the media cache policy it forwards none (docs/storage-design.md)."""
    signed = "Expires=2000000000&Signature=Ab~c-d_e%3D&Key-Pair-Id=K2JCJMDEHXQW5F"
    s3.put_object(Bucket=bucket, Key="images/noise.png", Body=images.noisy_png((1280, 1280)))
    result = edge.handler(miss("/variants/images/noise.png/1280x0.png", querystring=signed))
    assert result["status"] == "307"
    location = result["headers"]["location"][0]["value"]
    assert location == f"/variants/images/noise.png/1280x0.png?{signed}"


def test_internal_errors_do_not_leak(edge, s3, bucket, monkeypatch, miss):
    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=images.jpeg())

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /opt/python/thing.py line 42")

    monkeypatch.setattr(edge, "render", broken)
    result = edge.handler(miss("/variants/images/a.jpg/800x0.webp"))
    assert result["status"] == "502"
    assert "secret" not in result["body"]
    assert "Traceback" not in result["body"]

"""HEIC/HEIF originals (phone photos) render through the real handler, and one over the
pixel budget is refused from its header, before any pixel is decoded."""

from __future__ import annotations

import pytest

from stacks.config import load_config
from tests.lambda_edge import images
from tests.lambda_edge.test_handler import decoded, stored_keys


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_heic_original_renders(edge, s3, bucket, miss, fmt):
    s3.put_object(Bucket=bucket, Key="images/phone.heic", Body=images.heic((1200, 800)))
    variant = decoded(edge.handler(miss(f"/variants/images/phone.heic/640x0.{fmt}")))
    assert variant.format == fmt.upper()
    assert variant.size == (640, 427)
    assert all(
        abs(a - b) <= 6 for a, b in zip(variant.getpixel((320, 200)), (30, 160, 90), strict=True)
    )
    assert "images/phone.heic" in stored_keys(s3, bucket)


def undecodable_heic(size: tuple[int, int]) -> bytes:
    """A HEIC whose container is intact and whose coded picture is zeroed: it opens, but any
    decode fails, so a 413 (not a 415) proves the budget was checked before decoding."""
    data = bytearray(images.heic(size))
    mdat = data.index(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)
    return bytes(data)


def test_undecodable_heic_under_the_budget_is_a_415(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/broken.heic", Body=undecodable_heic((640, 480)))
    result = edge.handler(miss("/variants/images/broken.heic/320x0.webp"))
    assert result["status"] == "415", result


def test_heic_over_the_pixel_budget_is_refused_before_decoding(load_edge, s3, bucket, miss):
    cdn = load_config("example").cdn.model_copy(update={"max_source_megapixels": 1})
    edge = load_edge(cdn)
    s3.put_object(Bucket=bucket, Key="images/big.heic", Body=undecodable_heic((1600, 1200)))
    result = edge.handler(miss("/variants/images/big.heic/640x0.webp"))
    assert result["status"] == "413", result
    assert "over 1000000 pixels" in result["body"]
    assert stored_keys(s3, bucket) == ["images/big.heic"]

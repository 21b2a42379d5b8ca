"""Requests the resizer must refuse before it reads a byte: originals outside the variant
source prefixes, variant keys over S3's limit, non-canonical sizes. The real handler, S3 from
moto's server, and the handler's own S3 calls watched through boto3's event hooks."""

from __future__ import annotations

import json

import pytest

from stacks.config import load_config
from tests.lambda_edge import images


def stored_keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize(
    "original",
    ["videos/2026/01/02/clip.mp4", "transcripts/2026/01/02/talk.txt", "processed/x/y.jpg"],
)
def test_variants_outside_the_source_prefixes_never_read_the_original(
    edge, s3, bucket, miss, s3_calls, original
):
    # A real image under the key: a resizer that read it would happily render it.
    s3.put_object(Bucket=bucket, Key=original, Body=images.jpeg((1000, 800)))
    calls = s3_calls(edge)
    result = edge.handler(miss(f"/variants/{original}/800x0.webp"))
    assert result["status"] == "403", result
    assert "images/" in json.loads(result["body"])["detail"]
    assert calls == []
    assert stored_keys(s3, bucket) == [original]


def test_source_prefixes_come_from_the_config(load_edge, s3, bucket, miss):
    cdn = load_config("example").cdn.model_copy(
        update={"variant_source_prefixes": ["images/", "processed/"]}
    )
    edge = load_edge(cdn)
    s3.put_object(Bucket=bucket, Key="processed/thumb.jpg", Body=images.jpeg((1000, 800)))
    assert edge.handler(miss("/variants/processed/thumb.jpg/320x0.jpeg"))["status"] == "200"
    s3.put_object(Bucket=bucket, Key="videos/poster.jpg", Body=images.jpeg((1000, 800)))
    assert edge.handler(miss("/variants/videos/poster.jpg/320x0.jpeg"))["status"] == "403"


def test_variant_key_over_1024_bytes_is_refused_before_any_work(edge, s3, bucket, miss, s3_calls):
    # 1,010 bytes: a valid key, whose variant key (variants/ + key + /800x0.webp) is 1,030.
    original = "images/" + "a" * 999 + ".jpg"
    assert len(original.encode()) == 1010
    s3.put_object(Bucket=bucket, Key=original, Body=images.jpeg((1000, 800)))
    calls = s3_calls(edge)
    result = edge.handler(miss(f"/variants/{original}/800x0.webp"))
    assert result["status"] == "400", result
    assert "too long" in json.loads(result["body"])["detail"]
    assert calls == []
    assert stored_keys(s3, bucket) == [original]


@pytest.mark.parametrize("size", ["01920x0", "1920x00", "0800x0", "00320x0"])
def test_zero_padded_sizes_are_refused_without_rendering(edge, s3, bucket, miss, s3_calls, size):
    # Noise: its 1920 px PNG is over the response limit, so the old handler stored it under
    # the canonical key and redirected back to the padded URI, forever.
    s3.put_object(Bucket=bucket, Key="images/noise.png", Body=images.noisy_png((1920, 1920)))
    calls = s3_calls(edge)
    result = edge.handler(miss(f"/variants/images/noise.png/{size}.png"))
    assert result["status"] == "400", result
    assert "leading zeros" in json.loads(result["body"])["detail"]
    assert calls == []
    assert stored_keys(s3, bucket) == ["images/noise.png"]

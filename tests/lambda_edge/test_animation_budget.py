"""Animated originals within a total budget: frames x canvas pixels decoded and frames x
target pixels encoded, derived from the function's memory and timeout, checked from the
container before the frames are decoded. The real handler with the config synth bakes, real
GIF/WebP/APNG files, S3 from moto's server."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import GifImagePlugin, Image, PngImagePlugin, WebPImagePlugin

from stacks.config import load_config
from tests.lambda_edge import images


def stored_keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture
def frames_decoded(monkeypatch) -> list[int]:
    """Every frame past the first that Pillow seeks to (to decode it or to count frames):
    a refusal "from the header" touches none, on any machine however loaded."""
    seen: list[int] = []
    for plugin in (GifImagePlugin.GifImageFile, PngImagePlugin.PngImageFile):
        original = plugin._seek

        def counting(self, frame, *args, _original=original, **kwargs):
            if frame > 0:
                seen.append(frame)
            return _original(self, frame, *args, **kwargs)

        monkeypatch.setattr(plugin, "_seek", counting)
    original_webp = WebPImagePlugin.WebPImageFile.seek

    def counting_webp(self, frame, _original=original_webp):
        if frame > 0:
            seen.append(frame)
        return _original(self, frame)

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "seek", counting_webp)
    return seen


def test_the_issue_attack_is_refused_from_the_header(edge, s3, bucket, miss, frames_decoded):
    """2000x2000 frames, just over the decode budget, in a file of a few hundred bytes
    (each frame is decoded onto the whole canvas): refused from the header in well under a
    second, where decoding them first would spend the budget."""
    frames = edge.CONFIG.max_animation_input_pixels // (2000 * 2000) + 1
    body = images.gif_of_tiny_frames(frames, screen=(2000, 2000))
    s3.put_object(Bucket=bucket, Key="images/big.gif", Body=body)
    result = edge.handler(miss("/variants/images/big.gif/320x0.webp"))
    assert result["status"] == "413", result
    detail = json.loads(result["body"])["detail"]
    assert f"{frames} frames" in detail
    assert "to decode" in detail
    assert frames_decoded == []
    assert stored_keys(s3, bucket) == ["images/big.gif"]


@pytest.fixture
def edge_512(load_edge):
    """A 512 MB function: a budget small enough for animations that are quick to make."""
    return load_edge(load_config("example").cdn.model_copy(update={"edge_memory_size_mb": 512}))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_over_the_encode_budget_is_refused_and_a_smaller_width_renders(
    edge_512, s3, bucket, miss, fmt, frames_decoded
):
    edge = edge_512
    frames = edge.CONFIG.max_animation_output_pixels // (1920 * 1920) + 1
    body = images.flat_animation(fmt, (1920, 1920), frames)
    s3.put_object(Bucket=bucket, Key="images/anim", Body=body)
    result = edge.handler(miss("/variants/images/anim/1920x0.webp"))
    assert result["status"] == "413", result
    assert "to encode" in json.loads(result["body"])["detail"]
    assert frames_decoded == []
    assert stored_keys(s3, bucket) == ["images/anim"]

    small = edge.handler(miss("/variants/images/anim/320x0.webp"))
    assert small["status"] == "200", small
    animated = Image.open(io.BytesIO(base64.b64decode(small["body"])))
    assert (animated.size, animated.n_frames) == ((320, 320), frames)


def test_counting_gif_frames_does_not_walk_the_whole_file(edge, s3, bucket, miss, frames_decoded):
    """A million 16-byte frames: Pillow's own frame count walks all of them (seconds); the
    core stops counting past the frame cap."""
    body = images.gif_of_tiny_frames(1_000_000)
    s3.put_object(Bucket=bucket, Key="images/tiny.gif", Body=body)
    result = edge.handler(miss("/variants/images/tiny.gif/320x0.webp"))
    assert result["status"] == "413", result
    assert f"over {edge.CONFIG.max_animation_frames} frames" in result["body"]
    assert frames_decoded == []
    assert stored_keys(s3, bucket) == ["images/tiny.gif"]


def test_a_gif_frame_past_the_screen_counts_with_the_canvas_it_grows(edge, s3, bucket, miss):
    """A 100x100 screen whose second frame sits at (7999, 7999): decoding it means an
    8000x8000 canvas (64 MP, over the 50 MP limit), which the header check must see."""
    body = images.gif_of_tiny_frames(2, screen=(100, 100), last_frame_at=(7999, 7999))
    s3.put_object(Bucket=bucket, Key="images/grow.gif", Body=body)
    result = edge.handler(miss("/variants/images/grow.gif/320x0.webp"))
    assert result["status"] == "413", result
    assert "pixels" in result["body"]
    assert stored_keys(s3, bucket) == ["images/grow.gif"]


def test_the_budget_follows_the_function_memory(load_edge, edge_512, s3, bucket, miss):
    example = load_config("example").cdn
    small = edge_512
    limit = small.CONFIG.max_animation_output_pixels
    frames = limit // (1280 * 1280) + 1
    s3.put_object(
        Bucket=bucket,
        Key="images/anim.gif",
        Body=images.flat_animation("GIF", (1280, 1280), frames),
    )
    refused = small.handler(miss("/variants/images/anim.gif/1280x0.webp"))
    assert refused["status"] == "413", refused
    assert stored_keys(s3, bucket) == ["images/anim.gif"]

    default = load_edge(example)
    assert frames * 1280 * 1280 <= default.CONFIG.max_animation_output_pixels
    rendered = default.handler(miss("/variants/images/anim.gif/1280x0.webp"))
    assert rendered["status"] == "200", rendered
    assert Image.open(io.BytesIO(base64.b64decode(rendered["body"]))).n_frames == frames

"""The optional watermark (issue 14, item 4): configured in ``cdn.watermark``, baked into the
edge config, the overlay fetched from the media bucket once per container, drawn by the core
at the configured corner and opacity on variants of the configured prefixes only; off by
default. Real images, the real handler, S3 from moto's server, a synthesized template."""

from __future__ import annotations

import base64
import io

import pytest
import yaml
from PIL import Image

from stacks.config import CONFIG_DIR, ConfigError, parse_config
from stacks.edge_config import edge_handler_config
from stowage.images.core import VariantConfig, VariantRequest, render
from stowage.images.watermark import WatermarkError, WatermarkSettings, prepare
from tests.cdk.conftest import synthesize
from tests.cdk.test_cloud_security import PRIMARY, REPLICA, policy_statements
from tests.cdk.test_storage_stack import as_list
from tests.lambda_edge.test_handler import decoded, stored_keys

BLUE, RED = (0, 0, 255), (255, 0, 0)
OVERLAY_KEY = "branding/mark.png"


def png(size, color, mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return out.getvalue()


def half_transparent_overlay() -> bytes:
    """100x50: the left half opaque red, the right half fully transparent."""
    image = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    image.paste((*RED, 255), (0, 0, 50, 50))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def example_data(watermark: dict | None) -> dict:
    data = yaml.safe_load((CONFIG_DIR / "example.yaml").read_text())
    if watermark is not None:
        data["cdn"]["watermark"] = watermark
    return data


def cdn_with(**watermark):
    mark = {"overlay_key": OVERLAY_KEY, "prefixes": ["images/"], **watermark}
    return parse_config(example_data(mark), "example with a watermark").cdn


def settings(**overrides) -> WatermarkSettings:
    return WatermarkSettings.from_json(
        edge_handler_config(cdn_with(**overrides), **BAKED)["watermark"]
    )


BAKED = {"bucket": "b", "region": "eu-west-1", "kms_key_arn": "k"}
CORE = VariantConfig(widths=(800,), source_prefixes=("images/",))


def close(pixel, expected, tolerance=3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# --- the core: place, scale, opacity, alpha -------------------------------------------------


@pytest.mark.parametrize(
    ("position", "inside", "outside"),
    [
        # 800x400 variant, overlay 20 % wide (160x80), margin 2 % of 400 = 8 px.
        ("bottom-right", (700, 350), [(600, 350), (700, 300), (795, 395)]),
        ("top-left", (50, 30), [(50, 100), (200, 30), (3, 3)]),
        ("top-right", (700, 30), [(600, 30), (700, 100)]),
        ("bottom-left", (50, 350), [(200, 350), (50, 300)]),
        ("center", (400, 200), [(300, 200), (400, 150), (50, 50)]),
    ],
)
def test_overlay_lands_at_its_position_with_its_opacity(position, inside, outside):
    mark = prepare(png((100, 50), RED), settings(position=position, opacity=0.5))
    request = VariantRequest("images/a.png", 800, 0, "png")
    variant = Image.open(
        io.BytesIO(render(png((1000, 500), BLUE), request, CORE, watermark=mark).body)
    )
    assert variant.size == (800, 400)
    assert close(variant.getpixel(inside), (128, 0, 128)), variant.getpixel(inside)
    for point in outside:
        assert variant.getpixel(point) == BLUE, point
    marked = [
        (x, y) for x in range(800) for y in range(0, 400, 4) if variant.getpixel((x, y)) != BLUE
    ]
    xs, ys = [x for x, _ in marked], [y for _, y in marked]
    assert max(xs) - min(xs) + 1 == 160  # 20 % of the variant's width, at its aspect ratio
    assert 76 <= max(ys) - min(ys) + 1 <= 80


def test_overlay_alpha_is_kept_and_opacity_multiplies_it():
    mark = prepare(half_transparent_overlay(), settings(position="top-left", opacity=0.25))
    request = VariantRequest("images/a.png", 800, 0, "png")
    variant = Image.open(
        io.BytesIO(render(png((1000, 500), BLUE), request, CORE, watermark=mark).body)
    )
    # Overlay 160x80 at (8, 8): its opaque left half at 25 %, its transparent half invisible.
    assert close(variant.getpixel((40, 40)), (64, 0, 191)), variant.getpixel((40, 40))
    assert variant.getpixel((140, 40)) == BLUE


def test_a_transparent_variant_keeps_its_alpha_under_the_mark():
    mark = prepare(png((100, 50), RED), settings(position="top-left", opacity=0.5))
    request = VariantRequest("images/a.png", 800, 0, "png")
    source = png((1000, 500), (0, 0, 0, 0), mode="RGBA")
    variant = Image.open(io.BytesIO(render(source, request, CORE, watermark=mark).body))
    assert variant.mode == "RGBA"
    assert variant.getpixel((400, 300))[3] == 0
    red, _, _, alpha = variant.getpixel((40, 40))
    assert red > 240
    assert 120 <= alpha <= 135


def test_every_frame_of_an_animation_is_marked():
    frames = [Image.new("RGB", (1000, 500), (0, 40 * index, 255)) for index in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    mark = prepare(png((100, 50), RED), settings(opacity=1.0))
    request = VariantRequest("images/a.gif", 800, 0, "webp")
    variant = Image.open(io.BytesIO(render(out.getvalue(), request, CORE, watermark=mark).body))
    assert variant.n_frames == 3
    for index in range(3):
        variant.seek(index)
        assert close(variant.convert("RGB").getpixel((700, 350)), RED, 12), index


def test_off_by_default_the_edge_output_is_the_unmarked_render(edge, s3, bucket, miss, s3_calls):
    """config/example.yaml has no watermark: an overlay lying in the bucket is never read
    and the variant is byte for byte the core's unmarked render."""
    assert edge.WATERMARK is None
    source = png((1000, 500), BLUE)
    s3.put_object(Bucket=bucket, Key=OVERLAY_KEY, Body=png((100, 50), RED))
    s3.put_object(Bucket=bucket, Key="images/a.png", Body=source)
    calls = s3_calls(edge)
    result = edge.handler(miss("/variants/images/a.png/800x0.webp"))
    unmarked = render(source, VariantRequest("images/a.png", 800, 0, "webp"), edge.CONFIG)
    assert base64.b64decode(result["body"]) == unmarked.body
    assert OVERLAY_KEY not in [key for _, _, key in calls]


@pytest.mark.parametrize(
    "overlay", [b"not an image", png((5000, 4000), RED)], ids=["garbage", "too-large"]
)
def test_an_unusable_overlay_is_a_clear_error(overlay):
    with pytest.raises(WatermarkError, match=OVERLAY_KEY):
        prepare(overlay, settings())


# --- the config: off by default, every bad value named ------------------------------------


@pytest.mark.parametrize(
    ("mark", "field"),
    [
        ({"prefixes": ["videos/"]}, "cdn.watermark.prefixes"),
        ({"overlay_key": "variants/images/a.png/800x0.png"}, "cdn.watermark.overlay_key"),
        ({"overlay_key": "branding/*.png"}, "cdn.watermark.overlay_key"),
        ({"overlay_key": "branding/../secret.png"}, "cdn.watermark.overlay_key"),
        ({"overlay_key": "branding/mark.svg"}, "cdn.watermark.overlay_key"),
        ({"opacity": 0}, "cdn.watermark.opacity"),
        ({"position": "middle"}, "cdn.watermark.position"),
        ({"scale_percent": 150}, "cdn.watermark.scale_percent"),
    ],
)
def test_bad_watermark_config_names_the_field(mark, field):
    data = example_data({"overlay_key": OVERLAY_KEY, "prefixes": ["images/"], **mark})
    with pytest.raises(ConfigError, match=rf"\b{field}\b"):
        parse_config(data, "config/bad.yaml")


# --- the edge: fetched once, applied by prefix, missing overlay is a clear 502 -------------


@pytest.fixture
def marked_edge(load_edge):
    return load_edge(cdn_with(position="bottom-right", opacity=1.0))


def test_the_edge_marks_variants_and_fetches_the_overlay_once(
    marked_edge, s3, bucket, miss, s3_calls
):
    s3.put_object(Bucket=bucket, Key=OVERLAY_KEY, Body=png((100, 50), RED))
    s3.put_object(Bucket=bucket, Key="images/a.png", Body=png((1000, 500), BLUE))
    calls = s3_calls(marked_edge)
    for fmt in ("png", "webp"):
        variant = decoded(marked_edge.handler(miss(f"/variants/images/a.png/800x0.{fmt}")))
        assert close(variant.convert("RGB").getpixel((700, 350)), RED, 12)
        assert close(variant.convert("RGB").getpixel((100, 100)), BLUE, 12)
    stored = s3.get_object(Bucket=bucket, Key="variants/images/a.png/800x0.png")["Body"].read()
    assert Image.open(io.BytesIO(stored)).getpixel((700, 350)) == RED
    assert [c for c in calls if c[2] == OVERLAY_KEY] == [("GetObject", bucket, OVERLAY_KEY)]


def test_variants_outside_the_watermark_prefixes_are_left_alone(load_edge, s3, bucket, miss):
    data = example_data({"overlay_key": OVERLAY_KEY, "prefixes": ["images/brand/"]})
    edge = load_edge(parse_config(data, "example").cdn)
    s3.put_object(Bucket=bucket, Key="images/a.png", Body=png((1000, 500), BLUE))
    # No overlay stored at all: an unmarked prefix never needs it.
    variant = decoded(edge.handler(miss("/variants/images/a.png/800x0.png")))
    assert variant.getpixel((700, 350)) == BLUE


def test_a_missing_overlay_is_a_clear_502_and_nothing_is_stored(marked_edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/a.png", Body=png((1000, 500), BLUE))
    result = marked_edge.handler(miss("/variants/images/a.png/800x0.webp"))
    assert result["status"] == "502", result
    assert f"the watermark overlay {OVERLAY_KEY} is missing" in result["body"]
    assert result["headers"]["cache-control"][0]["value"] == "no-store"
    assert stored_keys(s3, bucket) == ["images/a.png"]
    # Uploaded afterwards, it is picked up without a new container.
    s3.put_object(Bucket=bucket, Key=OVERLAY_KEY, Body=png((100, 50), RED))
    variant = decoded(marked_edge.handler(miss("/variants/images/a.png/800x0.png")))
    assert variant.getpixel((700, 350)) == RED


def test_an_overlay_that_is_not_an_image_is_a_clear_502(marked_edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key=OVERLAY_KEY, Body=b"<svg/>")
    s3.put_object(Bucket=bucket, Key="images/a.png", Body=png((1000, 500), BLUE))
    result = marked_edge.handler(miss("/variants/images/a.png/800x0.webp"))
    assert result["status"] == "502", result
    assert "not a decodable image" in result["body"]
    assert stored_keys(s3, bucket) == [OVERLAY_KEY, "images/a.png"]


# --- IAM: the resizer may read exactly the overlay's key -----------------------------------


def test_the_resizer_may_read_exactly_the_overlay_key(tmp_path):
    data = example_data({"overlay_key": OVERLAY_KEY, "prefixes": ["images/"]})
    deployment = synthesize(parse_config(data, "example with a watermark"), tmp_path)
    (edge_stack,) = [name for name in deployment.templates if name.startswith("edge-lambda")]
    reads = sorted(
        resource
        for statement in policy_statements(deployment.template(edge_stack))
        if "s3:GetObject" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    )
    assert reads == sorted(
        f"{bucket}/{key}" for bucket in (PRIMARY, REPLICA) for key in ("images/*", OVERLAY_KEY)
    )

"""``cover`` variants: the crop keeps the subject (focal point, else the automatic centre),
the size is exact, and the allowlist, the variant path and the CloudFront Function agree."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stacks.config import load_config
from stowage.images.core import (
    VariantConfig,
    VariantError,
    VariantRequest,
    parse_variant_uri,
    render,
)
from stowage.images.crop import cover_box, decode_box, output_size
from stowage.images.focal import focal_text, parse_focal
from tests.lambda_edge.cff import function_runner, viewer_event

RED = (220, 30, 30)
BLUE = (30, 60, 220)
CONFIG = VariantConfig.from_json(
    {
        "widths": [320, 800],
        "heights": [0],
        "boxes": [[400, 400], [1200, 630]],
        "fits": ["fit", "cover"],
        "source_prefixes": ["images/"],
        "max_animation_frames": 300,
        "max_animation_input_pixels": 100_000_000,
        "max_animation_output_pixels": 40_000_000,
    }
)


def photo(size=(1600, 800), subject_at=0.85, marker_at=None, fmt="JPEG") -> bytes:
    """A smooth grey gradient with a detailed red subject (noisy texture) centred at
    ``subject_at`` of the width, and optionally a flat blue marker at ``marker_at``."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.blend(image, Image.new("RGB", size, (128, 128, 128)), 0.7)
    rng = random.Random(14)  # noqa: S311 - a fixed texture, not a secret
    side = height // 3
    left = int(subject_at * width) - side // 2
    for y in range(height // 3, 2 * height // 3, 4):
        for x in range(left, left + side, 4):
            shade = rng.randrange(120, 256)
            image.paste((shade, 20, 20), (x, y, x + 4, y + 4))
    if marker_at is not None:
        x = int(marker_at * width)
        image.paste(BLUE, (x - side // 2, height // 3, x + side // 2, 2 * height // 3))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def share(image: Image.Image, colour: tuple[int, int, int]) -> float:
    """The fraction of pixels whose dominant channel is ``colour``'s."""
    channel = colour.index(max(colour))
    pixels = list(image.convert("RGB").get_flattened_data())
    return sum(
        1
        for p in pixels
        if p[channel] > 100 and p[channel] > 2 * max(p[i] for i in range(3) if i != channel)
    ) / len(pixels)


def cover(source: bytes, box=(400, 400), fmt="png", focal=None) -> Image.Image:
    request = VariantRequest("images/a.jpg", *box, fmt, "cover")
    rendered = render(source, request, CONFIG, focal=focal)
    image = Image.open(io.BytesIO(rendered.body))
    assert image.size == (rendered.width, rendered.height)
    return image


def test_automatic_crop_keeps_an_off_centre_subject():
    source = photo(subject_at=0.85)
    image = cover(source)
    assert image.size == (400, 400)
    # The subject is a sixth of the frame's area (sparse texture: about a third of that red);
    # a centred crop ([400, 1200] of 1600 columns) would show none of it.
    assert share(image, RED) > 0.05
    centred = cover(source, focal=(0.5, 0.5))
    assert share(centred, RED) == 0


def test_automatic_crop_finds_a_subject_at_the_top_of_a_portrait():
    landscape = Image.open(io.BytesIO(photo(size=(1600, 800), subject_at=0.15)))
    out = io.BytesIO()
    landscape.rotate(-90, expand=True).save(out, "PNG")  # 800x1600, the subject near the top
    image = cover(out.getvalue(), box=(400, 400))
    assert image.size == (400, 400)
    assert share(image, RED) > 0.05
    assert share(cover(out.getvalue(), box=(400, 400), focal=(0.5, 0.5)), RED) == 0


def test_focal_point_wins_over_the_automatic_centre():
    source = photo(subject_at=0.85, marker_at=0.12)
    image = cover(source, focal=(0.12, 0.5))
    assert share(image, BLUE) > 0.1
    assert share(image, RED) == 0


def test_an_image_without_a_subject_is_cropped_in_its_centre():
    """A grey ramp has no edges and no colour: every window scores alike, the centre wins."""
    out = io.BytesIO()
    Image.linear_gradient("L").rotate(90).resize((1600, 800)).save(out, "PNG")
    automatic = cover(out.getvalue())
    assert automatic.tobytes() == cover(out.getvalue(), focal=(0.5, 0.5)).tobytes()
    assert automatic.tobytes() != cover(out.getvalue(), focal=(0.0, 0.5)).tobytes()


@pytest.mark.parametrize(
    ("source_size", "box", "expected"),
    [
        ((1600, 800), (400, 400), (400, 400)),
        ((800, 1600), (400, 400), (400, 400)),
        ((4000, 3000), (1200, 630), (1200, 630)),
        ((631, 2000), (1200, 630), (631, 331)),  # small: the ratio kept, never upscaled
        ((300, 200), (400, 400), (200, 200)),
    ],
)
@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_cover_output_size_is_exact(source_size, box, expected, fmt):
    image = cover(photo(size=source_size), box=box, fmt=fmt)
    assert image.size == expected


def test_exif_rotated_jpeg_is_covered_upright():
    from tests.lambda_edge import images

    # Stored 1200x800 with orientation 6: shown 800x1200, its top half red. The focal point
    # near the top puts the 800x800 window at the top: rows 0-800, three quarters red.
    image = cover(images.exif_rotated_jpeg(), box=(400, 400), focal=(0.5, 0.1))
    assert image.size == (400, 400)
    assert share(image, RED) == pytest.approx(0.75, abs=0.02)
    bottom = cover(images.exif_rotated_jpeg(), box=(400, 400), focal=(0.5, 0.9))
    assert share(bottom, RED) == pytest.approx(0.25, abs=0.02)


def test_animated_cover_crops_every_frame_with_the_same_box():
    frames = []
    for index in range(4):
        frame = Image.new("RGB", (600, 200), (128, 128, 128))
        frame.paste(BLUE if index % 2 else RED, (0, 0, 200, 200))
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    image = cover(out.getvalue(), box=(400, 400), fmt="webp", focal=(0.1, 0.5))
    assert image.is_animated
    assert image.n_frames == 4
    for index in range(4):
        image.seek(index)
        assert image.size == (200, 200)
        assert share(image, BLUE if index % 2 else RED) > 0.9


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/variants/images/a.jpg/400x400-cover.webp", ("images/a.jpg", 400, 400, "webp", "cover")),
        ("/variants/images/a.jpg/400x400.webp", ("images/a.jpg", 400, 400, "webp", "fit")),
        ("/variants/images/a.jpg/800x0.jpeg", ("images/a.jpg", 800, 0, "jpeg", "fit")),
    ],
)
def test_variant_paths_parse_both_modes_and_round_trip(uri, expected):
    request = parse_variant_uri(uri, CONFIG)
    assert (request.original_key, request.width, request.height, request.fmt, request.fit) == (
        expected
    )
    assert "/" + request.variant_key == uri


@pytest.mark.parametrize(
    "uri",
    [
        "/variants/images/a.jpg/800x0-cover.webp",  # cover needs a height
        "/variants/images/a.jpg/500x500-cover.webp",  # not an allowed box
        "/variants/images/a.jpg/400x400-fit.webp",  # one spelling per variant
        "/variants/images/a.jpg/400x400-COVER.webp",
        "/variants/images/a.jpg/0400x400-cover.webp",
    ],
)
def test_variant_paths_outside_the_allowlist_are_400(uri):
    with pytest.raises(VariantError) as caught:
        parse_variant_uri(uri, CONFIG)
    assert caught.value.status == 400


def test_cover_is_refused_where_the_deployment_allows_only_fit():
    only_fit = VariantConfig(widths=(400,), heights=(400,), fits=("fit",))
    assert parse_variant_uri("/variants/images/a.jpg/400x400.png", only_fit).fit == "fit"
    with pytest.raises(VariantError, match=r"\(cover\) not allowed"):
        parse_variant_uri("/variants/images/a.jpg/400x400-cover.png", only_fit)


@pytest.mark.parametrize(
    ("text", "focal"),
    [
        ("0.250,0.700", (0.25, 0.7)),
        ("0,1", (0.0, 1.0)),
        (" 1.000 , 0.5 ", (1.0, 0.5)),
        ("1.5,0.2", None),
        ("-0.1,0.2", None),
        ("nan,0.2", None),
        ("0.2", None),
        ("", None),
        (None, None),
    ],
)
def test_focal_metadata_parses_or_is_ignored(text, focal):
    assert parse_focal(text) == focal


def test_focal_metadata_round_trips():
    assert focal_text((0.25, 0.7)) == "0.250,0.700"
    assert parse_focal(focal_text((0.3333, 1))) == (0.333, 1.0)


# --- the CloudFront Function -------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    invoke = function_runner(tmp_path_factory.mktemp("cff-cover"))
    return lambda *events: invoke(list(events))


def img(query: dict[str, str]) -> dict:
    return viewer_event("/img/images/a.jpg", query, {"accept": {"value": "image/webp,*/*"}})


@pytest.mark.parametrize(
    ("query", "uri"),
    [
        ({"w": "400", "h": "400", "fit": "cover"}, "400x400-cover.webp"),
        ({"w": "100", "h": "100", "fit": "cover"}, "400x400-cover.webp"),  # snaps up
        ({"w": "900", "h": "900", "fit": "cover"}, "400x400-cover.webp"),  # the largest square
        ({"w": "1200", "h": "630", "fit": "cover"}, "1200x630-cover.webp"),
        ({"w": "600", "h": "300", "fit": "cover"}, "1200x630-cover.webp"),  # nearest ratio
        ({"w": "400", "h": "400", "fit": "cover", "fmt": "png"}, "400x400-cover.png"),
        ({"w": "400", "h": "400"}, "400x400.webp"),  # a box, fitted
        ({"w": "400", "h": "400", "fit": "fit"}, "400x400.webp"),
        ({"w": "700"}, "800x0.webp"),  # widths as before
        ({"w": "700", "h": "300"}, "800x0.webp"),
    ],
)
def test_function_maps_fit_and_cover_onto_variant_paths(run, query, uri):
    (result,) = run(img(query))
    assert result["uri"] == "/variants/images/a.jpg/" + uri
    assert parse_variant_uri(result["uri"], VariantConfig.from_json(_example_core_json()))


@pytest.mark.parametrize(
    "query",
    [
        {"w": "400", "fit": "cover"},
        {"w": "400", "h": "0", "fit": "cover"},
        {"w": "400", "h": "400", "fit": "contain"},
        {"w": "400", "h": "400", "fit": "COVER"},
    ],
)
def test_function_refuses_a_bad_fit_with_400(run, query):
    (result,) = run(img(query))
    assert result["statusCode"] == 400


def test_function_without_cover_boxes_refuses_cover(tmp_path):
    cdn = load_config("example").cdn.model_copy(update={"variant_boxes": []})
    from stacks.edge_config import cloudfront_function_code

    invoke = function_runner(tmp_path, cloudfront_function_code(cdn))
    (result,) = invoke([img({"w": "400", "h": "400", "fit": "cover"})])
    assert result["statusCode"] == 400
    assert "cover" in result["body"]


def _example_core_json() -> dict:
    from stacks.edge_config import variant_config

    return variant_config(load_config("example").cdn)


# --- geometry, for any sizes --------------------------------------------------------------


SIDES = st.integers(min_value=1, max_value=20_000)
BOXES = st.integers(min_value=1, max_value=8192)
FRACTIONS = st.floats(min_value=0, max_value=1)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(w=SIDES, h=SIDES, bw=BOXES, bh=BOXES, cx=FRACTIONS, cy=FRACTIONS)
def test_cover_geometry_stays_inside_keeps_the_ratio_and_never_upscales(w, h, bw, bh, cx, cy):
    left, top, right, bottom = cover_box((w, h), bw, bh, (cx, cy))
    assert 0 <= left <= right <= w + 1e-6
    assert 0 <= top <= bottom <= h + 1e-6
    # The window spans the whole width or the whole height, at the box's ratio.
    assert right - left == pytest.approx(w) or bottom - top == pytest.approx(h)
    assert (right - left) * bh == pytest.approx((bottom - top) * bw, rel=1e-9)
    out = output_size((w, h), bw, bh, "cover")
    assert out[0] <= max(bw, 1)
    assert out[1] <= max(bh, 1)
    assert out[0] <= right - left + 1
    assert out[1] <= bottom - top + 1
    if right - left >= bw:
        assert out == (bw, bh)
    # A decode shrunk to decode_box still holds a window as large as the output.
    dw, dh = decode_box((w, h), bw, bh, "cover")
    window = cover_box((dw, dh), bw, bh, (0.5, 0.5))
    assert window[2] - window[0] >= out[0] - 1

"""Accept q-values and client hints in the CloudFront Function, run under Node."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacks.config import load_config
from stacks.edge_config import cloudfront_function_code
from tests.lambda_edge.cff import function_runner, viewer_event

WIDTHS = [320, 640, 800, 1280, 1920]
PREFERENCE = ["avif", "webp", "jpeg", "png"]
# CloudFront Functions refuse code over 10 KB.
MAX_FUNCTION_BYTES = 10 * 1024


def request(query: dict[str, str] | None = None, **headers: str) -> dict:
    named = {k.replace("_", "-"): {"value": v} for k, v in headers.items()}
    return viewer_event("/img/images/a.jpg", query, named)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return function_runner(tmp_path_factory.mktemp("cff-hints"))


def chosen(results: list[dict]) -> list[str]:
    return [r.get("uri", "").rsplit("/", 1)[-1] for r in results]


def test_function_fits_cloudfront_functions_size_limit():
    assert len(cloudfront_function_code(load_config("example").cdn).encode()) < MAX_FUNCTION_BYTES


ACCEPT_TABLE = [
    ("image/avif;q=0,image/webp,*/*", "webp"),
    ("image/avif;q=0, image/*", "jpeg"),
    ("image/avif;q=0, image/webp;q=0.1, image/*", "jpeg"),
    ("IMAGE/AVIF;Q=0, image/webp", "webp"),
    ("image/avif;q=0.5,image/webp;q=0.6", "webp"),
    ("image/avif;q=0.6,image/webp;q=0.6", "avif"),
    ("image/webp;q=0.9,image/avif;q=0.8,image/jpeg", "jpeg"),
    ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "avif"),
    ("image/webp,*/*", "webp"),
    # Wildcards never select AVIF or WebP: older browsers send them without supporting either.
    ("image/webp,image/apng,image/*,*/*;q=0.8", "webp"),
    ("image/*", "jpeg"),
    ("*/*", "jpeg"),
    ("image/*;q=0.9, image/png", "png"),
    ("*/*;q=0.1, image/jpeg;q=0.2", "jpeg"),
    ("image/*;q=0, image/png;q=0.1", "png"),
    ("image/avif;q=1.000, image/webp;q=1", "avif"),
    ("image/avif ; q=0 , image/webp ; q=0.001", "webp"),
    ("image/avif;level=1;q=0, image/webp", "webp"),
    ('image/avif;profile="x";q=0, image/webp;q=0.5, */*', "jpeg"),
    ("image/avif, image/avif;q=0, image/webp;q=0.1", "webp"),
    # Malformed ranges are skipped, not read as AVIF.
    ("image/avif;q=2, image/webp", "webp"),
    ("image/avif;q=0.0001, image/webp;q=0.5", "webp"),
    ("image/avif;q=abc, image/webp;q=0.5", "webp"),
    ("image/avif;;q=0.9, image/webp;q=0.5", "webp"),
    ("*/avif, image/webp;q=0.5", "webp"),
    ("image/avif/x, image/webp;q=0.5", "webp"),
    ("avif, image/webp;q=0.5", "webp"),
    # Nothing valid at all: as if there were no Accept.
    ("image/avif;q=9", "jpeg"),
    ("", "jpeg"),
    (",,,;;;", "jpeg"),
    # Nothing allowed is acceptable: the most widely understood format.
    ("text/html", "jpeg"),
    ("image/*;q=0", "jpeg"),
    ("image/avif;q=0", "jpeg"),
    ("image/gif", "jpeg"),
]


def test_accept_q_values_pick_the_best_allowed_format(run):
    results = run([request({"w": "800"}, accept=accept) for accept, _ in ACCEPT_TABLE])
    assert chosen(results) == [f"800x0.{fmt}" for _, fmt in ACCEPT_TABLE]


def test_repeated_accept_headers_are_read_together(run):
    event = request({"w": "800"})
    event["request"]["headers"]["accept"] = {
        "value": "image/avif;q=0",
        "multiValue": [{"value": "image/avif;q=0"}, {"value": "image/webp"}],
    }
    assert chosen(run([event])) == ["800x0.webp"]


def test_huge_accept_header_is_bounded_and_answered(run):
    """A 200 KB header of AVIF refusals: only the first ranges count, the function answers."""
    huge = "image/avif;q=0," + "x/y;a=b," * 25_000
    (result,) = run([request({"w": "800"}, accept=huge)])
    assert result["uri"] == "/variants/images/a.jpg/800x0.jpeg"


RANGE = st.sampled_from(
    ["image/avif", "image/webp", "image/jpeg", "image/png", "image/gif", "image/*", "*/*"]
)
QVALUE = st.one_of(
    st.none(),
    st.sampled_from(["0", "0.0", "0.000", "1", "1.0", "0.5", "0.25", "0.001", "0.999"]),
)
ENTRY = st.tuples(RANGE, QVALUE, st.booleans())


def accept_header(entries: list[tuple[str, str | None, bool]]) -> str:
    return ", ".join(
        (r.upper() if upper else r) + ("" if q is None else f";q={q}") for r, q, upper in entries
    )


def expected_format(entries: list[tuple[str, str | None, bool]]) -> str:
    """RFC 9110 12.5.1: a format's weight is that of its most specific matching range; AVIF
    and WebP only by name."""
    entries = entries or [("*/*", None, False)]
    weights = {}
    for fmt in PREFERENCE:
        patterns = [(3, f"image/{fmt}")]
        if fmt not in ("avif", "webp"):
            patterns += [(2, "image/*"), (1, "*/*")]
        matches = [
            (specificity, 1.0 if q is None else float(q))
            for r, q, _ in entries
            for specificity, pattern in patterns
            if r == pattern
        ]
        if matches:
            top = max(s for s, _ in matches)
            weights[fmt] = min(q for s, q in matches if s == top)
    best = max(PREFERENCE, key=lambda f: (weights.get(f, 0), -PREFERENCE.index(f)))
    return best if weights.get(best, 0) > 0 else "jpeg"


@settings(max_examples=8, derandomize=True, deadline=None)
@given(st.lists(st.lists(ENTRY, max_size=6), min_size=60, max_size=60))
def test_accept_property_agrees_with_rfc_9110(run, headers):
    """300 Accept headers of ranges, q-values and case, in one Node run, against the rule."""
    results = run([request({"w": "800"}, accept=accept_header(h)) for h in headers])
    assert chosen(results) == [f"800x0.{expected_format(h)}" for h in headers]


@settings(max_examples=8, derandomize=True, deadline=None)
@given(st.lists(st.lists(ENTRY, max_size=6), min_size=60, max_size=60), st.randoms())
def test_avif_q0_never_selects_avif(run, headers, random):
    """However the rest of the header reads, `image/avif;q=0` among the ranges refuses AVIF."""
    accepts = []
    for entries in headers:
        spelled = [accept_header([e]) for e in entries if e[0] != "image/avif"]
        spelled.insert(random.randint(0, len(spelled)), "image/avif;q=0")
        accepts.append(", ".join(spelled))
    results = run([request({"w": "800"}, accept=a) for a in accepts])
    assert all(not uri.endswith(".avif") for uri in chosen(results)), accepts


def snapped(device_px: float) -> int:
    return min([w for w in WIDTHS if w >= device_px] or [max(WIDTHS)])


HINT_TABLE = [
    ({"sec_ch_width": "700"}, 800),
    ({"sec_ch_width": "700", "sec_ch_dpr": "2"}, 800),
    ({"width": "1281"}, 1920),
    ({"sec_ch_width": "99999"}, 1920),
    ({"sec_ch_width": "1"}, 320),
    ({"sec_ch_viewport_width": "400", "sec_ch_dpr": "2.5"}, 1280),
    ({"viewport_width": "400", "dpr": "1.6"}, 640),
    ({"sec_ch_viewport_width": "600"}, 640),
    ({"sec_ch_viewport_width": "600", "sec_ch_dpr": "junk"}, 640),
    ({"sec_ch_width": "abc", "width": "500"}, 640),
    # A DPR that is not a ratio in 0-8 counts as 1.
    ({"sec_ch_viewport_width": "400", "sec_ch_dpr": "9e99"}, 640),
    ({"sec_ch_viewport_width": "700", "sec_ch_dpr": "20"}, 800),
    ({"sec_ch_viewport_width": "200", "sec_ch_dpr": "1.6"}, 320),
]


def test_hints_choose_the_width_when_w_is_absent(run):
    results = run([request(accept="image/webp", **h) for h, _ in HINT_TABLE])
    assert chosen(results) == [f"{w}x0.webp" for _, w in HINT_TABLE]
    assert all(r["querystring"] == {} for r in results)


def test_explicit_w_wins_over_hints(run):
    (result,) = run([request({"w": "320"}, accept="image/webp", sec_ch_width="1900")])
    assert result["uri"] == "/variants/images/a.jpg/320x0.webp"


@pytest.mark.parametrize(
    "hints",
    [
        {},
        {"sec_ch_width": "abc"},
        {"sec_ch_width": "-5"},
        {"sec_ch_width": "0"},
        {"sec_ch_width": "1e9"},
        {"sec_ch_width": "123456"},
        {"sec_ch_dpr": "2"},
        {"sec_ch_viewport_width": "0", "sec_ch_dpr": "2"},
    ],
)
def test_garbage_or_missing_hints_without_w_are_400(run, hints):
    (result,) = run([request(**hints)])
    assert result["statusCode"] == 400


HINT = st.one_of(
    st.integers(min_value=-10, max_value=200_000).map(str),
    st.text(alphabet="0123456789.e- x", max_size=8),
)


@settings(max_examples=8, derandomize=True, deadline=None)
@given(st.lists(st.tuples(HINT, HINT, HINT), min_size=60, max_size=60))
def test_hint_property_snaps_up_to_the_allowlist(run, hints):
    """Any Sec-CH-Width / viewport / DPR strings: a valid hint snaps up to the allowlist,
    the largest when it is wider than all of them; anything else without w is a 400."""
    events = [request(sec_ch_width=w, sec_ch_viewport_width=v, sec_ch_dpr=d) for w, v, d in hints]
    for (w, v, d), result in zip(hints, run(events), strict=True):
        width = hinted_width(w, v, d)
        if width is None:
            assert result["statusCode"] == 400, (w, v, d)
        else:
            assert result["uri"].rsplit("/", 1)[-1] == f"{snapped(width)}x0.jpeg", (w, v, d)


def hinted_width(width: str, viewport: str, dpr: str) -> int | None:
    def pixels(value: str) -> int | None:
        value = value.strip()
        return int(value) if re.fullmatch(r"[0-9]{1,5}", value) and int(value) > 0 else None

    if pixels(width) is not None:
        return pixels(width)
    if pixels(viewport) is None:
        return None
    ratio = float(dpr) if re.fullmatch(r"[0-9]{1,2}(\.[0-9]{1,3})?", dpr.strip()) else 1
    return math.ceil(pixels(viewport) * (ratio if 0 < ratio <= 8 else 1) - 1e-6)

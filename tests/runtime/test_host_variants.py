"""Image variants on the single host, through Nginx from the role's template: stored
variants served from disk, misses rendered by the service with the image core and stored,
/img/ mapped by the deployment's CloudFront Function under njs."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from stacks.config import CdnConfig
from stacks.edge_config import cloudfront_function_code, host_variant_config
from stowage.signing import secure_link_md5
from stowage.variants import sign_variant_url
from tests.lambda_edge.cff import function_runner, viewer_event
from tests.runtime.conftest import SECRET, TOKEN
from tests.runtime.nginx import stowage_behind_nginx

pytestmark = pytest.mark.needs_root  # Nginx from apt, run as root by its config

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CDN = CdnConfig(
    variant_source_prefixes=["images/", "processed/"],
    variant_widths=[320, 640, 800, 1280],
    variant_heights=[0],
    variant_formats=["avif", "webp", "jpeg", "png"],
)
PRIVATE = "processed/"


def photo(size=(1600, 1200)) -> bytes:
    image = Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def host(tmp_path: Path, **env: str):
    config = tmp_path / "variants.json"
    config.write_text(json.dumps(host_variant_config(CDN)))
    site_vars = {
        "nginx_image_variants": True,
        "nginx_img_function": cloudfront_function_code(CDN),
        "nginx_private_prefixes": [PRIVATE],
    }
    return stowage_behind_nginx(
        tmp_path, site_vars=site_vars, STOWAGE_VARIANTS_CONFIG=str(config), **env
    )


@pytest.fixture
def stack(tmp_path):
    with host(tmp_path) as running_stack:
        yield running_stack


def upload(stack, data: bytes) -> dict:
    response = stack.client.post("/api/upload/image", files={"file": ("p.jpg", data)}, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def variant_files(root: Path) -> list[str]:
    base = root / "variants"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if not p.is_dir())


def test_a_miss_is_rendered_stored_and_then_served_by_nginx_alone(stack):
    key = upload(stack, photo())["key"]
    uri = f"/variants/{key}/800x0.webp"
    first = stack.client.get(uri)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp"
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert decoded(first.content).size == (800, 600)
    stored = stack.root / "variants" / key / "800x0.webp"
    assert stored.read_bytes() == first.content
    assert list((stack.root / ".stowage-tmp").glob("*.part")) == []

    # The service is gone: the stored variant still comes from disk; a new miss cannot.
    os.killpg(stack.service.pid, signal.SIGKILL)
    stack.service.wait()
    again = stack.client.get(uri)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == "image/webp"
    assert again.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert again.headers["x-content-type-options"] == "nosniff"
    assert again.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert stack.client.get(f"/variants/{key}/320x0.webp").status_code == 502


def test_requests_outside_the_allowlist_are_refused_and_write_nothing(stack):
    key = upload(stack, photo((400, 300)))["key"]
    (stack.root / "images" / "notes.jpg").write_bytes(b"plain text, not an image")
    (stack.root / "videos").mkdir(exist_ok=True)
    (stack.root / "videos" / "a.jpg").write_bytes(photo((64, 48)))
    refusals = {
        f"/variants/{key}/801x0.webp": (400, "not allowed"),
        f"/variants/{key}/0800x0.webp": (400, "leading zeros"),
        f"/variants/{key}/800x0.gif": (400, "not allowed"),
        f"/variants/{key}/800x0": (400, "expected"),
        "/variants/videos/a.jpg/800x0.webp": (403, "images/"),
        f"/variants/variants/{key}/800x0.webp/320x0.webp": (400, "variant of a variant"),
        "/variants/images/missing.jpg/800x0.webp": (404, "no original"),
        "/variants/images/notes.jpg/800x0.webp": (415, "not a decodable image"),
    }
    for uri, (status, words) in refusals.items():
        response = stack.client.get(uri)
        assert response.status_code == status, (uri, response.text)
        body = response.json()
        assert words in body["detail"], (uri, body)
        assert "Traceback" not in response.text
    assert variant_files(stack.root) == []


def test_a_private_prefix_needs_a_signature_on_variants_and_img(stack):
    (stack.root / "processed").mkdir()
    (stack.root / "processed" / "menu.jpg").write_bytes(photo((1000, 750)))
    uri = "/variants/processed/menu.jpg/320x0.jpeg"
    for unsigned in (uri, "/variants/%70rocessed/menu.jpg/320x0.jpeg", "/img/processed/menu.jpg"):
        response = stack.client.get(unsigned + ("?w=320" if unsigned.startswith("/img/") else ""))
        assert response.status_code == 403, unsigned
    assert variant_files(stack.root) == []

    signed = sign_variant_url(stack.base, uri, SECRET, ttl=60)
    ok = httpx.get(signed)
    assert ok.status_code == 200, ok.text
    assert decoded(ok.content).size == (320, 240)
    assert ok.headers["cache-control"] == "private, max-age=3600"
    again = httpx.get(signed)  # now from disk, still signed and private
    assert again.status_code == 200
    assert again.headers["cache-control"] == "private, max-age=3600"
    assert httpx.get(signed.replace("md5=", "md5=A")).status_code == 403
    assert httpx.get(sign_variant_url(stack.base, uri, SECRET, ttl=-5)).status_code == 410
    assert stack.client.get(uri).status_code == 403  # stored, and still not public

    friendly = "/img/processed/menu.jpg?w=640&fmt=png"
    img = httpx.get(sign_variant_url(stack.base, friendly, SECRET, ttl=60))
    assert img.status_code == 200, img.text
    assert img.headers["content-type"] == "image/png"
    assert img.headers["cache-control"] == "private, max-age=3600"


def test_a_signed_img_link_is_for_its_size_fit_and_format_only(stack):
    """The review's finding: /img/ signatures covered the path alone, so a link handed out
    for a thumbnail gave the full-size variant (CloudFront's signatures cover the query)."""
    (stack.root / "processed").mkdir()
    (stack.root / "processed" / "menu.jpg").write_bytes(photo((1600, 1200)))
    thumbnail = sign_variant_url(stack.base, "/img/processed/menu.jpg?w=320", SECRET, ttl=60)
    assert httpx.get(thumbnail).status_code == 200
    path, _, signature = thumbnail.partition("?w=320&")
    for other in (
        "w=1280",
        "w=1280&w=320",
        "w=320&fmt=png",
        "w=320&h=320&fit=cover",
        "",
        # The second review: Nginx's $arg_w matches W and does not decode %77; njs reads
        # r.args: one value checked, another rendered.
        "W=320&w=1280",
        "%77=1280&w=320",
        "w=320&%77=1280",
        "W=320&FMT=jpeg&w=1280&fmt=png",
        "w&w=320",
    ):
        response = httpx.get(f"{path}?{other}&{signature}" if other else f"{path}?{signature}")
        # 403: the signature does not cover it; 400: refused as ambiguous before mapping.
        assert response.status_code in (400, 403), other
    expires = int(time.time()) + 60
    path_only = secure_link_md5("/img/processed/menu.jpg", expires, SECRET)
    response = stack.client.get(f"/img/processed/menu.jpg?w=1280&expires={expires}&md5={path_only}")
    assert response.status_code == 403
    # A link without w would let client hints pick any width: not a signed link.
    no_width = secure_link_md5("/img/processed/menu.jpg?w=&h=&fit=&fmt=", expires, SECRET)
    hinted = stack.client.get(
        f"/img/processed/menu.jpg?expires={expires}&md5={no_width}",
        headers={"Sec-CH-Width": "1280"},
    )
    assert hinted.status_code == 403
    with pytest.raises(ValueError, match="names its width"):
        sign_variant_url(stack.base, "/img/processed/menu.jpg?fmt=png", SECRET, ttl=60)


def test_deleting_an_original_deletes_its_variants(stack):
    record = upload(stack, photo((900, 600)))
    other = upload(stack, photo((900, 600)))
    for item in (record, other):
        for name in ("320x0.webp", "640x0.jpeg"):
            assert stack.client.get(f"/variants/{item['key']}/{name}").status_code == 200
    assert len(variant_files(stack.root)) == 4

    assert stack.client.delete(f"/api/upload/{record['id']}", headers=AUTH).status_code in (
        200,
        204,
    )
    assert not (stack.root / "variants" / record["key"]).exists()
    assert variant_files(stack.root) == sorted(
        f"{other['key']}/{name}" for name in ("320x0.webp", "640x0.jpeg")
    )
    gone = stack.client.get(f"/variants/{record['key']}/320x0.webp")
    assert gone.status_code == 404


def renders_logged(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "serve.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return [event["key"] for event in events if event.get("message") == "variant rendered"]


def test_concurrent_first_hits_store_one_whole_variant(stack, tmp_path):
    key = upload(stack, photo((2400, 1800)))["key"]
    uri = f"/variants/{key}/1280x0.webp"
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: httpx.get(stack.base + uri, timeout=60), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.content for r in responses}) == 1
    assert decoded(responses[0].content).size == (1280, 960)
    assert variant_files(stack.root) == [f"{key}/1280x0.webp"]
    assert (stack.root / "variants" / key / "1280x0.webp").read_bytes() == responses[0].content
    assert list((stack.root / ".stowage-tmp").glob("*.part")) == []
    assert renders_logged(tmp_path) == [f"variants/{key}/1280x0.webp"]  # rendered once


def test_a_symlinked_variant_is_never_followed(stack, tmp_path):
    key = upload(stack, photo((400, 300)))["key"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "320x0.webp").write_bytes(b"secret bytes outside the media root")
    (stack.root / "variants" / key).parent.mkdir(parents=True)
    (stack.root / "variants" / key).symlink_to(outside)
    response = stack.client.get(f"/variants/{key}/320x0.webp")
    assert 400 <= response.status_code < 500, response.status_code
    assert b"secret bytes" not in response.content
    # Nor is a variant file that is itself a link.
    other = upload(stack, photo((400, 300)))["key"]
    (stack.root / "variants" / other).mkdir(parents=True)
    (stack.root / "variants" / other / "320x0.webp").symlink_to(outside / "320x0.webp")
    response = stack.client.get(f"/variants/{other}/320x0.webp")
    assert 400 <= response.status_code < 500, response.status_code
    assert b"secret bytes" not in response.content


def test_img_negotiates_the_format_from_accept_as_the_cloudfront_function_does(stack):
    key = upload(stack, photo())["key"]
    cases = [
        ("image/avif,image/webp,*/*", "image/avif", "avif"),
        ("image/webp,*/*;q=0.8", "image/webp", "webp"),
        ("image/avif;q=0,image/webp,*/*;q=0.8", "image/webp", "webp"),
        ("image/avif;q=0,image/webp;q=0.9,*/*", "image/jpeg", "jpeg"),
        ("image/jpeg", "image/jpeg", "jpeg"),
        ("", "image/jpeg", "jpeg"),
    ]
    for accept, content_type, ext in cases:
        response = stack.client.get(f"/img/{key}?w=700", headers={"Accept": accept})
        assert response.status_code == 200, (accept, response.text)
        assert response.headers["content-type"] == content_type, accept
        assert "Accept" in response.headers["vary"]
        assert decoded(response.content).size == (800, 600)  # 700 snaps up to 800
        assert (stack.root / "variants" / key / f"800x0.{ext}").is_file()
    from_disk = stack.client.get(f"/img/{key}?w=800&fmt=webp")
    assert from_disk.status_code == 200
    assert from_disk.content == (stack.root / "variants" / key / "800x0.webp").read_bytes()

    for bad in (f"/img/{key}?w=abc", f"/img/{key}", "/img/%69mages/x.jpg?w=320"):
        refused = stack.client.get(bad)
        assert refused.status_code == 400, bad
        assert refused.headers["x-content-type-options"] == "nosniff"


def test_a_burst_of_misses_renders_a_bounded_number_at_once(tmp_path):
    with host(tmp_path, STOWAGE_VARIANT_RENDERS="1", STOWAGE_VARIANT_RENDER_QUEUE="1") as stack:
        key = upload(stack, photo((3000, 2250)))["key"]
        uris = [
            f"/variants/{key}/{w}x0.{fmt}" for w in (320, 640, 800, 1280) for fmt in ("png", "jpeg")
        ]
        with ThreadPoolExecutor(len(uris)) as pool:
            responses = list(pool.map(lambda u: httpx.get(stack.base + u, timeout=120), uris))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}, statuses
        busy = [r for r in responses if r.status_code == 503]
        assert busy, "eight misses at once with one render slot and one queue place all ran"
        assert all(r.headers["retry-after"] == "2" for r in busy)
        assert all(r.json()["error"] == "busy" for r in busy)
        # A "retry" must not be cached as the variant would be (review V10: it went out with
        # no Cache-Control at all).
        assert all(r.headers["cache-control"] == "no-store" for r in busy)
        # Each refused miss succeeds once the burst is over, and nothing half-written stays.
        for uri, response in zip(uris, responses, strict=True):
            if response.status_code == 503:
                assert stack.client.get(uri).status_code == 200
        assert len(variant_files(stack.root)) == len(uris)
        assert list((stack.root / ".stowage-tmp").glob("*.part")) == []


def test_img_maps_every_request_as_the_cloudfront_function_does_under_node(stack, tmp_path):
    """One mapping: the host's /img/ answers (njs) name the variant that Node's run of the
    same synthesized function names, for widths, heights, formats, Accept and hints."""
    key = upload(stack, photo((700, 500)))["key"]
    cases = [
        ({"w": "10"}, {}),
        ({"w": "650"}, {"accept": "image/avif,image/webp,*/*"}),
        ({"w": "5000"}, {"accept": "image/avif;q=0,image/webp;q=0.5,image/png"}),
        ({"w": "800", "fmt": "jpg"}, {"accept": "image/avif"}),
        ({"w": "320", "h": "0"}, {"accept": "image/webp;q=0.9,image/jpeg"}),
        ({}, {"sec-ch-width": "700", "accept": "image/webp"}),
        ({}, {"sec-ch-viewport-width": "400", "sec-ch-dpr": "2", "accept": "*/*"}),
        ({"w": "0"}, {}),
        ({"w": "800", "fmt": "gif"}, {}),
    ]
    (tmp_path / "node").mkdir()
    node = function_runner(tmp_path / "node", cloudfront_function_code(CDN))
    expected = node(
        [
            viewer_event(f"/img/{key}", query, {k: {"value": v} for k, v in headers.items()})
            for query, headers in cases
        ]
    )
    for (query, headers), answer in zip(cases, expected, strict=True):
        response = stack.client.get(f"/img/{key}", params=query, headers=headers)
        if "statusCode" in answer:
            assert response.status_code == answer["statusCode"], (query, headers)
            assert response.text == answer["body"]
            continue
        assert response.status_code == 200, (query, headers, response.text)
        name = answer["uri"].rsplit("/", 1)[1]
        stored = stack.root / "variants" / key / name
        assert stored.read_bytes() == response.content, (query, headers, name)


def vm_hwm(pid: int) -> int:
    """Peak resident memory of a process (bytes), from the kernel."""
    status = Path(f"/proc/{pid}/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        * 1024
    )


def test_a_queued_burst_costs_the_memory_of_one_render_at_a_time(tmp_path):
    with host(tmp_path, STOWAGE_VARIANT_RENDERS="1", STOWAGE_VARIANT_RENDER_QUEUE="16") as stack:
        key = upload(stack, photo((3000, 2250)))["key"]
        before = vm_hwm(stack.service.pid)
        # The largest of the variants below, alone: what one render costs at its peak.
        assert stack.client.get(f"/variants/{key}/1280x0.png").status_code == 200
        one = vm_hwm(stack.service.pid)
        uris = [
            f"/variants/{key}/{w}x0.{fmt}"
            for w in (640, 800, 1280)
            for fmt in ("png", "jpeg", "webp")
        ]
        uris.remove(f"/variants/{key}/1280x0.png")
        with ThreadPoolExecutor(len(uris)) as pool:
            responses = list(pool.map(lambda u: httpx.get(stack.base + u, timeout=120), uris))
        assert [r.status_code for r in responses] == [200] * len(uris)
        burst = vm_hwm(stack.service.pid)
        # Eight renders at once hold eight decoded originals (+77 MB here without the bound);
        # one at a time stays within a second render's cost (+6 MB measured).
        assert burst - one <= one - before, (before, one, burst)

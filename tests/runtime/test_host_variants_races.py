"""A variant rendering while its original changes must not outlive the change: a delete or a
new focal point that lands after the render read the original (the
outside review's race: 3 of 3 deleted originals kept a public, immutable variant; a new focal
point kept the old crop). The interleaving is forced: the concurrent request runs inside the
core's ``render``, after the original was read and before the result is stored."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json

import pytest
from PIL import Image

import stowage.images.core as core
from stacks.config import CdnConfig
from stacks.edge_config import host_variant_config
from stowage.service import Spooled, Stowage
from stowage.settings import Settings
from stowage.sniff import SNIFF_BYTES
from stowage.variants import VariantRefused
from tests.runtime.conftest import SECRET


def half_black_half_white() -> bytes:
    """600x1200: black top half, white bottom half; a 400x400 cover crop shows one of them."""
    image = Image.new("L", (600, 1200), 0)
    image.paste(255, (0, 600, 600, 1200))
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue()


def mean_luma(body: bytes) -> float:
    image = Image.open(io.BytesIO(body)).convert("L")
    return sum(image.get_flattened_data()) / (image.width * image.height)


@pytest.fixture
def service(tmp_path):
    config = tmp_path / "variants.json"
    config.write_text(json.dumps(host_variant_config(CdnConfig(variant_boxes=["400x400"]))))
    settings = Settings(
        local_root=tmp_path / "media", signing_secret=SECRET, variants_config=config
    )
    service = Stowage.from_settings(settings)
    yield service
    service.close()


def store(service: Stowage, data: bytes, *, is_temp: bool = False):
    path = service.spool.spool_file()
    path.write_bytes(data)
    spooled = Spooled(path, hashlib.sha256(data).hexdigest(), len(data), data[:SNIFF_BYTES])
    return service.store("image", spooled, is_temp=is_temp)


def meanwhile(monkeypatch, action) -> None:
    """Run ``action`` inside the first render, once: a request landing mid-render."""
    real = core.render
    pending = [action]

    def render(*args, **kwargs):
        while pending:
            pending.pop()()
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "render", render)


def get(service: Stowage, uri: str) -> bytes:
    body, _ = asyncio.run(service.variants.get(uri))
    return body


def stored_variants(service: Stowage, key: str) -> list[str]:
    directory = service.settings.local_root / "variants" / key
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("variant", ["640x0.webp", "400x400-cover.png"])
def test_an_original_deleted_mid_render_leaves_no_variant(service, monkeypatch, variant):
    record = store(service, half_black_half_white())
    meanwhile(monkeypatch, lambda: service.delete(record.id))

    with pytest.raises(VariantRefused) as refused:
        get(service, f"/variants/{record.key}/{variant}")

    assert refused.value.status == 404
    assert stored_variants(service, record.key) == []


def test_a_focal_point_set_mid_render_gives_the_new_crop(service, monkeypatch):
    record = store(service, half_black_half_white())
    service.set_focal_point(record.id, (0.5, 1.0))  # the white bottom
    uri = f"/variants/{record.key}/400x400-cover.png"
    meanwhile(monkeypatch, lambda: service.set_focal_point(record.id, (0.5, 0.0)))

    body = get(service, uri)

    assert mean_luma(body) < 60  # the black top, as the focal point set last asks
    stored = service.settings.local_root / "variants" / record.key / "400x400-cover.png"
    assert mean_luma(stored.read_bytes()) < 60


def test_a_fit_variant_does_not_depend_on_the_focal_point(service, monkeypatch):
    record = store(service, half_black_half_white())
    renders = []
    real = core.render

    def counting(*args, **kwargs):
        renders.append(1)
        if len(renders) == 1:
            service.set_focal_point(record.id, (0.5, 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "render", counting)
    get(service, f"/variants/{record.key}/640x0.webp")
    assert len(renders) == 1
    assert stored_variants(service, record.key) == ["640x0.webp"]

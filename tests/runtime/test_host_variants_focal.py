"""A cover variant rendered on the host centres on the focal point the API stored, and a new
focal point gives a new crop: on local disk and in s3 mode (where the host's disk is not a
side of the backend, so only the service can retire what it rendered there)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from stacks.config import CdnConfig
from stacks.edge_config import host_variant_config

RED = (220, 20, 20)


def red_on_the_left() -> bytes:
    """1200x600, grey, a red block around x = 0.1: a 400x400 cover crop takes a 600x600
    window, which holds the block only when it is centred on the left."""
    image = Image.new("RGB", (1200, 600), (128, 128, 128))
    image.paste(Image.new("RGB", (100, 100), RED), (70, 250))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def holds_red(body: bytes) -> bool:
    image = Image.open(io.BytesIO(body)).convert("RGB")
    assert image.size == (400, 400)
    return any(r > 180 and g < 80 and b < 80 for r, g, b in image.get_flattened_data())


@pytest.fixture(params=["local", "s3"])
def host(request, serve, tmp_path):
    config = tmp_path / "variants.json"
    config.write_text(json.dumps(host_variant_config(CdnConfig(variant_boxes=["400x400"]))))
    env = {"STOWAGE_VARIANTS_CONFIG": str(config)}
    if request.param == "s3":
        env |= {
            "STOWAGE_STORAGE_MODE": "s3",
            "STOWAGE_S3_BUCKET": request.getfixturevalue("bucket"),
        }
    return serve(**env)


def test_a_cover_variant_follows_the_focal_point_set_through_the_api(host):
    record = host.client.post(
        "/api/upload/image", files={"file": ("p.png", red_on_the_left())}, headers=host.auth
    ).json()
    focal = f"/api/upload/{record['id']}/focal-point"
    variant = f"/variants/{record['key']}/400x400-cover.webp"

    put = host.client.put(focal, json={"x": 0.1, "y": 0.5}, headers=host.auth)
    assert put.status_code == 200, put.text
    left = host.client.get(variant)
    assert left.status_code == 200, left.text
    assert holds_red(left.content)
    stored = host.root / "variants" / record["key"] / "400x400-cover.webp"
    assert stored.read_bytes() == left.content

    put = host.client.put(focal, json={"x": 0.9, "y": 0.5}, headers=host.auth)
    assert put.status_code == 200, put.text
    assert not stored.exists()  # the old crop is not served again
    right = host.client.get(variant)
    assert right.status_code == 200, right.text
    assert not holds_red(right.content)

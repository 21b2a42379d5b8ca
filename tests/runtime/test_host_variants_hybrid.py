"""The service's variant route without Nginx in front. Hybrid mode: an original that lives
in S3 (moto's server) is read through the backend for a variant stored on disk, and
deleting or moving the original removes its variants on every side (the host's on disk,
the edge's in the bucket). Private prefixes: the service checks the signature itself."""

from __future__ import annotations

import io
import json

import boto3
import httpx
import pytest
from PIL import Image

from stacks.config import CdnConfig
from stacks.edge_config import host_variant_config
from stowage.variants import sign_variant_url
from tests.runtime.conftest import SECRET


def jpeg(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (900 + n, 600), (10 * n % 255, 80, 160)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def hybrid(serve, bucket, tmp_path):
    config = tmp_path / "variants.json"
    config.write_text(json.dumps(host_variant_config(CdnConfig())))
    api = serve(
        STOWAGE_STORAGE_MODE="hybrid",
        STOWAGE_S3_BUCKET=bucket,
        STOWAGE_HYBRID_S3_PERCENT="50",
        STOWAGE_VARIANTS_CONFIG=str(config),
    )
    api.s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
    api.bucket = bucket
    return api


def upload_to(api, side: str, *, is_temp: bool = False) -> dict:
    for n in range(64):
        body = api.client.post(
            "/api/upload/image",
            params={"is_temp": str(is_temp).lower()},
            files={"file": ("p.jpg", jpeg(n))},
            headers=api.auth,
        ).json()
        if body["backend"] == side:
            return body
    raise AssertionError(f"no upload landed on {side}")


def s3_keys(api, prefix: str) -> list[str]:
    listed = api.s3.list_objects_v2(Bucket=api.bucket, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listed]


def test_an_s3_original_renders_to_disk_and_delete_clears_both_sides(hybrid):
    record = upload_to(hybrid, "s3")
    assert not (hybrid.root / record["key"]).exists()
    response = hybrid.client.get(f"/variants/{record['key']}/320x0.webp")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).width == 320
    on_disk = hybrid.root / "variants" / record["key"] / "320x0.webp"
    assert on_disk.read_bytes() == response.content
    # What the edge stored for the same original in the bucket.
    edge_variant = f"variants/{record['key']}/640x0.jpeg"
    hybrid.s3.put_object(Bucket=hybrid.bucket, Key=edge_variant, Body=b"edge variant")

    deleted = hybrid.client.delete(f"/api/upload/{record['id']}", headers=hybrid.auth)
    assert deleted.status_code in (200, 204), deleted.text
    assert not on_disk.exists()
    assert not (hybrid.root / "variants" / record["key"]).exists()
    assert s3_keys(hybrid, f"variants/{record['key']}/") == []


def test_moving_an_original_to_permanent_clears_the_old_keys_variants(hybrid):
    record = upload_to(hybrid, "local", is_temp=True)
    old = f"variants/{record['key']}/320x0.webp"
    (hybrid.root / old).parent.mkdir(parents=True)
    (hybrid.root / old).write_bytes(b"disk variant")
    hybrid.s3.put_object(Bucket=hybrid.bucket, Key=old, Body=b"edge variant")
    moved = hybrid.client.post(f"/api/upload/{record['id']}/move-to-permanent", headers=hybrid.auth)
    assert moved.status_code == 200, moved.text
    assert not (hybrid.root / old).exists()
    assert s3_keys(hybrid, f"variants/{record['key']}/") == []


def test_variants_are_404_when_the_host_has_none_configured(serve):
    api = serve()
    response = api.client.get("/variants/images/a.jpg/320x0.webp")
    assert response.status_code == 404
    assert response.json()["detail"] == "image variants are not configured on this host"


def test_without_nginx_the_service_checks_private_variant_signatures(serve, tmp_path):
    settings = host_variant_config(CdnConfig(variant_source_prefixes=["images/", "processed/"]))
    config = tmp_path / "variants.json"
    config.write_text(json.dumps(settings | {"private_prefixes": ["processed/"]}))
    api = serve(STOWAGE_VARIANTS_CONFIG=str(config))
    (api.root / "processed").mkdir()
    (api.root / "processed" / "menu.jpg").write_bytes(jpeg(1))
    uri = "/variants/processed/menu.jpg/320x0.webp"
    assert api.client.get(uri).status_code == 403
    # Another spelling of the prefix is refused before the signature is looked at.
    assert api.client.get("/variants/%70rocessed/menu.jpg/320x0.webp").status_code == 400
    assert httpx.get(sign_variant_url(api.url, uri, SECRET, ttl=-5)).status_code == 410
    assert not (api.root / "variants").exists()
    assert httpx.get(sign_variant_url(api.url, uri, SECRET, ttl=60)).status_code == 200
    assert api.client.get(uri).status_code == 403  # stored now, still not public

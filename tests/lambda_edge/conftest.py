"""The edge handler runs as Lambda would load it: its directory on sys.path, its config
baked next to it (here pointed at by STOWAGE_EDGE_CONFIG), S3 from moto's server."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

EDGE_DIR = Path(__file__).resolve().parents[2] / "lambda_edge"
sys.path.insert(0, str(EDGE_DIR))


WIDTHS = [320, 640, 800, 1280]


@pytest.fixture
def edge(tmp_path, monkeypatch, bucket, moto_url):
    config = {
        "bucket": bucket,
        "region": "eu-west-1",
        "endpoint_url": moto_url,
        "widths": WIDTHS,
        "heights": [0, 200],
        "formats": ["avif", "webp", "jpeg", "png"],
        "quality": {"jpeg": 82, "webp": 80, "avif": 55},
        "max_source_bytes": 20 * 1024 * 1024,
        "max_source_pixels": 40_000_000,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("STOWAGE_EDGE_CONFIG", str(path))
    import handler

    return importlib.reload(handler)

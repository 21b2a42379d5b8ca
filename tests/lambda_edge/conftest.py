"""The edge handler runs as Lambda would load it: its directory on sys.path, its config
baked next to it (here pointed at by STOWAGE_EDGE_CONFIG), S3 from moto's server."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import boto3
import pytest

from stacks.config import load_config
from stacks.edge_config import edge_handler_config

EDGE_DIR = Path(__file__).resolve().parents[2] / "lambda_edge"
sys.path.insert(0, str(EDGE_DIR))


@pytest.fixture
def kms_key(moto_url) -> str:
    return boto3.client("kms", endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]


@pytest.fixture
def edge(tmp_path, monkeypatch, bucket, moto_url, kms_key):
    """The handler with config.json exactly as synth bakes it for config/example.yaml."""
    config = edge_handler_config(
        load_config("example").cdn, bucket=bucket, region="eu-west-1", kms_key_arn=kms_key
    )
    config["endpoint_url"] = moto_url
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("STOWAGE_EDGE_CONFIG", str(path))
    import handler

    return importlib.reload(handler)

"""Real parts for the runtime tests: moto's S3/DynamoDB server, `stowage serve`, images."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from stacks.constructs.catalog_table import (
    BY_PREFIX_INDEX,
    PARTITION_KEY,
    TEMP_BY_EXPIRY_INDEX,
    TTL_ATTRIBUTE,
)
from stowage.catalog import open_catalog
from tests.helpers import free_port, running

TOKEN = "test-token-0123456789abcdef"
SECRET = "test-signing-secret-0123456789abcdef0123"
BIN = Path(sys.executable).parent


def stowage_cli(env: dict, *args: str, check: bool = True, cwd: Path | None = None):
    """Run the ``stowage`` command line; the completed process, output as text."""
    return subprocess.run(
        [str(BIN / "stowage"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=check,
        cwd=cwd,
    )


def create_catalog_table(name: str, endpoint_url: str) -> None:
    """The table exactly as StorageStack defines it (same key, index and TTL names)."""
    client = boto3.client("dynamodb", endpoint_url=endpoint_url)
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": "prefix", "AttributeType": "S"},
            {"AttributeName": "created", "AttributeType": "S"},
            {"AttributeName": "temp", "AttributeType": "S"},
            {"AttributeName": TTL_ATTRIBUTE, "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": BY_PREFIX_INDEX,
                "KeySchema": [
                    {"AttributeName": "prefix", "KeyType": "HASH"},
                    {"AttributeName": "created", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": TEMP_BY_EXPIRY_INDEX,
                "KeySchema": [
                    {"AttributeName": "temp", "KeyType": "HASH"},
                    {"AttributeName": TTL_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


@pytest.fixture
def dynamodb_table(aws_env, moto_url) -> str:
    name = f"stowage-catalog-{uuid.uuid4().hex[:8]}"
    create_catalog_table(name, moto_url)
    return name


# --- real files ---------------------------------------------------------------------------


def image_bytes(fmt: str = "PNG", size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 60) if mode == "RGB" else None).save(buffer, fmt)
    return buffer.getvalue()


def mp4_bytes(payload_size: int = 4096) -> bytes:
    """A minimal ISO-BMFF file: an ftyp box then an mdat box of ``payload_size`` bytes."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    mdat = (8 + payload_size).to_bytes(4, "big") + b"mdat" + os.urandom(payload_size)
    return ftyp + mdat


# --- the service over real HTTP --------------------------------------------------------------


@dataclass
class Served:
    url: str
    root: Path
    env: dict[str, str]
    process: object
    client: httpx.Client

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def service_env(root: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "STOWAGE_LOCAL_ROOT": str(root),
        "STOWAGE_API_TOKENS": f"{TOKEN},second-token-abcdefghijkl",
        "STOWAGE_SIGNING_SECRET": SECRET,
        "STOWAGE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "STOWAGE_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
        **extra,
    }


@pytest.fixture
def serve(tmp_path):
    """Start `stowage serve` with settings; yields a :class:`Served`; stops it afterwards."""
    started = []

    def start(root: Path | None = None, **extra: str) -> Served:
        port = free_port()
        root = root or tmp_path / f"media-{len(started)}"
        root.mkdir(parents=True, exist_ok=True)
        env = service_env(root, port, **extra)
        context = running(
            [str(BIN / "stowage"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            log=tmp_path / f"serve-{port}.log",
            ready_url=f"http://127.0.0.1:{port}/healthz",
        )
        process = context.__enter__()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        served = Served(f"http://127.0.0.1:{port}", root, env, process, client)
        started.append((context, client))
        return served

    yield start
    for context, client in reversed(started):
        client.close()
        context.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "dynamodb"])
def catalog(request, tmp_path):
    """Each catalog implementation: SQLite on disk, DynamoDB on moto's server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = f"dynamodb://{request.getfixturevalue('dynamodb_table')}"
    opened = open_catalog(url)
    yield opened
    opened.close()


# --- service data safety (tests/runtime/test_service_*.py) ----------------------------------


@pytest.fixture(params=["local", "s3"])
def backend_api(request, serve) -> Served:
    """`stowage serve` on local disk, then on S3 (moto's server)."""
    if request.param == "local":
        return serve()
    bucket = request.getfixturevalue("bucket")
    return serve(STOWAGE_STORAGE_MODE="s3", STOWAGE_S3_BUCKET=bucket, STOWAGE_S3_PREFIX="media/")


def start_multipart(api: Served, kind: str, size: int, **fields) -> httpx.Response:
    return api.client.post(
        "/api/upload/multipart", json={"kind": kind, "size": size, **fields}, headers=api.auth
    )


def send_parts(session: dict, data: bytes) -> None:
    """PUT every part to its URL (the service's or S3's presigned one)."""
    size = session["part_size"]
    for number, url in enumerate(session["part_urls"]):
        piece = data[number * size : (number + 1) * size]
        sent = httpx.put(url, content=piece, headers={"Content-Type": "application/octet-stream"})
        assert sent.status_code == 200, sent.text

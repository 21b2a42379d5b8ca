"""The edge handler runs as Lambda would load it: its directory on sys.path, its config
baked next to it (here pointed at by STOWAGE_EDGE_CONFIG), S3 from moto's server."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from stacks.config import load_config
from stacks.edge_config import edge_handler_config

EDGE_DIR = Path(__file__).resolve().parents[2] / "lambda_edge"
sys.path.insert(0, str(EDGE_DIR))
PRIMARY_REGION = "eu-west-1"
REPLICA_REGION = "us-west-2"


def s3_domain(bucket: str, region: str) -> str:
    """The origin domain CloudFront names for a bucket origin (CDK's regional domain name)."""
    return f"{bucket}.s3.{region}.amazonaws.com"


def origin_response(
    uri: str, *, domain: str | None, status: str = "404", querystring: str = ""
) -> dict:
    """An origin-response event shaped like AWS's documented example, from the S3 origin
    ``domain`` (None: an event without an origin object)."""
    request = {
        "clientIp": "203.0.113.178",
        "headers": {"host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]},
        "method": "GET",
        "querystring": querystring,
        "uri": uri,
    }
    if domain is not None:
        request["origin"] = {
            "s3": {
                "authMethod": "none",
                "customHeaders": {},
                "domainName": domain,
                "path": "",
                "region": domain.split(".s3.")[-1].removesuffix(".amazonaws.com"),
            }
        }
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": "d111111abcdef8.cloudfront.net",
                        "distributionId": "EDFDVBD6EXAMPLE",
                        "eventType": "origin-response",
                        "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                    },
                    "request": request,
                    "response": {
                        "headers": {"server": [{"key": "Server", "value": "AmazonS3"}]},
                        "status": status,
                        "statusDescription": "Forbidden" if status == "403" else "Not Found",
                    },
                }
            }
        ]
    }


@pytest.fixture
def s3(moto_url):
    return boto3.client("s3", endpoint_url=moto_url)


@pytest.fixture
def kms_key(moto_url) -> str:
    return boto3.client("kms", endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]


@pytest.fixture
def replica_bucket(aws_env, moto_url) -> str:
    """The replica: another bucket in another region, as ReplicaStack builds it."""
    name = f"stowage-replica-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_url, region_name=REPLICA_REGION).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION}
    )
    return name


@pytest.fixture
def load_edge(tmp_path, monkeypatch, bucket, moto_url, kms_key):
    """Import the handler with config.json exactly as synth bakes it for ``cdn`` (default:
    config/example.yaml's), optionally with a replica bucket as the fallback origin."""

    def load(cdn=None, replica: str | None = None):
        config = edge_handler_config(
            cdn or load_config("example").cdn,
            bucket=bucket,
            region=PRIMARY_REGION,
            kms_key_arn=kms_key,
            replica_bucket=replica,
            replica_region=REPLICA_REGION if replica else None,
        )
        config["endpoint_url"] = moto_url
        path = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(config))
        monkeypatch.setenv("STOWAGE_EDGE_CONFIG", str(path))
        import handler

        return importlib.reload(handler)

    return load


@pytest.fixture
def edge(load_edge):
    return load_edge()


@pytest.fixture
def miss(bucket):
    """A variant miss as the primary bucket answers it."""

    def event(uri: str, status: str = "404", querystring: str = "") -> dict:
        domain = s3_domain(bucket, PRIMARY_REGION)
        return origin_response(uri, domain=domain, status=status, querystring=querystring)

    return event


@pytest.fixture
def s3_calls():
    """Every S3 operation the handler's own clients send (boto3's event hooks on the real
    clients: the calls still go to moto)."""
    calls: list[tuple[str, str, str]] = []

    def watch(handler_module, region: str = PRIMARY_REGION) -> list[tuple[str, str, str]]:
        def record(model, params, **_):
            calls.append((model.name, params.get("Bucket", ""), params.get("Key", "")))

        handler_module.s3_client(region).meta.events.register("before-parameter-build.s3.*", record)
        return calls

    return watch

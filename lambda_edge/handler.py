"""Lambda@Edge origin-response handler: generate a missing image variant on the fly.

CloudFront asked S3 for ``/variants/{original_key}/{w}x{h}.{fmt}`` and S3 said 403/404 (with
OAC, a missing key is 403). Read the original, render the variant (``image_core``), store it
so the next request is a plain cache/S3 hit, and answer with it. Everything else passes
through untouched. Lambda@Edge has no environment variables: configuration is the
``config.json`` baked into the bundle at synth.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import boto3
from botocore.exceptions import ClientError
from image_core import VariantConfig, VariantError, parse_variant_uri, render

log = logging.getLogger()
log.setLevel(logging.INFO)

# Baked next to this file at synth; tests point STOWAGE_EDGE_CONFIG at their own.
_SETTINGS = json.loads(
    Path(os.environ.get("STOWAGE_EDGE_CONFIG", Path(__file__).with_name("config.json"))).read_text()
)
CONFIG = VariantConfig.from_json(_SETTINGS)
_s3 = None


def s3_client():
    global _s3
    if _s3 is None:
        _s3 = boto3.client(
            "s3",
            region_name=_SETTINGS["region"],
            endpoint_url=_SETTINGS.get("endpoint_url"),
        )
    return _s3


def _headers(pairs: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {name.lower(): [{"key": name, "value": value}] for name, value in pairs.items()}


def _error(status: int, message: str) -> dict:
    return {
        "status": str(status),
        "statusDescription": {
            400: "Bad Request",
            404: "Not Found",
            413: "Payload Too Large",
            415: "Unsupported Media Type",
        }.get(status, "Error"),
        "headers": _headers({"Content-Type": "application/json", "Cache-Control": "no-store"}),
        "body": json.dumps({"error": status, "detail": message}),
    }


def handler(event, context=None):
    cf = event["Records"][0]["cf"]
    request, response = cf["request"], cf["response"]
    if not request["uri"].startswith("/variants/") or response["status"] not in ("403", "404"):
        return response
    try:
        return _generate(request)
    except VariantError as exc:
        return _error(exc.status, exc.message)
    except Exception:
        log.exception("variant generation failed for %s", request["uri"])
        return _error(502, "the variant could not be generated")


def _generate(request: dict) -> dict:
    variant = parse_variant_uri(request["uri"], CONFIG)
    bucket = _SETTINGS["bucket"]
    try:
        original = s3_client().get_object(Bucket=bucket, Key=variant.original_key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied", "403"):
            raise VariantError(404, f"no original at {variant.original_key}") from None
        raise
    if original["ContentLength"] > CONFIG.max_source_bytes:
        original["Body"].close()
        raise VariantError(413, f"original is over {CONFIG.max_source_bytes} bytes")
    rendered = render(original["Body"].read(), variant, CONFIG)
    put = {
        "Bucket": bucket,
        "Key": variant.variant_key,
        "Body": rendered.body,
        "ContentType": rendered.content_type,
        "CacheControl": CONFIG.cache_control,
    }
    if _SETTINGS.get("kms_key_arn"):
        put |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": _SETTINGS["kms_key_arn"]}
    s3_client().put_object(**put)
    encoded = base64.b64encode(rendered.body).decode()
    if len(encoded) + 1024 > CONFIG.max_response_bytes:
        # Too big to return from Lambda@Edge: it is stored now, so send the viewer back.
        location = request["uri"] + (
            f"?{request['querystring']}" if request.get("querystring") else ""
        )
        return {
            "status": "307",
            "statusDescription": "Temporary Redirect",
            "headers": _headers({"Location": location, "Cache-Control": "no-store"}),
        }
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": _headers(
            {"Content-Type": rendered.content_type, "Cache-Control": CONFIG.cache_control}
        ),
        "body": encoded,
        "bodyEncoding": "base64",
    }

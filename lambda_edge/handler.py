"""Lambda@Edge origin-response handler: generate a missing image variant on the fly.

CloudFront asked S3 for ``/variants/{original_key}/{w}x{h}[-cover].{fmt}`` and S3 said
403/404 (with OAC, a missing key is 403). Read the original from the bucket that answered,
render the variant (``stowage.images.core``; a ``cover`` crop centres on the focal point in
the original's ``stowage-focal`` metadata, read with the same GET), store it so the next
request is a plain cache/S3 hit, and answer with it. Everything else passes through
untouched. Lambda@Edge has no environment variables: configuration is the ``config.json``
baked into the bundle at synth.

With a replica, CloudFront fails over to it when the primary answers 5xx, and this function
runs again for the replica's answer. Then the original is read from the replica and the
variant answered without being stored: the primary is failing, and a variant kept in the
replica would outlive its original, since only the primary's variants are invalidated.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from stowage.images.core import VariantConfig, VariantError, parse_variant_uri, render
from stowage.images.focal import FOCAL_METADATA, parse_focal
from stowage.images.watermark import Watermark, WatermarkError, WatermarkSettings, prepare
from stowage.keys import url_path

log = logging.getLogger()
log.setLevel(logging.INFO)

# Baked next to this file at synth; tests point STOWAGE_EDGE_CONFIG at their own.
_SETTINGS = json.loads(
    Path(os.environ.get("STOWAGE_EDGE_CONFIG", Path(__file__).with_name("config.json"))).read_text()
)
CONFIG = VariantConfig.from_json(_SETTINGS)
WATERMARK = WatermarkSettings.from_json(_SETTINGS.get("watermark"))
_overlays: dict[str, Watermark] = {}  # per bucket, fetched once per container
_clients: dict[str, object] = {}
# A refusal depends only on the URL and the original, so CloudFront may keep it for a
# while: a bad URL repeated then costs no fetch and no decode. Short, because the original
# may be uploaded (or replaced) after a 404.
REFUSAL_CACHE_CONTROL = "public, max-age=60"


@dataclass(frozen=True)
class Origin:
    bucket: str
    region: str
    stores_variants: bool


def _origins(settings: dict) -> dict[str, Origin]:
    """The S3 domain names CloudFront may name for the two baked buckets, and nothing else."""
    buckets = [Origin(settings["bucket"], settings["region"], stores_variants=True)]
    if settings.get("replica_bucket"):
        buckets.append(
            Origin(settings["replica_bucket"], settings["replica_region"], stores_variants=False)
        )
    return {
        domain: origin
        for origin in buckets
        for domain in (
            f"{origin.bucket}.s3.{origin.region}.amazonaws.com",
            f"{origin.bucket}.s3.amazonaws.com",
        )
    }


ORIGINS = _origins(_SETTINGS)


def s3_client(region: str):
    if region not in _clients:
        _clients[region] = boto3.client(
            "s3", region_name=region, endpoint_url=_SETTINGS.get("endpoint_url")
        )
    return _clients[region]


def _headers(pairs: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {name.lower(): [{"key": name, "value": value}] for name, value in pairs.items()}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> dict:
    return {
        "status": str(status),
        "statusDescription": {
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            413: "Payload Too Large",
            415: "Unsupported Media Type",
            422: "Unprocessable Content",
            502: "Bad Gateway",
            503: "Service Unavailable",
        }.get(status, "Error"),
        "headers": _headers(
            {
                "Content-Type": "application/json",
                "Cache-Control": REFUSAL_CACHE_CONTROL if status < 500 else "no-store",
                **(headers or {}),
            }
        ),
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


def _origin(request: dict) -> Origin:
    domain = request.get("origin", {}).get("s3", {}).get("domainName", "")
    origin = ORIGINS.get(domain.lower())
    if origin is None:
        log.error("origin %r is not one of the baked buckets", domain)
        raise VariantError(502, "the request's origin is not a bucket of this deployment")
    return origin


def _generate(request: dict) -> dict:
    variant = parse_variant_uri(request["uri"], CONFIG)
    origin = _origin(request)
    s3 = s3_client(origin.region)
    watermark = _watermark(s3, origin, variant.original_key)
    try:
        original = s3.get_object(Bucket=origin.bucket, Key=variant.original_key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied", "403"):
            raise VariantError(404, f"no original at {variant.original_key}") from None
        raise
    if original["ContentLength"] > CONFIG.max_source_bytes:
        original["Body"].close()
        raise VariantError(413, f"original is over {CONFIG.max_source_bytes} bytes")
    focal = parse_focal(original.get("Metadata", {}).get(FOCAL_METADATA))
    rendered = render(original["Body"].read(), variant, CONFIG, focal=focal, watermark=watermark)
    encoded = base64.b64encode(rendered.body).decode()
    fits = len(encoded) + 1024 <= CONFIG.max_response_bytes
    if not origin.stores_variants:
        if not fits:
            return _error(
                503,
                "the variant is too large to answer while the primary bucket is failing",
                {"Retry-After": "60"},
            )
        return _ok(rendered, encoded)
    put = {
        "Bucket": origin.bucket,
        "Key": variant.variant_key,
        "Body": rendered.body,
        "ContentType": rendered.content_type,
        "CacheControl": CONFIG.cache_control,
    }
    if _SETTINGS.get("kms_key_arn"):
        put |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": _SETTINGS["kms_key_arn"]}
    s3.put_object(**put)
    if not fits:
        # Too big to return from Lambda@Edge: it is stored now, so send the viewer to it, by
        # the canonical path (the one it is stored under), never back to a variant spelling.
        location = (
            "/"
            + url_path(variant.variant_key)
            + (f"?{request['querystring']}" if request.get("querystring") else "")
        )
        return {
            "status": "307",
            "statusDescription": "Temporary Redirect",
            "headers": _headers({"Location": location, "Cache-Control": "no-store"}),
        }
    return _ok(rendered, encoded)


def _watermark(s3, origin: Origin, original_key: str) -> Watermark | None:
    """The configured overlay for this original's variants (None: not marked). A missing or
    broken overlay is the deployment's fault: a 502 naming it, never an unmarked variant."""
    if WATERMARK is None or not WATERMARK.applies_to(original_key):
        return None
    if origin.bucket not in _overlays:
        try:
            body = s3.get_object(Bucket=origin.bucket, Key=WATERMARK.key)["Body"].read()
            _overlays[origin.bucket] = prepare(body, WATERMARK)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("NoSuchKey", "404", "AccessDenied", "403"):
                raise
            log.error("watermark overlay %s missing from %s", WATERMARK.key, origin.bucket)
            raise VariantError(502, f"the watermark overlay {WATERMARK.key} is missing") from None
        except WatermarkError as exc:
            log.error("%s", exc)
            raise VariantError(502, str(exc)) from None
    return _overlays[origin.bucket]


def _ok(rendered, encoded: str) -> dict:
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": _headers(
            {"Content-Type": rendered.content_type, "Cache-Control": CONFIG.cache_control}
        ),
        "body": encoded,
        "bodyEncoding": "base64",
    }

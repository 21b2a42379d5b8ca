"""Regional Lambda: when an original is overwritten or deleted, drop its stored variants and
invalidate ``/variants/{original_key}/*`` so viewers never get the old picture.

Triggered by EventBridge ("Object Created"/"Object Deleted" on the variant source prefixes
of the media bucket). A new original has no variants yet: nothing is deleted, and no paid
invalidation is spent (CloudFront allows only 15 wildcard invalidations in progress, so a
bulk upload must not queue one each). Errors propagate, so Lambda retries the event and
then hands it to the dead-letter queue. Settings come from the environment.
"""

from __future__ import annotations

import logging
import os

import boto3

from stowage.errors import InvalidKey
from stowage.keys import VARIANTS_PREFIX, url_path, validate_key

log = logging.getLogger()
log.setLevel(logging.INFO)
_clients: dict = {}


def client(name: str):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def handler(event, context=None) -> dict:
    key = event["detail"]["object"]["key"]
    try:
        validate_key(key)
    except InvalidKey as exc:
        log.warning("ignoring event for invalid key %r: %s", key, exc)
        return {"key": key, "deleted": 0, "invalidated": None}
    if key.startswith(VARIANTS_PREFIX):
        return {"key": key, "deleted": 0, "invalidated": None}
    bucket = os.environ["STOWAGE_BUCKET"]
    prefix = f"variants/{key}/"
    s3 = client("s3")
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            result = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            if result.get("Errors"):
                failed = ", ".join(e["Key"] for e in result["Errors"])
                raise RuntimeError(f"could not delete variants of {key!r}: {failed}")
            deleted += len(objects)
    if not deleted:
        return {"key": key, "deleted": 0, "invalidated": None}
    path = f"/variants/{url_path(key)}/*"
    client("cloudfront").create_invalidation(
        DistributionId=os.environ["STOWAGE_DISTRIBUTION_ID"],
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": [path]},
            "CallerReference": event.get("id") or f"{key}-{context.aws_request_id}",
        },
    )
    log.info("invalidated %s (%d stored variants deleted)", path, deleted)
    return {"key": key, "deleted": deleted, "invalidated": path}

"""What the edge code is given at synth: Lambda@Edge and CloudFront Functions take no
environment variables, so the deployment config is written into their code and bundle."""

from __future__ import annotations

import json
from pathlib import Path

from stacks.config import CdnConfig

EDGE_DIR = Path(__file__).resolve().parent.parent / "lambda_edge"
PLACEHOLDER = "__STOWAGE_CONFIG__"


def allowlist(cdn: CdnConfig) -> dict:
    return {
        "widths": sorted(cdn.variant_widths),
        "heights": sorted(cdn.variant_heights),
        "formats": list(cdn.variant_formats),
    }


def cloudfront_function_code(cdn: CdnConfig) -> str:
    """The viewer-request function with the deployment's allowlist in it."""
    template = (EDGE_DIR / "cloudfront_function.js").read_text()
    if template.count(PLACEHOLDER) != 1:
        raise ValueError(f"{PLACEHOLDER} must appear exactly once in cloudfront_function.js")
    return template.replace(PLACEHOLDER, json.dumps(allowlist(cdn), sort_keys=True))


def edge_handler_config(cdn: CdnConfig, *, bucket: str, region: str, kms_key_arn: str) -> dict:
    """The ``config.json`` baked next to the Lambda@Edge handler."""
    return {
        **allowlist(cdn),
        "bucket": bucket,
        "region": region,
        "kms_key_arn": kms_key_arn,
        "quality": {"jpeg": cdn.jpeg_quality, "webp": cdn.webp_quality, "avif": cdn.avif_quality},
        "max_source_pixels": cdn.max_source_megapixels * 1_000_000,
    }

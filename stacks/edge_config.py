"""What the edge code is given at synth: Lambda@Edge and CloudFront Functions take no
environment variables, so the deployment config is written into their code and bundle."""

from __future__ import annotations

import json
from pathlib import Path

from stacks.config import CdnConfig

EDGE_DIR = Path(__file__).resolve().parent.parent / "lambda_edge"
PLACEHOLDER = "__STOWAGE_CONFIG__"

# The resizer's timeout: Lambda@Edge origin triggers allow at most 30 s.
EDGE_TIMEOUT_SECONDS = 30
# Lambda gives one full vCPU at 1,769 MB and a proportional share below; the resizer's
# decode, resize and encode run on one core, so more memory buys it no more than one.
LAMBDA_MB_PER_VCPU = 1769
# One core's CPU seconds per megapixel of animation: decoding a frame's canvas (with its RGBA
# conversion and resize), and encoding an output frame. Measured at most 0.04 and 0.10 on
# the slowest format and detailed content (bench/resize_budget.py, docs/benchmarks.md);
# half as much again here for slower CPUs.
DECODE_SECONDS_PER_MEGAPIXEL = 0.06
ENCODE_SECONDS_PER_MEGAPIXEL = 0.15
# Plan for half the timeout: cold starts, S3 reads and Lambda's CPUs vary.
TIME_MARGIN = 0.5
# Output frames stay in memory as RGBA (4 bytes a pixel) until the encoder assembles them.
OUTPUT_FRAMES_MEMORY_SHARE = 0.4
MAX_ANIMATION_FRAMES = 300


def allowlist(cdn: CdnConfig) -> dict:
    """Sizes, fit modes and formats, as the CloudFront Function and the core take them."""
    boxes = {tuple(int(side) for side in box.split("x")) for box in cdn.variant_boxes}
    return {
        "widths": sorted(set(cdn.variant_widths)),
        "heights": sorted(set(cdn.variant_heights)),
        "boxes": [list(box) for box in sorted(boxes)],
        "fits": [fit for fit in ("fit", "cover") if fit in cdn.variant_fits],
        "formats": list(cdn.variant_formats),
    }


def cloudfront_function_code(cdn: CdnConfig) -> str:
    """The viewer-request function with the deployment's allowlist in it, without its
    comment lines and indentation: CloudFront counts the code's bytes (10 KB at most)."""
    template = (EDGE_DIR / "cloudfront_function.js").read_text()
    if template.count(PLACEHOLDER) != 1:
        raise ValueError(f"{PLACEHOLDER} must appear exactly once in cloudfront_function.js")
    lines = (line.strip() for line in template.splitlines())
    code = "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"
    return code.replace(PLACEHOLDER, json.dumps(allowlist(cdn), sort_keys=True))


def animation_budget(memory_mb: int, timeout_seconds: int = EDGE_TIMEOUT_SECONDS) -> dict:
    """Frames x pixels an animated variant may decode and encode within the function's
    memory and timeout (half of each term's share of the time, whole megapixels)."""
    core_seconds = timeout_seconds * TIME_MARGIN * min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    decode = core_seconds / 2 / DECODE_SECONDS_PER_MEGAPIXEL
    encode = min(
        core_seconds / 2 / ENCODE_SECONDS_PER_MEGAPIXEL,
        memory_mb * 2**20 * OUTPUT_FRAMES_MEMORY_SHARE / 4 / 1e6,
    )
    return {
        "max_animation_frames": MAX_ANIMATION_FRAMES,
        "max_animation_input_pixels": int(decode) * 1_000_000,
        "max_animation_output_pixels": int(encode) * 1_000_000,
    }


def variant_config(cdn: CdnConfig) -> dict:
    """The image core's settings (``VariantConfig.from_json``) from the deployment config:
    the one translation, used for the edge bundle and the single host alike."""
    return {
        **allowlist(cdn),
        "source_prefixes": list(cdn.variant_source_prefixes),
        "quality": {"jpeg": cdn.jpeg_quality, "webp": cdn.webp_quality, "avif": cdn.avif_quality},
        "max_source_pixels": cdn.max_source_megapixels * 1_000_000,
        **animation_budget(cdn.edge_memory_size_mb),
    }


def edge_handler_config(
    cdn: CdnConfig,
    *,
    bucket: str,
    region: str,
    kms_key_arn: str,
    replica_bucket: str | None = None,
    replica_region: str | None = None,
) -> dict:
    """The ``config.json`` baked next to the Lambda@Edge handler. The replica bucket is
    the origin group's fallback: originals are read from it when a request failed over."""
    return {
        **variant_config(cdn),
        "bucket": bucket,
        "region": region,
        "kms_key_arn": kms_key_arn,
        "replica_bucket": replica_bucket,
        "replica_region": replica_region,
        "watermark": watermark_settings(cdn),
    }


def watermark_settings(cdn: CdnConfig) -> dict | None:
    """``cdn.watermark`` as the core's ``WatermarkSettings.from_json`` reads it (None: off)."""
    mark = cdn.watermark
    if mark is None:
        return None
    return {
        "key": mark.overlay_key,
        "prefixes": list(mark.prefixes),
        "position": mark.position,
        "opacity": mark.opacity,
        "scale": mark.scale_percent / 100,
        "margin": mark.margin_percent / 100,
    }


# What only the edge needs: where its bucket is. The host reads originals through its backend.
_EDGE_ONLY = ("bucket", "region", "kms_key_arn", "replica_bucket", "replica_region")


def host_variant_config(cdn: CdnConfig) -> dict:
    """The resizer's settings for the single host's service (``STOWAGE_VARIANTS_CONFIG``):
    the edge's own, so both adapters refuse and render alike, and the private prefixes,
    whose signatures the service checks itself when no Nginx is in front of it."""
    edge = edge_handler_config(cdn, bucket="", region="", kms_key_arn="")
    return {name: value for name, value in edge.items() if name not in _EDGE_ONLY} | {
        "private_prefixes": list(cdn.private_prefixes)
    }

"""The cost of the automatic crop centre: a 12-MP photo rendered as a 400x400 (and 1200x630)
cover, with a focal point (no analysis: the peer) and without one (the attention-like
saliency map), interleaved in one process pinned to one core; plus the saliency step alone
on the image it actually sees (the JPEG decoded at shrink-on-load scale) and on a full
12-MP decode (a PNG or HEIC original, where no shrink-on-load applies).

    .venv/bin/python -m bench.smartcrop --runs 20
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from functools import partial

from PIL import Image, ImageFilter


def photo(size=(4000, 3000)) -> bytes:
    """Photo-like detail (blurred noise) with a sharper, saturated subject right of centre."""
    noise = Image.frombytes(
        "RGB", (size[0] // 4, size[1] // 4), os.urandom(size[0] * size[1] * 3 // 16)
    )
    image = noise.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(12))
    subject = Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3))
    image.paste(subject, (int(size[0] * 0.8) - 400, size[1] // 2 - 400))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def median_ms(*functions, runs: int) -> list[float]:
    """The median ms of each function, called in turn in every run (interleaved, so a busy
    spell on the shared machine falls on both sides)."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(runs):
        for function, taken in zip(functions, times, strict=True):
            started = time.perf_counter()
            function()
            taken.append((time.perf_counter() - started) * 1000)
    return [statistics.median(taken) for taken in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    from stowage.images.core import VariantConfig, VariantRequest, render
    from stowage.images.crop import decode_box, saliency_centre

    source = photo()
    config = VariantConfig(widths=(800,), boxes=((400, 400), (1200, 630)))
    print(f"input: 4000x3000 JPEG q90, {len(source):,} bytes; median of {args.runs} runs, 1 core")
    print("| box | focal point (peer) ms | automatic ms | automatic / focal | analysis ms |")
    print("|---|---|---|---|---|")
    for box in ((400, 400), (1200, 630)):
        request = VariantRequest("images/bench.jpg", *box, "webp", "cover")
        focal, auto = median_ms(
            partial(render, source, request, config, focal=(0.5, 0.5)),
            partial(render, source, request, config),
            runs=args.runs,
        )
        decoded = Image.open(io.BytesIO(source))
        decoded.draft("RGB", decode_box(decoded.size, *box, "cover"))
        decoded.load()
        (alone,) = median_ms(partial(saliency_centre, decoded, *box), runs=args.runs)
        print(
            f"| {box[0]}x{box[1]} (decoded at {decoded.width}x{decoded.height}) | {focal:.0f}"
            f" | {auto:.0f} | {auto / focal:.2f}x | {alone:.1f} |"
        )
    full = Image.open(io.BytesIO(source))
    full.load()
    (alone,) = median_ms(partial(saliency_centre, full, 400, 400), runs=args.runs)
    print(f"saliency alone on a full 4000x3000 decode (no shrink-on-load): {alone:.1f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

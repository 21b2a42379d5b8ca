"""bench/resize_budget: the worst animated inputs the edge resizer's baked budget admits, each
rendered by the edge core in a clean process on one core: wall and CPU time, peak RSS
(VmHWM of a process that started small), and the time Lambda would take at the configured
memory's CPU share. Also the inputs just over the budget and a GIF of a million tiny frames,
which must be refused quickly.

Usage: .venv/bin/python -m bench.resize_budget [--config example] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

from stacks.config import load_config
from stacks.edge_config import (
    EDGE_TIMEOUT_SECONDS,
    LAMBDA_MB_PER_VCPU,
    edge_handler_config,
)

HERE = Path(__file__).resolve().parent
MAX_SOURCE_BYTES = 50 * 1024 * 1024


def textured(size: tuple[int, int], seed: int, coarseness: int) -> Image.Image:
    """Blurred noise, ``coarseness`` pixels a grain: photo-like detail, the content encoders
    find hardest (coarser only where finer would not fit the 50 MiB source limit)."""
    w, h = size
    small = (max(1, w // coarseness), max(1, h // coarseness))
    noise = Image.frombytes("RGB", small, os.urandom(small[0] * small[1] * 3))
    image = noise.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    return image.rotate(seed * 7)


def animation(fmt: str, size: tuple[int, int], frames: int, coarseness: int) -> bytes:
    """``frames`` distinct frames (a few textures, shifted a pixel each round)."""
    textures = [textured(size, seed, coarseness) for seed in range(min(frames, 4))]
    images = []
    for index in range(frames):
        frame = textures[index % len(textures)].transform(
            size, Image.Transform.AFFINE, (1, 0, index // len(textures), 0, 1, 0)
        )
        images.append(frame.quantize(256) if fmt == "GIF" else frame)
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return out.getvalue()


def largest_fitting(fmt: str, size: tuple[int, int], frames: int, start: int) -> bytes:
    """The most detailed animation that is still under the source size limit."""
    coarseness = start
    while True:
        data = animation(fmt, size, frames, coarseness)
        if len(data) <= MAX_SOURCE_BYTES:
            return data
        coarseness *= 4


def tiny_frames_gif(size_bytes: int) -> bytes:
    """A GIF of 1x1 frames filling ``size_bytes``: Pillow's n_frames walks all of them."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * ((size_bytes - len(header) - 1) // len(frame)) + b"\x3b"


def worker(path: str, width: int, config_path: str) -> None:
    """Runs in a fresh interpreter: render once, report times and VmHWM as JSON."""
    from stowage.images.core import VariantConfig, VariantError, VariantRequest, render

    config = VariantConfig.from_json(json.loads(Path(config_path).read_text()))
    source = Path(path).read_bytes()
    request = VariantRequest("images/bench", width, 0, "webp")
    started, cpu = time.perf_counter(), time.process_time()
    try:
        status, size = 200, len(render(source, request, config).body)
    except VariantError as exc:
        status, size = exc.status, 0
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    status_file = Path("/proc/self/status").read_text()
    hwm = next(line for line in status_file.splitlines() if line.startswith("VmHWM"))
    peak_mib = int(hwm.split()[1]) / 1024
    print(json.dumps({"status": status, "wall": wall, "cpu": cpu, "bytes": size, "rss": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="example")
    parser.add_argument("--keep", type=Path, help="keep the generated inputs here")
    parser.add_argument("--worker", nargs=3, metavar=("FILE", "WIDTH", "CONFIG"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    cdn = load_config(args.config).cdn
    config = edge_handler_config(cdn, bucket="bench", region="eu-west-1", kms_key_arn="")
    budget_in = config["max_animation_input_pixels"]
    budget_out = config["max_animation_output_pixels"]
    cap = config["max_animation_frames"]
    share = min(1.0, cdn.edge_memory_size_mb / LAMBDA_MB_PER_VCPU)
    work = args.keep or Path(tempfile.mkdtemp(prefix="resize-budget-"))
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))

    def admitted(canvas: tuple[int, int], width: int) -> int:
        out_w = min(width, canvas[0])
        out_h = round(canvas[1] * out_w / canvas[0])
        return min(cap, budget_in // (canvas[0] * canvas[1]), budget_out // (out_w * out_h))

    cases = []
    for name, fmt, canvas, width, coarseness in (
        ("encode-bound: 1920 px GIF, no resize", "GIF", (1920, 1920), 1920, 4),
        ("resize-bound: 2000 px GIF -> 1920", "GIF", (2000, 2000), 1920, 4),
        ("both budgets: 3300 px APNG -> 1920", "PNG", (3300, 3300), 1920, 4),
        ("both budgets: 3300 px WebP -> 1920", "WEBP", (3300, 3300), 1920, 4),
        ("decode-bound: 2000 px APNG -> 320", "PNG", (2000, 2000), 320, 4),
        ("largest canvas: 7000 px GIF -> 1920", "GIF", (7000, 7000), 1920, 64),
        ("frame cap: 320 px GIF", "GIF", (320, 320), 320, 4),
    ):
        frames = admitted(canvas, width)
        cases.append((name, fmt, canvas, width, frames, coarseness))
        if name.startswith(("encode", "decode")):
            cases.append((f"{name}, one frame over", fmt, canvas, width, frames + 1, coarseness))
    rows = []
    for name, fmt, canvas, width, frames, coarseness in cases:
        path = work / f"{fmt.lower()}-{canvas[0]}-{frames}.{fmt.lower()}"
        if not path.exists():
            path.write_bytes(largest_fitting(fmt, canvas, frames, coarseness))
        rows.append((name, canvas, width, frames, path))
    tiny = work / "tiny-frames.gif"
    if not tiny.exists():
        tiny.write_bytes(tiny_frames_gif(MAX_SOURCE_BYTES))
    rows.append(("1x1 frames filling 50 MiB", (1, 1), 320, (MAX_SOURCE_BYTES - 20) // 16, tiny))

    print(
        f"budget ({args.config}: {cdn.edge_memory_size_mb} MB, {EDGE_TIMEOUT_SECONDS} s,"
        f" {share:.2f} vCPU): {budget_in / 1e6:.0f} MP decoded, {budget_out / 1e6:.0f} MP"
        f" encoded, {cap} frames\n"
    )
    print(
        "| input | frames | file MB | decode MP | encode MP | status | wall s | CPU s"
        " | Lambda s (CPU / share) | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for name, canvas, width, frames, path in rows:
        result = subprocess.run(
            [
                "taskset",
                "-c",
                "0",
                sys.executable,
                "-m",
                "bench.resize_budget",
                "--worker",
                str(path),
                str(width),
                str(config_path),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE.parent,
        )
        r = json.loads(result.stdout)
        out_w = min(width, canvas[0])
        out_px = out_w * round(canvas[1] * out_w / canvas[0])
        print(
            f"| {name} | {frames:,} | {path.stat().st_size / 1e6:.1f}"
            f" | {frames * canvas[0] * canvas[1] / 1e6:.0f} | {frames * out_px / 1e6:.0f}"
            f" | {r['status']} | {r['wall']:.2f} | {r['cpu']:.2f}"
            f" | {r['cpu'] / share:.1f} | {r['rss']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

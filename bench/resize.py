"""bench/resize: the edge handler's core against sharp (npm) on the same input, one core
each: 4000x3000 JPEG -> 800 px WebP q80 and -> AVIF. Median ms and peak RSS.

Usage: .venv/bin/python -m bench.resize [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".cache" / "bench-sharp"
SHARP = "sharp@0.34.5"


def photo_like(path: Path) -> None:
    """A 4000x3000 JPEG with photo-like detail (noise, blurred shapes), quality 90."""
    noise = Image.frombytes("RGB", (1000, 750), os.urandom(1000 * 750 * 3))
    image = noise.resize((4000, 3000), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())


def measure(args: list[str], env=None) -> tuple[float, int, float]:
    """(median ms, output bytes, peak RSS MiB) of one process pinned to one core; each
    reports its own peak RSS (a fork's would include this parent's memory)."""
    result = subprocess.run(
        ["taskset", "-c", "0", *args], capture_output=True, text=True, env=env, check=True
    )
    ms, size, rss = result.stdout.split()
    return float(ms), int(size), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    npm = Path(sys.executable).with_name("npm")
    if not (CACHE / "node_modules" / "sharp").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(npm),
                "install",
                "--prefix",
                str(CACHE),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                SHARP,
            ],
            check=True,
        )
    source = CACHE / "photo-4000x3000.jpg"
    if not source.exists():
        photo_like(source)
    env = {**os.environ, "NODE_PATH": str(CACHE / "node_modules")}
    node = str(Path(sys.executable).with_name("node"))
    rows = []
    for fmt in ("webp", "avif"):
        ours = measure(
            [sys.executable, str(HERE / "resize_worker.py"), str(source), fmt, str(args.runs)]
        )
        peer = measure([node, str(HERE / "resize_sharp.js"), str(source), fmt, str(args.runs)], env)
        rows.append((fmt, ours, peer))
    print("| output | tool | median ms | output bytes | peak RSS MiB |\n|---|---|---|---|---|")
    for fmt, ours, peer in rows:
        for tool, (ms, size, rss) in (("Stowage core (Pillow)", ours), ("sharp", peer)):
            print(f"| 800 px {fmt} | {tool} | {ms:.0f} | {size:,} | {rss:.0f} |")
    for fmt, ours, peer in rows:
        print(
            f"\n{fmt}: time {ours[0] / peer[0]:.2f}x sharp, memory {ours[2] / peer[2]:.2f}x sharp"
        )


if __name__ == "__main__":
    main()

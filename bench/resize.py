"""bench/resize: Stowage's image core against sharp (npm) doing the same operation on the
same input in the same run, one core each (``taskset -c 0``): time (median of RUNS inside
one process), output bytes, peak RSS of that process measured from outside
(bench/measure.py, GNU time), and SSIM against a reference where the outputs show the same
pixels.

Rows: 4000x3000 JPEG -> 800 px WebP; -> 800 px AVIF at equal output size (sharp's quality
searched so its bytes match ours within 10 %, at its default effort 4 and at effort 0,
which is libaom speed 9 like ours) and, at effort 0, at equal SSIM; 800x800 cover around a
focal point; 800x800 smart crop; a 4000x3000 HEIC -> 800 px WebP (against Debian's libvips
when sharp cannot decode HEIC).
The cover rows need the core's ``fit="cover"``; without it they are reported as skipped.

Usage: .venv/bin/python -m bench.resize [--runs 20] [--slow-runs 3] [--smart attention]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageFilter

from bench.measure import measured
from stowage.images.core import VariantRequest
from tests.helpers import ensure_debian_packages

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".cache" / "bench-sharp"
SHARP = "sharp@0.34.5"
CORE = "Stowage core (Pillow)"


class PeerFailed(Exception):
    """The peer stopped with an error on this input (e.g. a format it cannot decode)."""


pillow_heif.register_heif_opener()


def photo_like(path: Path) -> None:
    """A 4000x3000 JPEG with photo-like detail (noise, blurred shapes), quality 90."""
    noise = Image.frombytes("RGB", (1000, 750), os.urandom(1000 * 750 * 3))
    image = noise.resize((4000, 3000), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))
    image.save(path, "JPEG", quality=90)


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luma of two same-size images (Wang et al. 2004: 11x11 Gaussian
    window, sigma 1.5, K1 0.01, K2 0.03), the form scikit-image's defaults compute."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    taps = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()

    def blur(image):
        for axis in (0, 1):
            n = image.shape[axis] - 10
            image = sum(w * image.take(range(k, k + n), axis=axis) for k, w in enumerate(taps))
        return image

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


@dataclasses.dataclass(frozen=True)
class Row:
    work: str
    tool: str
    ms: float
    size: int
    rss: float
    output: Path


class Bench:
    """Runs each tool in its own process, pinned to core 0, and keeps its last output."""

    def __init__(self, runs: int, workdir: Path) -> None:
        self.runs, self.workdir, self.count = runs, workdir, 0
        self.node = str(Path(sys.executable).with_name("node"))
        self.env = {**os.environ, "NODE_PATH": str(CACHE / "node_modules")}

    def _out(self, fmt: str) -> Path:
        self.count += 1
        return self.workdir / f"out-{self.count}.{fmt}"

    def _row(self, work: str, tool: str, args: list[str], out: Path, env=None) -> Row:
        result = measured(["taskset", "-c", "0", *args], env)
        ms, size = result.stdout.split()
        return Row(work, tool, float(ms), int(size), result.peak_mib, out)

    def ours(self, work: str, source: Path, op: str, fmt: str) -> Row:
        out = self._out(fmt)
        worker = [sys.executable, str(HERE / "resize_worker.py"), str(source), op, fmt]
        return self._row(work, CORE, [*worker, str(self.runs), str(out)], out)

    def _sharp_args(self, source, op, fmt, runs, out, quality, effort, strategy) -> list[str]:
        script = [self.node, str(HERE / "resize_sharp.js"), str(source), op, fmt, str(runs)]
        return [*script, str(out), str(quality), str(effort), strategy]

    def sharp(self, work, source, op, fmt, *, quality, effort=4, strategy="entropy", runs=None):
        """sharp's row; :class:`PeerFailed` with its message when it cannot do the work."""
        out = self._out(fmt)
        args = self._sharp_args(source, op, fmt, runs or self.runs, out, quality, effort, strategy)
        probe = subprocess.run(
            ["taskset", "-c", "0", *args[:5], "1", *args[6:]],
            capture_output=True,
            text=True,
            env=self.env,
        )
        if probe.returncode != 0:
            raise PeerFailed(probe.stderr.strip().splitlines()[-1])
        tool = f"sharp (effort {effort}, q{quality})" if fmt == "avif" else "sharp"
        return self._row(work, tool, args, out, self.env)

    def sharp_avif(self, source: Path, quality: int, effort: int) -> Path:
        """One 800 px AVIF from sharp, for the quality searches."""
        out = self._out("avif")
        args = self._sharp_args(source, "fit", "avif", 1, out, quality, effort, "entropy")
        subprocess.run(["taskset", "-c", "0", *args], capture_output=True, env=self.env, check=True)
        return out

    def quality_for(self, source: Path, effort: int, value, target: float) -> int:
        """The lowest sharp AVIF quality whose output's ``value`` (bytes or SSIM, both
        growing with quality) reaches ``target``, or the closest below within 3 %."""
        low, high, best = 1, 100, 100
        while low <= high:
            quality = (low + high) // 2
            got = value(self.sharp_avif(source, quality, effort))
            if got >= target:
                best, high = quality, quality - 1
            elif got >= 0.97 * target:
                return quality
            else:
                low = quality + 1
        return best

    def vipsthumbnail(self, work: str, source: Path, fmt: str) -> Row:
        """Debian's libvips (sharp's engine, with libheif and libde265) as one process per
        image: the median wall time less its start-up on a tiny PNG."""
        vipsthumbnail = ensure_debian_packages("libvips-tools", binary="vipsthumbnail")
        out, tiny = self._out(fmt), self.workdir / "tiny.png"
        Image.new("RGB", (16, 16)).save(tiny)
        command = ["taskset", "-c", "0", vipsthumbnail, "--size", "800x"]
        target = f"{out}[Q=80,effort=4,strip]"

        def wall(path: Path, runs: int) -> tuple[float, float]:
            results = [measured([*command, str(path), "-o", target]) for _ in range(runs)]
            return statistics.median(r.seconds for r in results), max(r.peak_mib for r in results)

        start_up, _ = wall(tiny, self.runs)
        seconds, peak = wall(source, self.runs)
        ms = (seconds - start_up) * 1000
        return Row(work, "Debian libvips 8.14 (vipsthumbnail)", ms, out.stat().st_size, peak, out)


def heic_photo(jpeg: Path, path: Path) -> None:
    image = Image.open(jpeg)
    pillow_heif.from_pillow(image).save(path, quality=80)


def reference(source: Path, size: tuple[int, int]) -> Image.Image:
    """The source decoded in full and resized with Lanczos: what a variant should look like."""
    return Image.open(source).convert("RGB").resize(size, Image.Resampling.LANCZOS)


def has_cover() -> bool:
    return "fit" in {f.name for f in dataclasses.fields(VariantRequest)}


def install_sharp() -> None:
    if (CACHE / "node_modules" / "sharp").exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    npm = str(Path(sys.executable).with_name("npm"))
    options = ["--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run([npm, "install", "--prefix", str(CACHE), *options, SHARP], check=True)


def score(row: Row, expected: Image.Image) -> str:
    return f"{ssim(Image.open(row.output), expected):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--slow-runs", type=int, default=3, help="runs of sharp's AVIF effort 4")
    parser.add_argument(
        "--smart",
        choices=("entropy", "attention"),
        default="attention",
        help="sharp's strategy for the smart-crop row: the core's (attention-like) by default",
    )
    parser.add_argument("--keep", type=Path, help="keep every output in this directory")
    args = parser.parse_args()
    install_sharp()
    photo, heic = CACHE / "photo-4000x3000.jpg", CACHE / "photo-4000x3000.heic"
    if not photo.exists():
        photo_like(photo)
    if not heic.exists():
        heic_photo(photo, heic)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-resize-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.runs, workdir)
    expected = {photo: reference(photo, (800, 600)), heic: reference(heic, (800, 600))}
    pairs, notes = [], []

    def pair(work, source, op, fmt, ssim_of=None, **peer):
        ours = bench.ours(work, source, op, fmt)
        theirs = bench.sharp(work, source, op, fmt, **peer)
        pairs.append((ours, theirs, ssim_of))

    pair("800 px WebP q80", photo, "fit", "webp", expected[photo], quality=80)
    avif = "800 px AVIF"
    ours_avif = bench.ours(avif, photo, "fit", "avif")
    ours_ssim = ssim(Image.open(ours_avif.output), expected[photo])
    searches = [
        (0, args.runs, "equal bytes", lambda out: out.stat().st_size, ours_avif.size),
        (0, args.runs, "equal SSIM", lambda out: ssim(Image.open(out), expected[photo]), ours_ssim),
        (4, args.slow_runs, "equal bytes", lambda out: out.stat().st_size, ours_avif.size),
    ]
    for effort, runs, match, value, target in searches:
        quality = bench.quality_for(photo, effort, value, target)
        peer = bench.sharp(avif, photo, "fit", "avif", quality=quality, effort=effort, runs=runs)
        if match == "equal bytes" and abs(peer.size / ours_avif.size - 1) > 0.10:
            notes.append(f"sharp effort {effort}: no quality within 10 % of our bytes")
        pairs.append(
            (ours_avif, dataclasses.replace(peer, tool=f"{peer.tool}, {match}"), expected[photo])
        )
    if has_cover():
        pair("800x800 cover, focal (0.25, 0.7), WebP", photo, "cover-focal", "webp", quality=80)
        smart = f"800x800 smart crop ({args.smart}), WebP"
        pair(smart, photo, "smart", "webp", quality=80, strategy=args.smart)
    else:
        notes.append("cover and smart-crop rows skipped: needs cover (no fit='cover' in the core)")
    heic_work = "HEIC 4000x3000 -> 800 px WebP q80"
    ours_heic = bench.ours(heic_work, heic, "fit", "webp")
    try:
        peer = bench.sharp(heic_work, heic, "fit", "webp", quality=80)
    except PeerFailed as exc:
        notes.append(f"{SHARP} cannot decode the HEIC input: {exc}")
        peer = bench.vipsthumbnail(heic_work, heic, "webp")
    pairs.append((ours_heic, peer, expected[heic]))
    report(pairs, notes)
    if not args.keep:
        shutil.rmtree(workdir)


def report(pairs, notes) -> None:
    print("| work | tool | median ms | output bytes | peak RSS MiB | SSIM |")
    print("|---|---|---|---|---|---|")
    printed = set()
    for ours, peer, expected in pairs:
        for row in (ours, peer):
            if row.output in printed:
                continue
            printed.add(row.output)
            quality = score(row, expected) if expected is not None else "-"
            print(
                f"| {row.work} | {row.tool} | {row.ms:.0f} | {row.size:,} | {row.rss:.0f}"
                f" | {quality} |"
            )
    print()
    for ours, peer, _ in pairs:
        print(
            f"{ours.work}: vs {peer.tool}: time {ours.ms / peer.ms:.2f}x,"
            f" memory {ours.rss / peer.rss:.2f}x, bytes {ours.size / peer.size:.2f}x"
        )
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()

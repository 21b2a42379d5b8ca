"""One process, one core: time Stowage's image core on one input and operation.

Usage: resize_worker.py SOURCE OP FMT RUNS OUT
OP: ``fit`` (800 wide), ``cover-focal`` (800x800 around a focal point), ``smart`` (800x800,
the core's automatic crop centre). Writes the last output to OUT and prints the median ms
and the output's bytes; peak memory is measured from outside (bench/measure.py)."""

import statistics
import sys
import time
from pathlib import Path

from stowage.images.core import VariantConfig, VariantRequest, render

FOCAL = (0.25, 0.7)

source_path, op, fmt, runs, out = sys.argv[1:6]
source = Path(source_path).read_bytes()
# The example deployment's qualities and the core's own AVIF speed.
config = VariantConfig(widths=(800,), heights=(0, 800), quality={"webp": 80, "avif": 55})
if op == "fit":
    request, extra = VariantRequest("images/bench.jpg", 800, 0, fmt), {}
else:
    request = VariantRequest("images/bench.jpg", 800, 800, fmt, fit="cover")
    extra = {"focal": FOCAL if op == "cover-focal" else None}
times = []
for _ in range(int(runs)):
    started = time.perf_counter()
    rendered = render(source, request, config, **extra)
    times.append((time.perf_counter() - started) * 1000)
Path(out).write_bytes(rendered.body)
print(f"{statistics.median(times):.1f} {len(rendered.body)}")

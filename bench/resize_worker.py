"""One process, one core: time Stowage's edge core on one input. Prints the median ms."""

import resource
import statistics
import sys
import time
from pathlib import Path

from stowage.images.core import VariantConfig, VariantRequest, render

source = Path(sys.argv[1]).read_bytes()
fmt, runs = sys.argv[2], int(sys.argv[3])
config = VariantConfig(widths=(800,), quality={"jpeg": 82, "webp": 80, "avif": 55})
request = VariantRequest("images/bench.jpg", 800, 0, fmt)
times = []
for _ in range(runs):
    started = time.perf_counter()
    rendered = render(source, request, config)
    times.append((time.perf_counter() - started) * 1000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{statistics.median(times):.1f} {len(rendered.body)} {peak:.1f}")

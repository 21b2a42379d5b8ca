"""How a migration's cost grows with the number of objects (``bench.migrate --objects N``).

moto's server answers a few hundred requests a second here, so at 10k+ objects it, not
Stowage, would set the pace: this measures the plan, the manifest and the local side alone,
``stowage migrate`` local -> local and ``stowage verify`` over the result, with small (1 KiB)
objects so per-object costs dominate. The source tree is built once in ``.cache/`` and
reused. Wall time and peak RSS come from bench/measure.py (GNU time, a clean process).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.measure import measured
from bench.peers import CACHE

BIN = Path(sys.executable).parent
OBJECT_BYTES = 1024
PER_DIRECTORY = 1000


def tree(objects: int) -> Path:
    """``objects`` files of 1 KiB, 1,000 to a directory, built once."""
    root = CACHE / f"migrate-tree-{objects}"
    done = root.with_suffix(".done")
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    payload = os.urandom(OBJECT_BYTES)
    for n in range(objects):
        directory = root / f"d{n // PER_DIRECTORY:05d}"
        if n % PER_DIRECTORY == 0:
            directory.mkdir(parents=True)
        (directory / f"{n:08d}.bin").write_bytes(n.to_bytes(8, "big") + payload[8:])
    done.touch()
    return root


def scale(objects: int, workers: int, only: str | None = None) -> None:
    source = tree(objects)
    env = {**os.environ}
    rows = []
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        env["STOWAGE_MIGRATION_DIR"] = str(Path(tmp) / "runs")
        destination = Path(tmp) / "destination"
        common = ["--quiet", "--workers", str(workers)]
        migrate = [str(BIN / "stowage"), "migrate", *common, str(source), str(destination)]
        verify = [str(BIN / "stowage"), "verify", *common, str(source), str(destination)]
        if only == "plan":
            plan = [str(BIN / "stowage"), "migrate", "--dry-run", *common, str(source)]
            rows.append(
                ("plan (--dry-run) local -> local", measured([*plan, str(destination)], env))
            )
        if only in (None, "migrate"):
            rows.append(("migrate local -> local", measured(migrate, env)))
        if only in (None, "verify"):
            if not destination.exists():
                rows.append(("migrate local -> local", measured(migrate, env)))
            rows.append(("verify local / local", measured(verify, env)))
    print(f"{objects:,} objects x {OBJECT_BYTES} B, {workers} workers\n")
    print(
        "| command | objects | wall (s) | per object (ms) | peak RSS (MiB) |\n|---|---|---|---|---|"
    )
    for name, result in rows:
        print(
            f"| {name} | {objects:,} | {result.seconds:.1f} |"
            f" {1000 * result.seconds / objects:.3f} | {result.peak_mib:.0f} |"
        )

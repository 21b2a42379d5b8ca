"""Wall time and peak memory of one command, measured in a clean process.

``ru_maxrss`` of a child forked from a benchmark is inherited from the fork, before the exec:
a parent that has just built a large input makes its child look large. GNU time forks from its
own small process, so the figure is the command's own peak (the largest of it and the
children it waited for)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mib: float
    stdout: bytes


def measured(
    args: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Measured:
    """Run ``args`` to completion; raise with its stderr's tail when it fails."""
    if not Path(GNU_TIME).exists():
        from tests.helpers import ensure_debian_packages

        ensure_debian_packages("time", binary="time")
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as report:
        started = time.perf_counter()
        process = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", report.name, *args],
            env=env,
            input=stdin,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {process.stderr.decode()[-2000:]}")
        peak_kib = int(report.read().strip().splitlines()[-1])
    return Measured(elapsed, peak_kib / 1024, process.stdout)

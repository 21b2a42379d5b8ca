"""Wall time, CPU time and peak memory of one command, measured in a clean process.

``ru_maxrss`` of a child forked from a benchmark is inherited from the fork, before the exec:
a parent that has just built a large input makes its child look large. GNU time forks from its
own small process, so the figure is the command's own peak (the largest of it and the
children it waited for)."""

from __future__ import annotations

import os
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
    cpu_seconds: float = 0.0  # user + system, the command and the children it waited for


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
            [GNU_TIME, "-f", "%M %U %S", "-o", report.name, *args],
            env=env,
            input=stdin,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {process.stderr.decode()[-2000:]}")
        peak_kib, user, system = report.read().strip().splitlines()[-1].split()
    return Measured(elapsed, int(peak_kib) / 1024, process.stdout, float(user) + float(system))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

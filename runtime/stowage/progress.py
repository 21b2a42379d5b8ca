"""Progress for long work: a live line on a terminal, silence otherwise (or with --quiet)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError


class Progress:
    """Thread-safe counters of objects and bytes, drawn at most five times a second."""

    def __init__(
        self, objects: int, total_bytes: int, *, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total_objects, self.total_bytes = objects, total_bytes
        self.objects = self.bytes = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn = 0.0

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
        self._draw()

    def add_object(self) -> None:
        with self._lock:
            self.objects += 1
        self._draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self.bytes / elapsed
        left = max(self.total_bytes - self.bytes, 0)
        eta = time.strftime("%H:%M:%S", time.gmtime(left / rate)) if rate > 0 else "--:--:--"
        return (
            f"{_size(self.bytes)} / {_size(self.total_bytes)}  "
            f"{self.objects}/{self.total_objects} objects  {_size(rate)}/s  ETA {eta}"
        )

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._drawn >= 0.2:
            self._drawn = now
            self.stream.write("\r\x1b[K" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

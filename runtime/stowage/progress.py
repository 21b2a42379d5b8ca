"""Progress for long work: a live line on a terminal, silence otherwise (or with --quiet).

Drawn by ``rich`` (bytes, objects, rate, time left; hours are not wrapped at 24)."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """Thread-safe counters of objects and bytes, drawn at most five times a second."""

    def __init__(
        self,
        objects: int,
        total_bytes: int,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total_objects, self.total_bytes = objects, total_bytes
        self.objects = self.bytes = 0
        self._lock = threading.Lock()
        self._rich = RichProgress(
            BarColumn(),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[objects]}/{task.fields[total_objects]} objects"),
            TransferSpeedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.stream, force_terminal=self.enabled),
            refresh_per_second=5,
            get_time=clock,
            disable=not self.enabled,
            transient=False,
        )
        self._task = self._rich.add_task(
            "", total=total_bytes or None, objects=0, total_objects=objects
        )
        if self.enabled:
            self._rich.start()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
        self._rich.advance(self._task, n)

    def add_object(self) -> None:
        with self._lock:
            self.objects += 1
            objects = self.objects
        self._rich.update(self._task, objects=objects)

    def line(self) -> str:
        """The current progress line as plain text."""
        out = io.StringIO()
        Console(file=out, width=160, color_system=None).print(
            self._rich.make_tasks_table(self._rich.tasks)
        )
        return out.getvalue().strip()

    def close(self) -> None:
        if self.enabled:
            self._rich.stop()

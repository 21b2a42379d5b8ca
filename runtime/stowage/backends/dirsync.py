"""Shared directory fsyncs: a write renamed into a directory is durable once an fsync of that
directory has *started* after the rename. A worker that needs its rename durable waits for
such an fsync already running, or runs one itself for every worker of that directory; workers
of other directories, and the manifest's commits, are never held by it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path


class DirectorySyncs:
    def __init__(self, fsync: Callable[[Path], None]) -> None:
        self._fsync = fsync
        self._cond = threading.Condition(threading.Lock())
        self._clock = 0  # advanced by every rename noted
        self._written: dict[Path, int] = {}  # directory -> clock of its latest rename
        self._covered: dict[Path, int] = {}  # directory -> clock when its last good fsync began
        self._running: set[Path] = set()

    def written(self, directory: Path) -> None:
        """Called after a rename into ``directory`` returned."""
        with self._cond:
            self._clock += 1
            self._written[directory] = self._clock

    def sync(self, directory: Path) -> None:
        """Return once an fsync of ``directory`` that began after this call was made has
        succeeded (so every rename into it that returned before the call is durable)."""
        with self._cond:
            needed = self._clock
            while self._covered.get(directory, -1) < needed:
                if directory in self._running:
                    self._cond.wait()
                    continue
                self._running.add(directory)
                began = self._clock
                self._cond.release()
                ok = False
                try:
                    self._fsync(directory)
                    ok = True
                finally:
                    self._cond.acquire()
                    self._running.discard(directory)
                    if ok:
                        self._covered[directory] = max(self._covered.get(directory, -1), began)
                    self._cond.notify_all()

    def sync_all(self) -> None:
        """Every directory renamed into whose last rename no fsync has covered yet."""
        with self._cond:
            pending = sorted(d for d, at in self._written.items() if self._covered.get(d, -1) < at)
        for directory in pending:
            self.sync(directory)

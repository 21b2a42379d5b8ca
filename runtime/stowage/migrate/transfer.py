"""The bytes in flight: one bandwidth cap shared by every worker, and the source reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from stowage.backends.readers import ChunkReader


class RateLimit:
    """A token bucket shared by all workers: at most ``bytes_per_second`` overall, with a
    burst of one second's worth. ``take`` is the hook every transfer reports its bytes to as
    they go on the wire; it blocks until they fit. Negative amounts (s3transfer rewinding a
    retried part) are ignored: the retry is paced when its bytes are sent again."""

    def __init__(self, bytes_per_second: int | None, clock: Callable[[], float] = time.monotonic):
        self.rate = bytes_per_second
        self.taken = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._allowance = float(bytes_per_second or 0)
        self._last = clock()

    def take(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self.taken += n
        if not self.rate:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._allowance = min(
                    self._allowance + (now - self._last) * self.rate, float(self.rate)
                )
                self._last = now
                if self._allowance >= n or self._allowance >= self.rate:
                    self._allowance -= n
                    return
                wait = (n - self._allowance) / self.rate
            time.sleep(min(wait, 0.5))


class SourceReader(ChunkReader):
    """A source object's bytes as a file: counted as they are read, each read reported to
    ``on_bytes`` (the throttle and the progress display). Not hashed here: the destination
    hashes the very bytes it is handed (``put_stream``'s result carries their SHA-256), and
    a second hash of the same buffers would only cost CPU."""

    def __init__(self, chunks: Iterator[bytes], on_bytes: Callable[[int], None]) -> None:
        super().__init__(chunks)
        self._on_bytes = on_bytes
        self.size = 0

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes without consuming them (for sniffing the type)."""
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        return self._buffer[:size]

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if data:
            self._on_bytes(len(data))
            self.size += len(data)
        return data

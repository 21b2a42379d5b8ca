"""Issue 11 item 6: ``--bwlimit`` caps the bytes on the wire in both directions.

A byte-counting TCP relay sits between ``stowage migrate`` and moto's S3 server and times
every byte that crosses it; the steady rate (10 %..90 % of the bytes) must respect the cap.
Before the fix, local -> S3 throttled only the local hashing pass and sent at full speed."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from stowage.migrate.transfer import RateLimit
from tests.runtime.conftest import stowage_cli
from tests.runtime.test_migrate import fill_local, fill_s3, migration_env

MIB = 1024 * 1024


class Relay:
    """TCP relay on loopback that logs (time, bytes) in each direction."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.up: list[tuple[float, int]] = []
        self.down: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(
                target=self._pump, args=(client, upstream, self.up), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.down), daemon=True
            ).start()

    def _pump(self, source: socket.socket, target: socket.socket, log: list) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    log.append((time.monotonic(), len(data)))
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def buffer_max(name: str) -> int:
    """The most one TCP socket's ``rmem`` or ``wmem`` buffer may autotune to here."""
    return int(Path(f"/proc/sys/net/ipv4/tcp_{name}").read_text().split()[2])


def worst_excess(log: list[tuple[float, int]], rate: float) -> tuple[int, float]:
    """(total bytes, the most the wire ever ran ahead of ``rate`` since its first byte).

    A limiter that holds lets the cumulative bytes stay under ``rate * t`` plus a fixed
    allowance whatever the machine's load: a slow machine only falls further behind."""
    events = sorted(log)
    if not events:
        return 0, 0.0
    start, seen, worst = events[0][0], 0, 0.0
    for moment, n in events:
        seen += n
        worst = max(worst, seen - rate * (moment - start))
    return seen, worst


@pytest.fixture
def relay(moto_url):
    parsed = urlparse(moto_url)
    relay = Relay((parsed.hostname, parsed.port))
    yield relay
    relay.close()


def test_the_limiter_accounts_every_byte_across_threads():
    limit = RateLimit(MIB)
    started = time.monotonic()

    def worker():
        for _ in range(12):
            limit.take(64 * 1024)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    limit.take(-5 * MIB)  # s3transfer rewinding a retried part: not a transfer
    assert limit.taken == 3 * MIB
    # A lower bound only: a limiter never lets bytes through early, while a loaded machine
    # may always be slower.
    assert elapsed >= 0.95 * (3 * MIB - MIB) / MIB  # one second's burst, then the rate


def test_bwlimit_caps_local_to_s3_uploads_on_the_wire(tmp_path, bucket, relay):
    fill_local(tmp_path / "src", {"videos/big.bin": os.urandom(24 * MIB)})
    env = {**migration_env(tmp_path), "STOWAGE_S3_ENDPOINT_URL": relay.url}
    stowage_cli(env, "migrate", str(tmp_path / "src"), f"s3://{bucket}", "--bwlimit", "6M")
    total, excess = worst_excess(relay.up, 6 * MIB)
    assert total >= 24 * MIB
    # One second's burst of the limiter, plus the sender's socket buffer (the relay reads
    # eagerly, so its receive buffer stays empty).
    allowance = 6 * MIB + buffer_max("wmem")
    assert excess <= allowance, f"{excess / MIB:.1f} MiB ahead of 6 MiB/s on the wire"


def test_bwlimit_caps_s3_to_local_downloads_on_the_wire(tmp_path, s3_client, bucket, relay):
    # A reader paces only what it takes out of the kernel's buffers, so the wire may run
    # ahead of it by the relay's send buffer and the reader's receive buffer (autotuned up
    # to the sysctl maximum) plus the limiter's one-second burst. The object is sized so
    # that an unpaced download would run well past that allowance.
    cap = 24 * MIB
    allowance = cap + buffer_max("rmem") + buffer_max("wmem")
    size = 2 * allowance + 2 * cap
    fill_s3(s3_client, bucket, "", {"videos/big.bin": os.urandom(size)})
    env = {**migration_env(tmp_path), "STOWAGE_S3_ENDPOINT_URL": relay.url}
    stowage_cli(env, "migrate", f"s3://{bucket}", str(tmp_path / "dst"), "--bwlimit", "24M")
    total, excess = worst_excess(relay.down, cap)
    assert total >= size
    assert excess <= allowance, f"{excess / MIB:.1f} MiB ahead of 24 MiB/s on the wire"


@pytest.fixture
def s3_client(aws_env, moto_url):
    import boto3

    return boto3.client("s3", endpoint_url=moto_url)

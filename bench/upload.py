"""bench/upload: a 1 GiB upload through Nginx to the service, against `dd` writing the same
bytes to the same filesystem. Reports the service's peak RSS and the throughput ratio.

Usage: .venv/bin/python -m bench.upload [--gib 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import free_port, running, wait_for_http, wait_for_socket
from tests.runtime.conftest import SECRET, TOKEN, service_env
from tests.runtime.nginx import nginx_binary, render_site

BIN = Path(sys.executable).parent
CHUNK = 8 * 1024 * 1024


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def make_video(path: Path, size: int) -> None:
    header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    with open(path, "wb") as out:
        out.write(header + (size - len(header)).to_bytes(4, "big") + b"mdat")
        written = len(header) + 8
        block = os.urandom(CHUNK)
        while written < size:
            piece = block[: min(CHUNK, size - written)]
            out.write(piece)
            written += len(piece)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.gib * 1024**3)

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        tmp = Path(tmp)
        source, root, prefix = tmp / "upload.mp4", tmp / "media", tmp / "nginx"
        root.mkdir()
        make_video(source, size)
        subprocess.run(["sync"], check=True)

        started = time.perf_counter()
        subprocess.run(
            ["dd", f"if={source}", f"of={root / 'dd.bin'}", "bs=8M", "conv=fsync", "status=none"],
            check=True,
        )
        dd_seconds = time.perf_counter() - started
        (root / "dd.bin").unlink()

        port, socket = free_port(), tmp / "stowage.sock"
        base = f"http://127.0.0.1:{port}"
        conf = render_site(
            prefix, port=port, socket=socket, root=root, secret=SECRET, body_limit_mb=0
        )
        env = service_env(
            root,
            port,
            STOWAGE_BEHIND_NGINX="true",
            STOWAGE_PUBLIC_BASE_URL=base,
            STOWAGE_MAX_UPLOAD_BYTES=str(size * 2),
        )
        with (
            running([str(BIN / "stowage"), "serve", "--uds", str(socket)], env=env) as service,
            running([nginx_binary(), "-c", str(conf)]),
        ):
            wait_for_socket(socket)
            wait_for_http(f"{base}/healthz")
            idle = peak_rss_mib(service.pid)
            started = time.perf_counter()
            result = subprocess.run(
                [
                    "curl",
                    "-sS",
                    "-o",
                    str(tmp / "response.json"),
                    "-w",
                    "%{http_code}",
                    "-H",
                    f"Authorization: Bearer {TOKEN}",
                    "-H",
                    "X-Filename: upload.mp4",
                    "-H",
                    "Content-Type: application/octet-stream",
                    "-X",
                    "POST",
                    "-T",
                    str(source),
                    f"{base}/api/upload/video",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            upload_seconds = time.perf_counter() - started
            peak = peak_rss_mib(service.pid)
            response = (tmp / "response.json").read_text()
        if result.stdout != "201":
            raise RuntimeError(f"upload failed: {result.stdout} {response}")

    mib = size / 1024**2
    print("| measure | value |\n|---|---|")
    print(f"| upload size | {mib:,.0f} MiB |")
    print(f"| service RSS idle / peak during upload | {idle:.0f} MiB / {peak:.0f} MiB |")
    print(f"| dd (bs=8M, conv=fsync) | {mib / dd_seconds:,.0f} MiB/s |")
    rate = mib / upload_seconds
    print(f"| upload via Nginx -> stowage (SHA-256, fsync, rename) | {rate:,.0f} MiB/s |")
    print(f"\nupload / dd = {dd_seconds / upload_seconds:.2f}x")


if __name__ == "__main__":
    main()

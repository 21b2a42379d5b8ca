"""bench/serve: downloads through (a) a signed URL checked by Nginx, (b) plain Nginx static
serving of the same files, (c) uvicorn FileResponse with as many worker processes as Nginx
has (the test skeleton's ``worker_processes``). One run, same machine, ratios reported.

Usage: .venv/bin/python -m bench.serve [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stowage.signing import sign_file_url
from tests.helpers import ensure_debian_packages, free_port, running, wait_for_http, wait_for_socket
from tests.runtime.conftest import SECRET, service_env
from tests.runtime.nginx import SKELETON, nginx_binary, render_site

BIN = Path(sys.executable).parent
NGINX_WORKERS = int(re.search(r"worker_processes (\d+);", SKELETON).group(1))


def wrk(url: str, *, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, MB/s) from wrk."""
    out = subprocess.run(
        [
            ensure_debian_packages("wrk", binary="wrk"),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    scale = {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses\n{out}")
    return rps, float(value) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root, prefix = tmp / "media", tmp / "nginx"
        files = {"100KB": 100 * 1024, "100MB": 100 * 1024 * 1024}
        for name, size in files.items():
            path = root / "images" / f"bench-{name}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
        port, socket, peer_port = free_port(), tmp / "stowage.sock", free_port()
        static_port = free_port()
        base = f"http://127.0.0.1:{port}"
        static_base = f"http://127.0.0.1:{static_port}"
        # The peer: the same Nginx workers, a plain static server with no link check.
        static = (
            f"    server {{ listen 127.0.0.1:{static_port}; sendfile on; tcp_nopush on;"
            f" aio threads;"
            f" access_log {prefix}/static.access.log; location /static/ {{ alias {root}/; }} }}"
        )
        conf = render_site(
            prefix,
            port=port,
            socket=socket,
            root=root,
            secret=SECRET,
            body_limit_mb=1,
            extra=static,
        )
        env = service_env(root, port, STOWAGE_BEHIND_NGINX="true", STOWAGE_PUBLIC_BASE_URL=base)
        peer_env = {**os.environ, "BENCH_ROOT": str(root)}
        with (
            running([str(BIN / "stowage"), "serve", "--uds", str(socket)], env=env),
            running([nginx_binary(), "-c", str(conf)], ready_url=f"{static_base}/static/"),
            running(
                [
                    str(BIN / "uvicorn"),
                    "bench.fileresponse_app:app",
                    "--port",
                    str(peer_port),
                    "--workers",
                    str(NGINX_WORKERS),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env=peer_env,
                ready_url=f"http://127.0.0.1:{peer_port}/docs",
            ),
        ):
            wait_for_socket(socket)
            wait_for_http(f"{base}/healthz")
            rows = []
            for name in files:
                key = f"images/bench-{name}.bin"
                urls = {
                    "a) signed URL via Nginx": sign_file_url(base, key, SECRET, ttl=3600),
                    "b) plain Nginx static": f"{static_base}/static/{key}",
                    "c) uvicorn FileResponse": f"http://127.0.0.1:{peer_port}/files/{key}",
                }
                connections = args.connections if name == "100KB" else 4
                results = {}
                for label, url in urls.items():
                    results[label] = wrk(url, seconds=args.seconds, connections=connections)
                    time.sleep(1)
                rows.append((name, connections, results))

    print(f"Nginx workers: {NGINX_WORKERS}; uvicorn workers: {NGINX_WORKERS}\n")
    print("| file | connections | path | requests/s | MB/s |\n|---|---|---|---|---|")
    for name, connections, results in rows:
        for label, (rps, mbps) in results.items():
            print(f"| {name} | {connections} | {label} | {rps:,.0f} | {mbps:,.0f} |")
    for name, _, results in rows:
        a, b, c = (results[k][0] for k in sorted(results))
        print(f"\n{name}: (a)/(b) = {a / b:.2f}x, (a)/(c) = {a / c:.1f}x")


if __name__ == "__main__":
    main()

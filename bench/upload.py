"""bench/upload: a 1 GiB upload through Nginx to the service, two designs side by side with
`dd` writing the same bytes to the same filesystem, in one run:

(a) the shipped path: Nginx (the Ansible role's site) streams the body to the service, which
    hashes and writes it as it arrives (bodies.SpoolWriter), fsyncs and renames it;
(b) Nginx writes the body onto the media filesystem itself (``client_body_in_file_only``,
    ``client_body_temp_path`` under the spool directory) after an ``auth_request`` to the
    service, and hands the file's path to bench/upload_spool_stub, which hashes, fsyncs and
    links it. The stub does no catalog write and no sniffing: (b)'s figure is a ceiling.

Peak RSS is VmHWM from /proc of each receiving process (the service started small).

Usage: .venv/bin/python -m bench.upload [--gib 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
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


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time of these processes so far: the work, whatever the machine's
    other load makes of the wall time."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


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


def curl_upload(source: Path, url: str, response: Path) -> float:
    """Seconds for one authenticated raw-body POST of ``source``; raises unless 201."""
    started = time.perf_counter()
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            str(response),
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
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    if result.stdout != "201":
        raise RuntimeError(f"upload to {url} failed: {result.stdout} {response.read_text()}")
    return elapsed


def refused_unread(source: Path, url: str, spool: Path) -> str:
    """(b)'s auth_request must run before Nginx reads the body: send the whole file without
    a token, watch the spool directory meanwhile. Returns the status; raises if a body file
    appeared."""
    with subprocess.Popen(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-T", source, url],
        stdout=subprocess.PIPE,
        text=True,
    ) as curl:
        while curl.poll() is None:
            if any(spool.iterdir()):
                raise RuntimeError("design (b) stored an unauthenticated body")
            time.sleep(0.01)
        status = curl.stdout.read()
    if status != "401":
        raise RuntimeError(f"design (b) answered {status} to an unauthenticated upload")
    return status


def body_file_server(port: int, stub_port: int, socket: Path, spool: Path, prefix: Path) -> str:
    """Design (b)'s Nginx server: auth_request first, then the body to a file in ``spool``."""
    return f"""
    server {{
        listen 127.0.0.1:{port};
        access_log {prefix}/body-file.access.log;
        client_max_body_size 0;
        client_body_temp_path {spool};
        client_body_in_file_only clean;
        client_body_buffer_size 1m;
        location = /upload {{
            auth_request /_auth;
            proxy_pass http://127.0.0.1:{stub_port};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Body-File $request_body_file;
            proxy_read_timeout 600s;
        }}
        location = /_auth {{
            internal;
            proxy_pass http://unix:{socket}:/api/upload/stats/overview;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="median of this many")
    args = parser.parse_args()
    size = int(args.gib * 1024**3)

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        tmp = Path(tmp)
        source, root, prefix = tmp / "upload.mp4", tmp / "media", tmp / "nginx"
        spool_b, dest_b = root / ".stowage-tmp" / "nginx-body", root / "videos-b"
        for directory in (spool_b, dest_b):
            directory.mkdir(parents=True)
        make_video(source, size)
        subprocess.run(["sync"], check=True)

        port, port_b, stub_port = free_port(), free_port(), free_port()
        socket = tmp / "stowage.sock"
        base = f"http://127.0.0.1:{port}"
        conf = render_site(
            prefix,
            port=port,
            socket=socket,
            root=root,
            secret=SECRET,
            body_limit_mb=0,
            extra=body_file_server(port_b, stub_port, socket, spool_b, prefix),
        )
        env = service_env(
            root,
            port,
            STOWAGE_BEHIND_NGINX="true",
            STOWAGE_PUBLIC_BASE_URL=base,
            STOWAGE_MAX_UPLOAD_BYTES=str(size * 2),
        )
        stub = [sys.executable, "-m", "bench.upload_spool_stub", str(stub_port)]
        with (
            running([str(BIN / "stowage"), "serve", "--uds", str(socket)], env=env) as service,
            running(
                [*stub, str(spool_b), str(dest_b)],
                log=prefix / "stub.log",
                ready_url=f"http://127.0.0.1:{stub_port}/",
            ) as receiver,
            running([nginx_binary(), "-c", str(conf)]) as nginx,
        ):
            wait_for_socket(socket)
            wait_for_http(f"{base}/healthz")
            idle = peak_rss_mib(service.pid)
            workers = children(nginx.pid)
            runs = {"dd": [], "a": [], "b": []}
            for _ in range(args.rounds):
                subprocess.run(["sync"], check=True)
                started = time.perf_counter()
                dd = ["dd", f"if={source}", f"of={root / 'dd.bin'}", "bs=8M", "conv=fsync"]
                subprocess.run([*dd, "status=none"], check=True)
                runs["dd"].append((time.perf_counter() - started, 0.0, 0.0, 0.0))
                (root / "dd.bin").unlink()
                for name, url, receiver_pid in (
                    ("a", f"{base}/api/upload/video", service.pid),
                    ("b", f"http://127.0.0.1:{port_b}/upload", receiver.pid),
                ):
                    subprocess.run(["sync"], check=True)
                    cpu = cpu_seconds(receiver_pid), cpu_seconds(*workers)
                    client = resource.getrusage(resource.RUSAGE_CHILDREN)
                    seconds = curl_upload(source, url, tmp / f"{name}.json")
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    used = cpu_seconds(receiver_pid) - cpu[0], cpu_seconds(*workers) - cpu[1]
                    curl_cpu = after.ru_utime + after.ru_stime - client.ru_utime - client.ru_stime
                    runs[name].append((seconds, *used, curl_cpu))
                for old in [*(root / "videos").rglob("*.mp4"), *dest_b.iterdir()]:
                    old.unlink()
            a_peak = peak_rss_mib(service.pid)
            b_peak = peak_rss_mib(receiver.pid)
            left = list(spool_b.iterdir())
            if left:
                raise RuntimeError(f"design (b) left Nginx temp files behind: {left}")
            unauthenticated_b = refused_unread(source, f"http://127.0.0.1:{port_b}/upload", spool_b)

    mib = size / 1024**2
    median = {name: statistics.median(r[0] for r in rows) for name, rows in runs.items()}
    cpu = {
        name: [statistics.median(r[i] for r in rows) for i in (1, 2, 3)]
        for name, rows in runs.items()
    }
    labels = {
        "dd": "dd (bs=8M, conv=fsync)",
        "a": "(a) Nginx -> stowage, streamed (SHA-256, fsync, rename)",
        "b": "(b) Nginx body file -> hash, fsync, link (ceiling)",
    }
    print(f"{mib:,.0f} MiB, median of {args.rounds} rounds (dd, a, b in turn)\n")
    print("| path | MiB/s | / dd | CPU s: receiver | Nginx workers | curl |")
    print("|---|---|---|---|---|---|")
    for name, label in labels.items():
        rate = mib / median[name]
        ratio = median["dd"] / median[name]
        used = " | ".join(f"{seconds:.2f}" for seconds in cpu[name])
        print(f"| {label} | {rate:,.0f} | {ratio:.2f}x | {used} |")
    print(f"\n(a) service RSS idle / peak: {idle:.0f} MiB / {a_peak:.0f} MiB")
    print(f"(b) receiver peak RSS: {b_peak:.0f} MiB")
    print(f"(b) the whole body without a token: {unauthenticated_b}, no body file written")
    print(f"\n(a) / dd = {median['dd'] / median['a']:.2f}x")
    print(f"(b) / dd = {median['dd'] / median['b']:.2f}x")


if __name__ == "__main__":
    main()

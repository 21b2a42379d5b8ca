"""bench/migrate_waits: one S3 -> local migration run in-process against moto, timing each
manifest commit (and its batch size), each save (``GroupCommit.submit``) and each object's
copy, with the CPU time of this process and of moto's server.

Usage: .venv/bin/python -m bench.migrate_waits SMALL LARGE   (64 KiB and 64 MiB objects)
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import boto3

from stowage.migrate import commits, engine
from tests.helpers import free_port, running

stats: dict = defaultdict(list)


def timing(cls, name: str, label) -> None:
    real = getattr(cls, name)

    def timed(self, *args):
        start = time.perf_counter()
        result = real(self, *args)
        stats[label(args)].append((time.perf_counter() - start, args))
        return result

    setattr(cls, name, timed)


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(label, samples) -> None:
    times = sorted(t for t, _ in samples)
    extra = ""
    if label == "commit":
        extra = f", rows/batch {sum(len(a[0]) for _, a in samples) / len(samples):.1f}"
    print(
        f"{label}: {len(times)}, total {sum(times):.2f} s,"
        f" mean {1000 * sum(times) / len(times):.2f} ms,"
        f" median {1000 * times[len(times) // 2]:.2f} ms, max {1000 * times[-1]:.1f} ms{extra}"
    )


def main() -> None:
    small, large = int(sys.argv[1]), int(sys.argv[2])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp())
    os.environ.pop("AWS_CA_BUNDLE", None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_ENDPOINT_URL_S3=url,
        STOWAGE_MIGRATION_DIR=str(tmp / "runs"),
    )
    timing(commits.GroupCommit, "_commit", lambda args: "commit")
    timing(commits.GroupCommit, "submit", lambda args: "save")
    timing(
        engine.Migration,
        "_transfer",
        lambda args: "copy, 64 MiB" if args[0].size > 1e6 else "copy, 64 KiB",
    )
    server = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with running(server, ready_url=f"{url}/moto-api/") as moto:
        s3 = boto3.client("s3", endpoint_url=url)
        location = {"LocationConstraint": "eu-west-1"}
        s3.create_bucket(Bucket="bench-src", CreateBucketConfiguration=location)
        for n in range(small):
            key = f"images/{n // 100:02d}/{n:05d}.bin"
            s3.put_object(Bucket="bench-src", Key=key, Body=os.urandom(64 * 1024))
        body = os.urandom(64 * 2**20)
        for n in range(large):
            s3.upload_fileobj(io.BytesIO(body[n:] + body[:n]), "bench-src", f"videos/{n:02d}.bin")
        stats.clear()
        from stowage.cli import main as stowage

        moto_cpu, cpu, start = process_cpu(moto.pid), os.times(), time.perf_counter()
        args = ["migrate", "--quiet", "--workers", "16", "s3://bench-src", str(tmp / "dst")]
        code = stowage(args)
        wall, moto_cpu = time.perf_counter() - start, process_cpu(moto.pid) - moto_cpu
        used = os.times()
    print(
        f"exit {code}; wall {wall:.2f} s; CPU: Stowage {used.user - cpu.user:.2f} s user +"
        f" {used.system - cpu.system:.2f} s system, moto {moto_cpu:.2f} s"
    )
    for label, samples in stats.items():
        report(label, samples)


if __name__ == "__main__":
    main()

"""Starting real components for tests: free loopback ports, processes that are waited on
and always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, *, timeout: float = 30, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A real, small filesystem at ``mount_point`` (root only), unmounted afterwards: a
    full disk on demand."""
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@contextlib.contextmanager
def file_attribute(path: Path, attribute: str) -> Iterator[Path]:
    """``chattr +attribute`` (root only; ``i``: not even root may replace or change the
    file, ``a``: a directory where entries may be added but never renamed or removed)."""
    subprocess.run(["chattr", f"+{attribute}", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["chattr", f"-{attribute}", str(path)], check=True)


@contextlib.contextmanager
def running(
    args: list[str],
    *,
    env: dict | None = None,
    log: Path | None = None,
    ready_url: str | None = None,
) -> Iterator[subprocess.Popen]:
    """Run ``args`` in its own process group; wait for ``ready_url``; kill it all at exit."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        if ready_url:
            wait_for_http(ready_url, process=process)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log:
            out.close()


_APT_UPDATED = False


def ensure_debian_packages(*packages: str, binary: str) -> str:
    """Install Debian packages (as root, without starting their services) if ``binary`` is
    missing; return the binary's path."""
    global _APT_UPDATED
    import shutil

    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError(f"{binary} is missing and installing {packages} needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # policy-rc.d 101: packages must not start their services on this machine.
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        if not _APT_UPDATED:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=600)
            _APT_UPDATED = True
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            env=env,
            check=True,
            timeout=1200,
            stdout=subprocess.DEVNULL,
        )
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError(f"installed {packages} but {binary} is still missing")
    return found


def wait_for_socket(path: Path, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)

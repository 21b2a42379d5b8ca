"""A Lightsail-like Debian 12 host for end-to-end tests: debootstrap + systemd-nspawn -b.

The root filesystem is built once with debootstrap and cached (``STOWAGE_E2E_CACHE``, default
``/var/cache/stowage-e2e``); every test run boots a fresh copy with systemd as PID 1 sharing
the machine's network, with sshd on a loopback port and the ``admin`` user with passwordless
sudo, as Lightsail's Debian image has. Everything the host started is removed at exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ensure_debian_packages, free_port

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What Lightsail's debian_12 image has and debootstrap's minbase lacks.
PACKAGES = [
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "ca-certificates",
    "iproute2",
]
SOURCES = f"""\
deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""
USER = "admin"


def cache_dir() -> Path:
    return Path(os.environ.get("STOWAGE_E2E_CACHE", "/var/cache/stowage-e2e"))


def base_rootfs() -> Path:
    """The cached, never-booted root filesystem; built when missing (about 90 s)."""
    ensure_debian_packages("debootstrap", binary="debootstrap")
    recipe = "\n".join([SUITE, MIRROR, *PACKAGES, SOURCES, USER])
    target = cache_dir() / f"debian-12-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if (target / ".complete").exists():
        return target
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(building),
            MIRROR,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    (building / "etc/apt/sources.list").write_text(SOURCES)
    subprocess.run(
        ["chroot", str(building), "useradd", "--create-home", "--shell", "/bin/bash", USER],
        check=True,
    )
    (building / f"etc/sudoers.d/90-{USER}").write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    (building / f"etc/sudoers.d/90-{USER}").chmod(0o440)
    # Host keys are per host: each copy generates its own.
    for key in (building / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    shutil.rmtree(building / "var/cache/apt/archives", ignore_errors=True)
    (building / "var/cache/apt/archives/partial").mkdir(parents=True)
    (building / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return target


class Host:
    """One booted container: ``ssh()`` runs commands, ``reboot()`` restarts it."""

    def __init__(self, workdir: Path, *, devices: dict[str, str] | None = None) -> None:
        ensure_debian_packages("systemd-container", binary="systemd-nspawn")
        self.workdir = workdir
        # Block devices of this machine, by the name the host sees them under.
        self.devices = devices or {}
        self.rootfs = workdir / "rootfs"
        self.key = workdir / "id_ed25519"
        self.ssh_port = free_port()
        self.name = f"stowage-e2e-{self.ssh_port}"
        self.log = workdir / "console.log"
        self.process: subprocess.Popen | None = None

    def prepare(self) -> None:
        subprocess.run(
            ["cp", "-a", "--reflink=auto", str(base_rootfs()), str(self.rootfs)], check=True
        )
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True
        )
        ssh_dir = self.rootfs / "home" / USER / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        subprocess.run(
            ["chroot", str(self.rootfs), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh"],
            check=True,
        )
        (self.rootfs / "etc/ssh/sshd_config.d/e2e.conf").write_text(
            f"Port {self.ssh_port}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n"
        )
        (self.rootfs / "etc/hostname").write_text(self.name + "\n")
        with (self.rootfs / "etc/hosts").open("a") as hosts:
            hosts.write(f"127.0.1.1 {self.name}\n")
        # Trust what this machine trusts: package registries may sit behind a TLS proxy whose
        # CA is installed here (the way /etc/pip.conf points pip at the system bundle).
        for ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(ca, self.rootfs / "usr/local/share/ca-certificates" / ca.name)
        subprocess.run(
            ["chroot", str(self.rootfs), "update-ca-certificates"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (self.rootfs / "etc/pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        )
        # Host keys are per host (the cached image has none).
        subprocess.run(["chroot", str(self.rootfs), "ssh-keygen", "-A"], check=True)

    def boot(self, timeout: float = 120) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "--directory",
                    str(self.rootfs),
                    "--boot",
                    "--register=no",
                    "--keep-unit",
                    "--machine",
                    self.name,
                    *(f"--bind={source}:{target}" for source, target in self.devices.items()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.process.returncode}")
            if self.ssh("true", check=False, timeout=10).returncode == 0:
                state = self.ssh("systemctl is-system-running --wait", check=False, timeout=120)
                if state.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(1)
        raise TimeoutError(f"{self.name} did not boot within {timeout} s; see {self.log}")

    def ssh_args(self) -> list[str]:
        return [
            "-i",
            str(self.key),
            "-p",
            str(self.ssh_port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
        ]

    def ssh(self, command: str, *, check: bool = True, timeout: float = 300, sudo: bool = True):
        """Run a shell command on the host (as root by default); return the CompletedProcess."""
        remote = f"sudo sh -c {shlex.quote(command)}" if sudo else command
        result = subprocess.run(
            ["ssh", *self.ssh_args(), f"{USER}@127.0.0.1", remote],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{command!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def reboot(self) -> None:
        """``systemctl reboot`` inside; nspawn exits (a reboot is not a restart to it), so boot
        the same root filesystem again."""
        assert self.process is not None
        self.ssh("systemctl reboot", check=False, timeout=30)
        self.process.wait(timeout=120)
        self.boot()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM asks systemd in the container for an orderly shutdown.
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def booted_host(workdir: Path, *, devices: dict[str, str] | None = None) -> Iterator[Host]:
    """A fresh copy of the cached image, booted; stopped and deleted at exit, failure too."""
    host = Host(workdir, devices=devices)
    try:
        host.prepare()
        host.boot()
        yield host
    finally:
        host.stop()
        leftover = subprocess.run(
            ["findmnt", "--list", "--noheadings", "--output", "TARGET"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for mount in sorted((m for m in leftover if m.startswith(str(host.rootfs))), reverse=True):
            subprocess.run(["umount", "--lazy", mount], check=False)
        shutil.rmtree(host.rootfs, ignore_errors=True)


@contextlib.contextmanager
def loop_device(image: Path, size_mb: int) -> Iterator[str]:
    """A blank, sparse disk image attached as a loop device; detached at exit."""
    with image.open("wb") as disk:
        disk.truncate(size_mb * 2**20)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)
        image.unlink(missing_ok=True)

"""Run the repository's playbook against an e2e host, as an operator would (over SSH)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.e2e.host import USER, Host
from tests.helpers import ROOT, free_port

ANSIBLE_DIR = ROOT / "ansible"
DEPLOYMENT = Path(__file__).with_name("deployment.yaml")


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, int]:
        """The host's PLAY RECAP counters (ok, changed, failed, ...)."""
        match = re.search(r"^\S+\s+:\s+(ok=.*)$", self.output, re.MULTILINE)
        assert match, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def write_inventory(host: Host, path: Path, **host_vars) -> str:
    """A static inventory for the container, in the shape of inventory/example.static.yml;
    returns the base URL of the site.

    The container shares this machine's network: Nginx listens on a free loopback port.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    connection = {
        "ansible_host": "127.0.0.1",
        "ansible_port": host.ssh_port,
        "ansible_user": USER,
        "ansible_ssh_private_key_file": str(host.key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "nginx_listen_address": "127.0.0.1",
        "nginx_listen_port": port,
        "stowage_public_base_url": base,
    }
    inventory = {"stowage": {"hosts": {"e2e": connection | host_vars}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return base


def converge(
    inventory: Path, *extra: str, deployment: Path = DEPLOYMENT, env: dict[str, str] | None = None
) -> Run:
    env = {
        **os.environ,
        **(env or {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "STOWAGE_DEPLOYMENT": str(deployment),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        # The container goes away with the test: no SSH master may outlive it.
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=10s",
        # Each boot makes new host keys; Mitogen checks them from this setting, not ssh args.
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }
    started = time.perf_counter()
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "site.yml", *extra],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    return Run(result.returncode, result.stdout + result.stderr, time.perf_counter() - started)

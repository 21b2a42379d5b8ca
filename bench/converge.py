"""bench/converge: the playbook against a fresh Lightsail-like host and against the same host
once converged, plus the service's idle memory there.

A debootstrapped Debian 12 booted with systemd-nspawn (tests/e2e/host.py), reached over SSH,
converged by ansible/site.yml with tests/e2e/deployment.yaml. Reports the two wall times,
their ratio (goal: converged <= 25 % of fresh), the time per role of the converged run, and
the stowage service's RSS after it has idled (goal <= 80 MiB).

Usage: .venv/bin/python -m bench.converge [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from tests.e2e.host import booted_host
from tests.e2e.playbook import converge, write_inventory


def rss_mib(host, unit: str) -> float:
    pid = host.ssh(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    status = host.ssh(f"cat /proc/{pid}/status").stdout
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, booted_host(Path(tmp)) as host:
        inventory = Path(tmp) / "inventory.yml"
        write_inventory(host, inventory)
        fresh = converge(inventory)
        if fresh.returncode:
            raise SystemExit(fresh.output[-4000:])
        os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_roles"
        converged = converge(inventory)
        if converged.returncode or converged.recap["changed"]:
            raise SystemExit(converged.output[-4000:])
        time.sleep(args.idle_seconds)
        service, nginx = rss_mib(host, "stowage"), rss_mib(host, "nginx")

    print("| run | wall (s) | tasks ok | changed |\n|---|---|---|---|")
    for name, run in (("fresh host", fresh), ("converged host", converged)):
        print(f"| {name} | {run.seconds:.1f} | {run.recap['ok']} | {run.recap['changed']} |")
    print(f"\nconverged / fresh = {converged.seconds / fresh.seconds:.2f} (goal <= 0.25)\n")
    print("converged run by role:")
    for line in converged.output.splitlines():
        if re.match(r"^\w+ -+ \d+\.\d+s$", line) or line.startswith("total "):
            print("  " + line)
    print(
        f"\nidle RSS after {args.idle_seconds:.0f} s: stowage {service:.1f} MiB (goal <= 80),"
        f" nginx master {nginx:.1f} MiB"
    )


if __name__ == "__main__":
    main()

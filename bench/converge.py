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


PROFILE = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_roles,ansible.posix.profile_tasks"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--top", type=int, default=15, help="slowest tasks of the converged run")
    parser.add_argument(
        "--peer-strategy",
        default="mitogen_linear",
        help="also re-run the converged host with this strategy; empty: no peer run",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, booted_host(Path(tmp)) as host:
        inventory = Path(tmp) / "inventory.yml"
        write_inventory(host, inventory)
        runs = {"fresh host": converge(inventory)}
        runs["converged host"] = converge(inventory, env=PROFILE)
        if args.peer_strategy:
            peer = {**PROFILE, "ANSIBLE_STRATEGY": args.peer_strategy}
            runs[f"converged host, strategy {args.peer_strategy}"] = converge(inventory, env=peer)
        for name, run in list(runs.items())[:2]:
            if run.returncode or (name != "fresh host" and run.recap["changed"]):
                raise SystemExit(f"{name}:\n{run.output[-4000:]}")
        for name, run in list(runs.items())[2:]:
            if run.returncode:
                print(f"{name} failed, left out:\n{run.output[-2000:]}")
                del runs[name]
        time.sleep(args.idle_seconds)
        service, nginx = rss_mib(host, "stowage"), rss_mib(host, "nginx")

    fresh, converged = runs["fresh host"], runs["converged host"]
    print("| run | wall (s) | tasks ok | changed | / fresh |\n|---|---|---|---|---|")
    for name, run in runs.items():
        print(
            f"| {name} | {run.seconds:.1f} | {run.recap['ok']} | {run.recap['changed']}"
            f" | {run.seconds / fresh.seconds:.2f} |"
        )
    print(f"\nconverged / fresh = {converged.seconds / fresh.seconds:.2f} (goal <= 0.25)")
    for name, run in runs.items():
        if name == "fresh host":
            continue
        lines = run.output.splitlines()
        print(f"\n{name}, by role:")
        for line in lines:
            if re.match(r"^\w+ -+ \d+\.\d+s$", line) or line.startswith("total "):
                print("  " + line)
        print(f"{name}, slowest tasks:")
        tasks = [line for line in lines if re.match(r"^.+ : .+ -+ \d+\.\d+s$", line)]
        for line in tasks[: args.top]:
            print("  " + line)
    print(
        f"\nidle RSS after {args.idle_seconds:.0f} s: stowage {service:.1f} MiB (goal <= 80),"
        f" nginx master {nginx:.1f} MiB"
    )


if __name__ == "__main__":
    main()

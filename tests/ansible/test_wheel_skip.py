"""The runtime role builds and installs the stowage wheel only when its sources changed.

The role's real package tasks run against this machine (local connection) with a small
stand-in package, into a temporary install directory: a real wheel build, a real venv and
real pip installs, a real handler notification.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.ansible.test_roles import ANSIBLE_DIR, ansible

pytestmark = pytest.mark.needs_root  # the role copies the wheel as root:root

PLAYBOOK = """\
- name: Install the stowage package as the runtime role does
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Install the stowage package
      ansible.builtin.include_tasks: {tasks}
      vars:
        __runtime_installed_hash_file: "{{{{ runtime_home }}}}/venv/stowage-source.sha256"
        __runtime_pending_restart: "{{{{ runtime_home }}}}/owed/restart-stowage"
        runtime_image_variants: {{}}
  handlers:
    - name: Restart stowage
      ansible.builtin.file:
        path: "{{{{ runtime_home }}}}/restarted"
        state: touch
        mode: "0644"
"""


class Site:
    def __init__(self, tmp: Path) -> None:
        self.source = tmp / "runtime"
        self.home = tmp / "home"
        self.constraints = tmp / "constraints.txt"
        self.playbook = tmp / "playbook.yml"
        (self.source / "stowage").mkdir(parents=True)
        self.home.mkdir()
        self.constraints.write_text("# nothing pinned: the stand-in has no dependencies\n")
        (self.source / "README.md").write_text("stand-in\n")
        (self.source / "pyproject.toml").write_text(
            textwrap.dedent("""\
                [build-system]
                requires = ["setuptools>=69"]
                build-backend = "setuptools.build_meta"

                [project]
                name = "stowage"
                version = "0.1.0"
                readme = "README.md"

                [tool.setuptools.packages.find]
                include = ["stowage*"]
                """)
        )
        self.write_code(1)
        self.playbook.write_text(
            PLAYBOOK.format(tasks=ANSIBLE_DIR / "roles/runtime/tasks/package.yml")
        )

    def write_code(self, value: int) -> None:
        (self.source / "stowage/__init__.py").write_text(f"VALUE = {value}\n")

    def converge(self, *options: str) -> dict[str, str]:
        """Run the tasks; return each task's status (ok, changed, skipping) by name."""
        extra = {
            "runtime_source_dir": str(self.source),
            "runtime_constraints_file": str(self.constraints),
            "runtime_build_dir": str(self.home.parent / "build"),
            "runtime_home": str(self.home),
            "ansible_python_interpreter": sys.executable,
        }
        result = ansible(
            "ansible-playbook",
            "-i",
            "localhost,",
            str(self.playbook),
            "-e",
            json.dumps(extra),
            *options,
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        statuses = {}
        for task in (t for play in json.loads(result.stdout)["plays"] for t in play["tasks"]):
            outcome = task["hosts"]["localhost"]
            status = "skipping" if outcome.get("skipped") else "ok"
            statuses[task["task"]["name"]] = "changed" if outcome.get("changed") else status
        return statuses

    def installed_value(self) -> str:
        python = self.home / "venv/bin/python"
        return subprocess.run(
            [str(python), "-c", "import stowage; print(stowage.VALUE)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.home,
        ).stdout.strip()

    def restarted(self) -> bool:
        marker = self.home / "restarted"
        found = marker.exists()
        marker.unlink(missing_ok=True)
        return found


BUILD = "Build the stowage wheel from the controller's checkout"
INSTALL = "Install stowage and its pinned dependencies"


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path)


def test_unchanged_sources_build_and_install_nothing_and_a_change_reinstalls(site):
    first = site.converge()
    assert first[INSTALL] == "changed"
    assert site.installed_value() == "1"
    assert site.restarted()
    # Recorded before the install: a run killed after it still owes the restart.
    assert (site.home / "owed/restart-stowage").exists()

    # Bytecode and egg-info left by tests or an editable install are no change.
    (site.source / "stowage/__pycache__").mkdir(exist_ok=True)
    (site.source / "stowage/__pycache__/__init__.cpython-311.pyc").write_bytes(b"\0")
    (site.source / "stowage.egg-info").mkdir(exist_ok=True)
    (site.source / "stowage.egg-info/PKG-INFO").write_text("Name: stowage\n")
    again = site.converge()
    assert again[BUILD] == "skipping"
    assert again[INSTALL] == "skipping"
    assert "changed" not in again.values()
    assert not site.restarted()

    # Same version number, new code: installed, and the service restarted.
    site.write_code(2)
    changed = site.converge()
    assert changed[INSTALL] == "changed"
    assert site.installed_value() == "2"
    assert site.restarted()


def test_new_pins_or_a_removed_venv_reinstall(site):
    site.converge()
    site.restarted()

    site.constraints.write_text("# a new pin set\n")
    assert site.converge()[INSTALL] == "changed"
    assert site.restarted()

    subprocess.run(["rm", "-rf", str(site.home / "venv")], check=True)
    assert site.converge()[INSTALL] == "changed"
    assert site.installed_value() == "1"


def test_check_mode_previews_a_reinstall_without_installing(site):
    """``--check`` (an operator's preview) hashes the sources and builds the wheel on the
    controller (read-only for the host) to tell what would change; it installs nothing."""
    site.converge()
    site.restarted()
    unchanged = site.converge("--check")
    assert unchanged[BUILD] == "skipping"
    assert "changed" not in unchanged.values()

    site.write_code(2)
    preview = site.converge("--check")
    assert preview["Copy the wheel and the pinned versions to the host"] == "changed"
    assert site.installed_value() == "1"
    assert not site.restarted()

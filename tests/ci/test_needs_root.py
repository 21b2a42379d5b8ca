"""The needs_root marker as GitHub's runner meets it: a user with sudo must not go green by
leaving root's tests out unnoticed; a machine without root or sudo skips them, saying why.

The probe is a one-line test marked needs_root, run by the repository's pytest configuration
and tests/conftest.py's hook (as a plugin) in a pytest of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

VENV_BIN = Path(sys.executable).parent
NOBODY_READING = [
    *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
    *("--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"),
]
PROBE = """\
import os

import pytest


@pytest.mark.needs_root
def test_probe():
    assert os.geteuid() == 0


def test_unprivileged():
    assert os.geteuid() != 0
"""


def pytest_as_a_user(tmp_path: Path, path: str, *args: str) -> subprocess.CompletedProcess:
    """The probe as an unprivileged user with PATH ``path``, the only place the hook looks
    for sudo. Run as root, the suite becomes ``nobody`` for this; nobody keeps the right to
    read (not write) files, as root's interpreter may live in a 0700 home (pyenv)."""
    user = NOBODY_READING if os.geteuid() == 0 else []
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    return subprocess.run(
        [
            *(*user, "env", "-i", f"PATH={path}", "LANG=C.UTF-8", f"PYTHONPATH={ROOT}"),
            # setup-python exports it (its interpreter's shared libpython): keep it
            f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}",
            *(sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml")),
            *("-p", "tests.conftest", "-p", "no:cacheprovider", str(probe), *args),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_root_or_sudo_the_test_is_skipped_with_the_reason(tmp_path):
    result = pytest_as_a_user(tmp_path, str(VENV_BIN))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert (
        "needs root (apt-get, Nginx, mount, systemd-nspawn): "
        "this machine has neither root nor sudo" in result.stdout
    )


@pytest.fixture
def path_with_sudo():
    # Outside pytest's 0700 temp root: which() checks access() with no capabilities.
    with tempfile.TemporaryDirectory() as bin_dir:
        os.chmod(bin_dir, 0o755)  # noqa: S103 - nobody must reach the fake sudo
        sudo = Path(bin_dir) / "sudo"
        sudo.write_text("#!/bin/sh\nexit 1\n")  # found on PATH, never run
        sudo.chmod(0o755)
        yield f"{VENV_BIN}:{bin_dir}"


def test_a_user_with_sudo_runs_the_others_as_the_user_job_does(tmp_path, path_with_sudo):
    result = pytest_as_a_user(tmp_path, path_with_sudo, "-m", "not needs_root")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in result.stdout


def test_a_user_with_sudo_is_told_how_to_run_it(tmp_path, path_with_sudo):
    result = pytest_as_a_user(tmp_path, path_with_sudo)
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "1 selected tests, e.g. " in result.stderr
    assert "test_probe" in result.stderr
    assert "make test-root" in result.stderr
    assert "skipped" not in result.stdout

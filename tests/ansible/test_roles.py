"""The playbook and roles, checked without a host: ansible-lint's production profile, a
syntax check, and argument specs that match each role's documented defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

ANSIBLE_DIR = ROOT / "ansible"
ROLES = sorted(p.name for p in (ANSIBLE_DIR / "roles").iterdir() if p.is_dir())
BIN = Path(sys.executable).parent


def ansible(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run one of the venv's ansible commands in ansible/ (tests/conftest.py put the venv
    first on PATH, which script inventories and ansible-lint rely on)."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=ANSIBLE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_roles_are_the_five_of_the_single_host():
    assert ROLES == ["base", "maintenance", "nginx", "runtime", "storage"]


def test_ansible_lint_production_profile_passes():
    result = ansible("ansible-lint", "--nocolor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_playbook_syntax():
    result = ansible(
        "ansible-playbook", "--syntax-check", "-i", "inventory/example.static.yml", "site.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_documents_every_default(role):
    """Each role variable has a default and an argument spec entry, both or neither."""
    role_dir = ANSIBLE_DIR / "roles" / role
    defaults = yaml.safe_load((role_dir / "defaults/main.yml").read_text())
    spec = yaml.safe_load((role_dir / "meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    required = {name for name, option in options.items() if option.get("required")}
    assert set(defaults) == set(options), "defaults and argument spec disagree"
    assert all(name.startswith(f"{role}_") for name in options), "variables carry the role prefix"
    assert all(option.get("description") for option in options.values())
    assert not required - set(defaults) or required <= set(options)

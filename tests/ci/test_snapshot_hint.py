"""A failed snapshot test names the command that updates the snapshots.

The snapshot test runs on a copy of tests/ whose Lightsail snapshot was altered, so the
repository's snapshots are never touched; one deployment is synthesized (about 15 s)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.helpers import ROOT

SNAPSHOT = "__snapshots__/test_snapshots/test_template_snapshot[example-Lightsail].json"
COPIED = (
    "pyproject.toml",
    "cdk.json",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/cdk/__init__.py",
    "tests/cdk/conftest.py",
    "tests/cdk/test_snapshots.py",
    f"tests/cdk/{SNAPSHOT}",
)
SELECT = ("-k", "example-Lightsail", "tests/cdk/test_snapshots.py")


def test_a_changed_template_fails_with_the_update_command(tmp_path):
    for relative in COPIED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    snapshot = tmp_path / "tests/cdk" / SNAPSHOT
    text = snapshot.read_text()
    assert "AWS::Lightsail::Instance" in text
    snapshot.write_text(text.replace("AWS::Lightsail::Instance", "AWS::Lightsail::Altered"))

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *SELECT],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert (
        "template changed; if intended, run: "
        ".venv/bin/python -m pytest tests/cdk/test_snapshots.py --snapshot-update"
    ) in result.stdout

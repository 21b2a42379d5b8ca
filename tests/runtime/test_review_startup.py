"""Review F11: settings that cannot work stop `stowage serve` and the other commands with one
line naming the setting and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import free_port
from tests.runtime.conftest import BIN, service_env

BROKEN = [
    ({"STOWAGE_CATALOG_URL": "dynamodb://"}, "STOWAGE_CATALOG_URL"),
    ({"STOWAGE_CATALOG_URL": "dynamodb://a"}, "STOWAGE_CATALOG_URL"),
    ({"STOWAGE_CATALOG_URL": "sqlite:///"}, "STOWAGE_CATALOG_URL"),
    ({"STOWAGE_LOCAL_ROOT": "/proc/nope"}, "STOWAGE_LOCAL_ROOT=/proc/nope"),
    ({"STOWAGE_LOCAL_ROOT": "/etc/hostname/media"}, "STOWAGE_LOCAL_ROOT=/etc/hostname/media"),
]


@pytest.mark.parametrize(("settings", "named"), BROKEN, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--host", "127.0.0.1", "--port", "PORT"],
        ["cleanup", "--older-than", "24h", "--dry-run"],
    ],
    ids=["serve", "cleanup"],
)
def test_unusable_settings_are_one_line_and_exit_2(tmp_path, command, settings, named):
    port = str(free_port())
    env = service_env(tmp_path / "media", int(port)) | settings
    env.pop("AWS_DEFAULT_REGION", None)
    done = subprocess.run(
        [str(BIN / "stowage"), *(port if part == "PORT" else part for part in command)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("stowage: invalid settings: "), lines
    assert named in lines[0], lines

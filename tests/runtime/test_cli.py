"""The maintenance CLI, run as an operator (or cron) would run it."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time

import httpx
import pytest

from tests.runtime.conftest import TOKEN, image_bytes, stowage_cli

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(serve):
    return serve()


def test_cleanup_deletes_old_temp_objects_only(api):
    temp = api.client.post(
        "/api/upload/image?is_temp=true", files={"file": ("t.png", image_bytes())}, headers=AUTH
    ).json()
    kept = api.client.post(
        "/api/upload/image", files={"file": ("k.png", image_bytes())}, headers=AUTH
    ).json()
    stray = (
        api.root / "temp" / "images" / "2020" / "stray.png"
    )  # a temp file the catalog never knew
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    os.utime(stray, (time.time() - 3 * 86400,) * 2)

    time.sleep(1.2)
    dry = json.loads(
        stowage_cli(api.env, "cleanup", "--older-than", "1s", "--dry-run", "--json").stdout
    )
    assert sorted(dry["deleted_objects"]) == sorted([temp["key"], "temp/images/2020/stray.png"])
    assert (api.root / temp["key"]).exists()

    young = json.loads(stowage_cli(api.env, "cleanup", "--older-than", "1h", "--json").stdout)
    assert young["deleted_objects"] == ["temp/images/2020/stray.png"]
    report = stowage_cli(api.env, "cleanup", "--older-than", "1s").stdout
    assert report.startswith("deleted 1 temp objects")
    assert not (api.root / temp["key"]).exists()
    assert (api.root / kept["key"]).exists()
    assert api.client.get(f"/api/upload/{temp['id']}", headers=AUTH).status_code == 404
    assert api.client.get(f"/api/upload/{kept['id']}", headers=AUTH).status_code == 200


def test_cleanup_rejects_a_bad_duration(api):
    result = stowage_cli(api.env, "cleanup", "--older-than", "soon", check=False)
    assert result.returncode == 2
    assert "is not a duration" in result.stderr


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_disk_check_thresholds_and_webhook(api):
    used = shutil.disk_usage(api.root)
    percent = 100 * used.used / used.total
    ok = stowage_cli(api.env, "disk-check", "--threshold", str(min(percent + 5, 99.9)), check=False)
    assert ok.returncode == 0
    assert ok.stdout.startswith("OK ")

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        alert = stowage_cli(
            api.env, "disk-check", "--threshold", "0.001", "--webhook", url, check=False
        )
    finally:
        server.shutdown()
    assert alert.returncode == 1
    assert alert.stdout.startswith("ALERT ")
    assert Hook.received
    assert "stowage disk alert" in Hook.received[-1]["text"]


def test_sign_url_gives_a_working_link(api):
    body = api.client.post(
        "/api/upload/image", files={"file": ("s.png", image_bytes())}, headers=AUTH
    ).json()
    url = stowage_cli(api.env, "sign-url", body["key"], "--expires", "5m").stdout.strip()
    assert httpx.get(url).status_code == 200
    expires = int(url.split("expires=")[1].split("&")[0])
    assert 250 < expires - time.time() <= 300
    bad = stowage_cli(api.env, "sign-url", "../etc/passwd", check=False)
    assert bad.returncode == 2  # a bad key is a usage error
    assert bad.stderr == "stowage: key contains a '.' or '..' segment\n"


def test_reindex_rebuilds_the_catalog(api):
    bodies = [
        api.client.post(
            "/api/upload/image", files={"file": (f"{n}.png", image_bytes())}, headers=AUTH
        ).json()
        for n in range(3)
    ]
    api.client.delete(f"/api/upload/{bodies[0]['id']}", headers=AUTH)
    catalog = api.root / ".stowage" / "catalog.db"
    import sqlite3

    with sqlite3.connect(catalog) as db:
        db.execute("DELETE FROM objects WHERE id = ?", (bodies[1]["id"],))
        db.execute(
            "INSERT INTO objects (id, key, prefix, size, sha256, content_type, is_temp, backend,"
            " created_at, updated_at, expires_at)"
            " VALUES ('ghost', 'images/ghost.png', 'images/', 1, 'x',"
            " 'image/png', 0, 'local', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',"
            " NULL)"
        )
    counts = json.loads(stowage_cli(api.env, "reindex", "--json").stdout)
    assert counts == {"added": 1, "removed": 1, "objects": 2}
    restored = api.client.get(f"/api/upload/{bodies[1]['id']}", headers=AUTH).json()
    assert restored["sha256"] == bodies[1]["sha256"]
    assert restored["content_type"] == "image/png"


def test_version_is_the_installed_package_version():
    from importlib.metadata import version

    result = stowage_cli(os.environ.copy(), "--version")
    assert result.stdout.strip() == f"stowage {version('stowage')}"


def test_progress_time_left_is_not_wrapped_at_24_hours():
    """Three days left must read 72 hours, not the 00:00:00 a %H clock wraps to."""
    import io

    from stowage.progress import Progress

    now = [0.0]
    progress = Progress(2, 3 * 86400 * 1000 + 1000, stream=io.StringIO(), clock=lambda: now[0])
    now[0] = 1
    progress.add_bytes(1000)
    now[0] = 11
    progress.add_bytes(10_000)  # 1,000 bytes a second
    progress.add_object()
    line = progress.line()
    assert "1/2 objects" in line
    assert "ETA 71:59:" in line


# --- review F12: bad arguments are one line naming the argument, exit 2 -----------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("cleanup", "--older-than", "99999999d"), "--older-than"),
        (("cleanup", "--older-than", "99999999999999999999d"), "--older-than"),
        (("sign-url", "images/a.png", "--expires", "99999999999999999h"), "--expires"),
        (("disk-check", "--threshold", "200"), "--threshold"),
        (("disk-check", "--threshold", "-5"), "--threshold"),
        (("disk-check", "--threshold", "nan"), "--threshold"),
        (("migrate", "src", "dst", "--workers", "0"), "--workers"),
        (("migrate", "src", "dst", "--workers", "0", "--dry-run"), "--workers"),
        (("status", "../x"), "run id"),
        (("rollback", "../x"), "run id"),
        (("migrate", "src", "dst", "--resume", "../x"), "run id"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, named):
    env = {
        **os.environ,
        "STOWAGE_LOCAL_ROOT": str(tmp_path / "media"),
        "STOWAGE_MIGRATION_DIR": str(tmp_path / "runs"),
    }
    (tmp_path / "src" / "images").mkdir(parents=True)
    (tmp_path / "src" / "images" / "a.png").write_bytes(image_bytes())
    (tmp_path / "runs").mkdir()
    (tmp_path / "x.sqlite").write_bytes(b"not a manifest")  # where runs/../x would lead
    result = stowage_cli(env, *args, check=False, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert named in result.stderr
    assert not (tmp_path / "dst").exists()


def test_an_unsupported_catalog_url_is_refused_before_anything_is_copied(tmp_path):
    (tmp_path / "src" / "images").mkdir(parents=True)
    (tmp_path / "src" / "images" / "a.png").write_bytes(image_bytes())
    result = stowage_cli(
        {**os.environ, "STOWAGE_MIGRATION_DIR": str(tmp_path / "runs")},
        *("migrate", "src", "dst", "--catalog", "mysql://x", "--quiet"),
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "--catalog 'mysql://x'" in result.stderr
    assert not (tmp_path / "dst").exists()
    assert not (tmp_path / "runs").exists()

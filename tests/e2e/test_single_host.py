"""The single-host topology end to end: the playbook converges a booted Debian 12 host
(systemd as PID 1, reached over SSH) and the host then serves Stowage through Nginx."""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import shutil
import time

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import HOST_KEY, TOKEN
from tests.e2e.playbook import converge
from tests.helpers import ROOT
from tests.runtime.conftest import mp4_bytes
from tests.runtime.nginx import assert_signed_downloads, assert_traversal_refused

pytestmark = pytest.mark.needs_root  # debootstrap, systemd-nspawn, loop devices

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES = ("nginx", "stowage", "cron")


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def wait_healthy(site, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(site.base + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{site.base}/healthz did not answer 200 within {timeout} s")


def active(site) -> list[str]:
    result = site.host.ssh(f"systemctl is-active {' '.join(SERVICES)}", check=False)
    return result.stdout.split()


def test_playbook_converges_and_a_second_run_changes_nothing(site):
    assert site.first.returncode == 0, tail(site.first.output)
    assert site.first.recap["failed"] == 0
    assert site.first.recap["changed"] > 0
    assert site.second is not None
    assert site.second.returncode == 0, tail(site.second.output)
    assert site.second.recap["changed"] == 0, re.findall(r"^changed: .*$", site.second.output, re.M)


def test_a_check_run_with_diff_previews_nothing_and_shows_no_secret(site):
    """An operator's preview (``--check --diff``) of the converged host: it completes (the
    controller's source hash runs in check mode too), changes nothing, and its diffs never
    show the env file or the secure_link secret."""
    preview = converge(site.inventory, "--check", "--diff")
    assert preview.returncode == 0, tail(preview.output)
    assert preview.recap["changed"] == 0, re.findall(r"^changed: .*$", preview.output, re.M)
    env = site.env_file()
    for secret in (HOST_KEY["aws_secret_access_key"], env["STOWAGE_SIGNING_SECRET"], TOKEN):
        assert secret not in preview.output


def test_a_restart_and_a_reload_owed_by_an_interrupted_run_happen_on_the_next(site):
    """What a run killed between its writes and its handlers (or one whose handler failed)
    leaves: files already matching, and the markers the writes recorded first (review F1,
    F2). The next run must restart the service and reload Nginx, then forget them."""
    owed = "/var/lib/stowage-converge"
    service = site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip()
    workers = site.host.ssh("pgrep -f 'nginx: worker' | sort").stdout.split()
    site.host.ssh(f"touch {owed}/restart-stowage {owed}/reload-nginx")
    # And what the service user could plant while the log directory was its own (before
    # this release): the run removes it before anything opens it.
    site.host.ssh("ln -s /etc/cron.d/zz-planted /var/log/stowage/planted.log")
    site.host.ssh("chown -h stowage:stowage /var/log/stowage/planted.log")
    # And a signing secret the service user wrote into its env file then (it was its own):
    # Nginx configuration in disguise, which must never reach /etc/nginx.
    planted = 'x"; } server { access_log /etc/cron.d/zz-planted; } map "" $y { default "'
    env = "/etc/stowage/stowage.env"
    site.host.ssh(f"sed -i '/^STOWAGE_SIGNING_SECRET=/d' {env}")
    site.host.ssh(f"echo {shlex.quote('STOWAGE_SIGNING_SECRET=' + planted)} >> {env}")
    run = converge(site.inventory)
    assert run.returncode == 0, tail(run.output)
    wait_healthy(site)
    assert site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip() != service
    after = site.host.ssh("pgrep -f 'nginx: worker' | sort").stdout.split()
    assert after
    assert not set(after) & set(workers)  # reloaded: the workers were replaced
    assert site.host.ssh(f"ls -A {owed}").stdout == ""
    assert site.host.ssh("test -L /var/log/stowage/planted.log", check=False).returncode == 1
    assert re.fullmatch(r"[A-Za-z0-9]{64}", site.env_file()["STOWAGE_SIGNING_SECRET"])
    assert "access_log" not in site.host.ssh("cat /etc/nginx/stowage-secure-link.conf").stdout
    assert site.host.ssh(f"stat -c '%U %a' {owed}").stdout.split() == ["root", "700"]


def test_a_reload_owed_by_a_relinked_site_survives_a_failed_handler(site):
    """Review 3 F2: the site's link restored while an unrelated broken file makes the
    handler's `nginx -t` fail; once that file is gone the next run must still reload
    (it finds the link in place), or Nginx keeps serving without the site."""
    site.host.ssh("rm /etc/nginx/sites-enabled/stowage.conf && systemctl reload nginx")
    site.host.ssh("echo 'broken {' > /etc/nginx/conf.d/zz-other-team.conf")
    try:
        failed = converge(site.inventory)
        assert failed.returncode != 0
        assert "zz-other-team.conf" in failed.output
    finally:
        site.host.ssh("rm -f /etc/nginx/conf.d/zz-other-team.conf")
    mended = converge(site.inventory)
    assert mended.returncode == 0, tail(mended.output)
    assert httpx.get(site.base + "/healthz", timeout=10).status_code == 200


def test_secrets_reach_the_env_file_and_never_the_output(site):
    env = site.env_file()
    assert env["AWS_ACCESS_KEY_ID"] == HOST_KEY["aws_access_key_id"]
    assert env["AWS_SECRET_ACCESS_KEY"] == HOST_KEY["aws_secret_access_key"]
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["STOWAGE_S3_BUCKET"] == "stowage-e2e-media-123456789012-eu-west-1"
    assert env["STOWAGE_API_TOKENS"] == TOKEN
    assert len(env["STOWAGE_SIGNING_SECRET"]) >= 32
    for secret in (HOST_KEY["aws_secret_access_key"], env["STOWAGE_SIGNING_SECRET"], TOKEN):
        assert secret not in site.first.output + site.second.output
    # The copy Nginx checks links with is root's alone.
    assert site.host.ssh("stat -c '%a %U' /etc/nginx/stowage-secure-link.conf").stdout.split() == [
        "600",
        "root",
    ]


def test_services_are_active_enabled_and_nginx_config_is_valid(site):
    assert active(site) == ["active"] * len(SERVICES)
    enabled = site.host.ssh(f"systemctl is-enabled {' '.join(SERVICES)}").stdout.split()
    assert enabled == ["enabled"] * len(SERVICES)
    site.host.ssh("nginx -t")
    # The unit is hardened and runs as the static service user.
    unit = site.host.ssh("systemctl show stowage -p User -p NoNewPrivileges -p ProtectSystem")
    assert set(unit.stdout.split()) == {
        "User=stowage",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    }


def test_the_deployment_config_reaches_the_host(site):
    """tests/e2e/deployment.yaml: storage root /srv/media, 64 MiB uploads, 36 h temp expiry,
    disk alert at 90 %: each arrives where it acts."""
    cron = site.host.ssh("cat /etc/cron.d/stowage").stdout
    assert re.search(
        r"^0 2 \* \* \* root runuser -u stowage -- /usr/local/bin/stowage cleanup "
        r"--older-than 36h ",
        cron,
        re.M,
    ), cron
    assert re.search(
        r"^\*/15 \* \* \* \* root runuser -u stowage -- /usr/local/bin/stowage disk-check "
        r"--threshold 90 ",
        cron,
        re.M,
    ), cron
    env_file = site.host.ssh("stat -c '%a %U %G' /etc/stowage/stowage.env").stdout.split()
    assert env_file == ["640", "root", "stowage"]  # the service user cannot rewrite it
    env = site.env_file()
    assert env["STOWAGE_LOCAL_ROOT"] == "/srv/media"
    assert env["STOWAGE_TEMP_MAX_AGE_HOURS"] == "36"
    assert env["STOWAGE_MAX_UPLOAD_BYTES"] == str(64 * 2**20)
    root = site.host.ssh("stat -c '%a %G' /srv/media /srv/media/images /srv/media/temp").stdout
    assert root.splitlines() == ["2770 stowage"] * 3
    assert "stowage" in site.host.ssh("id -nG www-data").stdout.split()
    site.host.ssh("logrotate --debug /etc/logrotate.d/stowage")


def test_uploads_and_signed_links_through_nginx(site):
    data = mp4_bytes(3 * 1024 * 1024)
    with httpx.Client(base_url=site.base, timeout=120) as client:
        response = client.post(
            "/api/upload/video", files={"file": ("clip.mp4", data)}, headers=AUTH
        )
        assert response.status_code == 201, response.text
        upload = response.json()
        site.uploads.append(upload)
        assert_signed_downloads(site.base, upload, data, site.secret())

        # Owned by the service, readable by Nginx through the shared group, nobody else.
        stat = site.host.ssh(f"stat -c '%a %U %G' /srv/media/{upload['key']}").stdout.split()
        assert stat == ["640", "stowage", "stowage"]

        assert client.post("/api/upload/video", files={"file": ("c.mp4", data)}).status_code == 401
        too_big = client.post(
            "/api/upload/video",
            files={"file": ("big.mp4", mp4_bytes(65 * 1024 * 1024))},
            headers=AUTH,
        )
        assert too_big.status_code == 413


def test_an_uploaded_image_is_served_as_an_800px_webp_through_img(site):
    """Nginx hands the miss to the service, which renders it with the image core (the
    [images] extra on the host) and stores it where Nginx serves it from then on."""
    image = Image.effect_mandelbrot((1600, 1200), (-2.0, -1.2, 0.8, 1.2), 60).convert("RGB")
    data = io.BytesIO()
    image.save(data, "JPEG", quality=90)
    with httpx.Client(base_url=site.base, timeout=120) as client:
        response = client.post(
            "/api/upload/image", files={"file": ("p.jpg", data.getvalue())}, headers=AUTH
        )
        assert response.status_code == 201, response.text
        key = response.json()["key"]
        first = client.get(f"/img/{key}?w=800", headers={"Accept": "image/webp,*/*"})
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(first.content)).size == (800, 600)
        stored = site.host.ssh(f"stat -c '%s %U' /srv/media/variants/{key}/800x0.webp").stdout
        assert stored.split() == [str(len(first.content)), "stowage"]
        again = client.get(f"/variants/{key}/800x0.webp")
        assert again.status_code == 200
        assert again.content == first.content


def test_traversal_and_internal_paths_are_refused(site):
    with httpx.Client(base_url=site.base, timeout=30) as client:
        assert_traversal_refused(client, AUTH)


def test_disk_check_alerts_when_the_threshold_is_lowered(site):
    cron = site.host.ssh("cat /etc/cron.d/stowage").stdout
    job = next(line for line in cron.splitlines() if "disk-check --" in line)
    user, command = job.split(None, 6)[5:]
    assert user == "root"  # which drops to the service user itself (runuser)
    command = command.replace("--threshold 90", "--threshold 1")
    # The job as cron runs it: a plain shell of root's.
    ran = site.host.ssh(command, check=False)
    assert ran.returncode == 1, (command, ran.stdout, ran.stderr)  # 1: over the threshold
    log = site.host.ssh("tail -n 1 /var/log/stowage/disk-check.log").stdout
    assert log.startswith("ALERT /srv/media: "), log
    assert any("stowage disk alert" in alert["text"] for alert in site.alerts.received)


def test_the_service_user_cannot_make_root_write_through_a_log_symlink(site):
    """systemd opens the service's log (StandardOutput=append:) as root, and cron's shell
    (root's) appends the jobs' logs: the service user must not be able to swap a log for a
    symlink to a file of root's choosing (review F5: /etc/cron.d, /etc/sudoers.d)."""
    logs = "/var/log/stowage"
    for log in ("stowage.log", "disk-check.log", "planted.log"):
        swap = site.host.ssh(
            f"runuser -u stowage -- sh -c 'ln -sfn /etc/cron.d/zz-planted {logs}/{log}'",
            check=False,
        )
        assert swap.returncode != 0, swap.stdout
        assert "Permission denied" in swap.stderr
    listing = site.host.ssh(f"stat -c '%U %a %F' {logs} {logs}/stowage.log").stdout.split("\n")
    assert listing[0] == "root 750 directory", listing
    assert listing[1].endswith("regular file"), listing
    site.host.ssh("systemctl restart stowage")
    wait_healthy(site)
    assert site.host.ssh("test -e /etc/cron.d/zz-planted", check=False).returncode == 1


def test_the_service_comes_back_after_kill_9(site):
    before = site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip()
    site.host.ssh(f"kill -9 {before}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip()
        if after not in (before, "0") and active(site) == ["active"] * len(SERVICES):
            break
        time.sleep(0.5)
    else:
        pytest.fail("stowage did not come back after kill -9")
    wait_healthy(site)


def test_everything_comes_back_after_a_reboot(site):
    site.host.reboot()
    assert active(site) == ["active"] * len(SERVICES)
    wait_healthy(site)
    upload = site.uploads[0]
    served = httpx.get(upload["download_url"], timeout=30)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == upload["sha256"]


def test_rotating_the_signing_secret_invalidates_old_links(site):
    upload = site.uploads[0]
    old_secret = site.secret()
    rotated = converge(site.inventory, "-e", "runtime_signing_secret_rotate=true")
    assert rotated.returncode == 0, tail(rotated.output)
    new_secret = site.secret()
    assert new_secret != old_secret
    wait_healthy(site)
    assert httpx.get(upload["download_url"], timeout=30).status_code == 403
    with httpx.Client(base_url=site.base, timeout=30) as client:
        fresh = client.get(f"/api/upload/{upload['id']}", headers=AUTH)
        assert fresh.status_code == 200, fresh.text
        assert httpx.get(fresh.json()["download_url"], timeout=30).status_code == 200


def test_a_change_to_the_runtime_sources_reinstalls_the_wheel(site, tmp_path):
    """The playbook skips the wheel when the sources' hash is unchanged: a change must still
    reach the host (same version number, new code) and restart the service."""
    source = tmp_path / "runtime"
    shutil.copytree(
        ROOT / "runtime",
        source,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    mark = f"# e2e change {time.time_ns()}\n"
    with (source / "stowage/__init__.py").open("a") as init:
        init.write(mark)
    pid = site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip()
    changed = converge(site.inventory, "-e", f"runtime_source_dir={source}")
    assert changed.returncode == 0, tail(changed.output)
    assert changed.recap["changed"] > 0, tail(changed.output)
    installed = site.host.ssh(
        "cat /opt/stowage/venv/lib/python3*/site-packages/stowage/__init__.py"
    ).stdout
    assert mark in installed
    wait_healthy(site)
    assert site.host.ssh("systemctl show -p MainPID --value stowage").stdout.strip() != pid

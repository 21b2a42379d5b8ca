"""Render and start a real Nginx (Debian's package) with the Ansible role's Stowage site.

The site and its secret file come from ``ansible/roles/nginx/templates`` itself, so what the
runtime tests and benchmarks exercise is the configuration hosts get. Only the ``nginx.conf``
skeleton around it (loopback port, temp paths under a prefix, root user) is the test's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jinja2
import yaml

from stowage.signing import sign_file_url
from tests.helpers import (
    ROOT,
    ensure_debian_packages,
    free_port,
    running,
    wait_for_http,
    wait_for_socket,
)

ROLE = ROOT / "ansible" / "roles" / "nginx"
TEMPLATES = ROLE / "templates"
NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"
SKELETON = """\
{modules}user root;
worker_processes 2;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/stowage.conf;
{extra}
}}
"""


def nginx_binary() -> str:
    return ensure_debian_packages("nginx", binary="nginx")


def njs_module() -> str:
    """Debian's njs module (what the nginx role installs for /img/), installed if missing."""
    if not Path(NJS_MODULE).exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libnginx-mod-http-js"],
        ):
            subprocess.run(command, env=env, check=True, timeout=600)
    return NJS_MODULE


def role_template(relative: str, **variables) -> str:
    """Render one of the nginx role's templates with the role variables given."""
    env = jinja2.Environment(  # noqa: S701 - renders an nginx config, not HTML
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,  # Ansible's template module defaults
    )
    env.filters["comment"] = lambda text: f"#\n# {text}\n#"
    return env.get_template(relative).render(ansible_managed="rendered by tests", **variables)


def render_site(
    prefix: Path,
    *,
    port: int,
    socket: Path,
    root: Path,
    secret: str,
    body_limit_mb: int,
    extra: str = "",
    tls: tuple[str, Path, int] | None = None,
    site_vars: dict | None = None,
) -> Path:
    """Write ``prefix/nginx.conf`` around the role's site; check it with ``nginx -t``.

    ``extra`` is more configuration in the ``http`` block (another server, say). ``tls`` is
    (domain, directory with fullchain.pem and privkey.pem, HTTPS port): the site as it is
    once certbot has a certificate. ``site_vars`` override role variables (image variants).
    """
    secret_file = prefix / "stowage-secure-link.conf"
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) | {
        "__nginx_error_pages": role_vars["__nginx_error_pages"],
        "nginx_secure_link_secret": secret,
        "nginx_secure_link_secret_file": secret_file,
        "nginx_upstream_socket": socket,
        "nginx_access_log": prefix / "access.log",
        "nginx_client_max_body_size_mb": body_limit_mb,
        "nginx_open_file_cache_max": 10000,
        "nginx_open_file_cache_valid_seconds": 1,
        "nginx_files_cache_control": "private, max-age=3600",
        "nginx_storage_root": root,
        "nginx_listen_address": "127.0.0.1",
        "nginx_listen_port": port,
        "nginx_domain": tls[0] if tls else "",
        "nginx_acme_webroot": prefix / "acme",
        "__nginx_tls": bool(tls),
    }
    if tls:
        variables |= {"__nginx_certificate_dir": tls[1], "nginx_tls_port": tls[2]}
    variables |= {"nginx_njs_dir": prefix} | (site_vars or {})
    modules = ""
    if variables["nginx_image_variants"]:
        modules = f"load_module {njs_module()};\n"
        (prefix / "stowage_img.js").write_text(
            role_template("etc/nginx/njs/stowage_img.js.j2", **variables)
        )
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    secret_file.write_text(role_template("etc/nginx/stowage-secure-link.conf.j2", **variables))
    secret_file.chmod(0o600)
    (prefix / "stowage.conf").write_text(
        role_template("etc/nginx/sites-available/stowage.conf.j2", **variables)
    )
    conf = prefix / "nginx.conf"
    conf.write_text(SKELETON.format(prefix=prefix, extra=extra, modules=modules))
    check = subprocess.run(
        [nginx_binary(), "-t", "-c", str(conf)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    return conf


@dataclass
class Stack:
    client: httpx.Client
    base: str
    port: int
    root: Path
    socket: Path
    service: subprocess.Popen


@contextlib.contextmanager
def stowage_behind_nginx(
    tmp_path: Path,
    *,
    body_limit_mb: int = 64,
    site_vars: dict | None = None,
    extra: str = "",
    **env: str,
) -> Iterator[Stack]:
    """Nginx (the role's site) on a loopback port -> `stowage serve --uds`, behind_nginx on."""
    from tests.runtime.conftest import BIN, SECRET, service_env

    root, prefix = tmp_path / "media", tmp_path / "nginx"
    root.mkdir()
    prefix.mkdir()
    port, socket = free_port(), tmp_path / "stowage.sock"
    base = f"http://127.0.0.1:{port}"
    env = service_env(root, port, STOWAGE_BEHIND_NGINX="true", STOWAGE_PUBLIC_BASE_URL=base, **env)
    conf = render_site(
        prefix,
        port=port,
        socket=socket,
        root=root,
        secret=SECRET,
        body_limit_mb=body_limit_mb,
        site_vars=site_vars,
        extra=extra,
    )
    with running(
        [str(BIN / "stowage"), "serve", "--uds", str(socket)], env=env, log=tmp_path / "serve.log"
    ) as service:
        wait_for_socket(socket)
        with running(
            [nginx_binary(), "-c", str(conf)],
            log=tmp_path / "nginx.log",
            ready_url=f"{base}/healthz",
        ):
            wait_for_http(f"{base}/healthz")
            with httpx.Client(base_url=base, timeout=60) as client:
                yield Stack(client, base, port, root, socket, service)


# --- What a viewer and an API client see through the Stowage site: shared by the runtime
# tests (Nginx started here) and the end-to-end test (Nginx on a converged host). ------------


def assert_signed_downloads(base: str, upload: dict, data: bytes, secret: str) -> None:
    """A signed link serves the file (200, ranges 206); tampered 403; expired 410."""
    url = upload["download_url"]
    assert url.startswith(base + "/files/"), url
    ok = httpx.get(url)
    assert ok.status_code == 200
    assert hashlib.sha256(ok.content).hexdigest() == upload["sha256"]
    assert ok.headers["server"] == "nginx"
    assert ok.headers["cache-control"] == "private, max-age=3600"
    assert ok.headers["x-content-type-options"] == "nosniff"

    ranged = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]

    tampered = url.replace(urlsplit(url).query.split("md5=")[1][:22], "A" * 22)
    assert httpx.get(tampered).status_code == 403
    assert httpx.get(url.replace(upload["id"], "0" * 32)).status_code == 403
    expired = sign_file_url(base, upload["key"], secret, ttl=-5)
    assert httpx.get(expired).status_code == 410
    assert httpx.get(base + "/files/" + upload["key"]).status_code == 403


def assert_traversal_refused(client, headers: dict) -> None:
    """Paths that climb out of the media root or into its internals get a 4xx, no file."""
    for path in (
        "/files/../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/.stowage/catalog.db",
        "/api/files/..%2F..%2Fetc%2Fpasswd",
        "/_stowage_internal/.stowage/catalog.db",
    ):
        response = client.get(path, headers=headers)
        assert 400 <= response.status_code < 500, path
        assert b"root:" not in response.content
        assert b"SQLite" not in response.content

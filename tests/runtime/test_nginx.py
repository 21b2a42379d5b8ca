"""Real Nginx (Debian's package) in front of `stowage serve` on a unix socket."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import free_port, running, wait_for_http
from tests.runtime.conftest import SECRET, image_bytes, mp4_bytes
from tests.runtime.nginx import (
    assert_signed_downloads,
    assert_traversal_refused,
    nginx_binary,
    render_site,
    stowage_behind_nginx,
)

pytestmark = pytest.mark.needs_root  # Nginx from apt, run as root by its config


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    return nginx_binary()


@pytest.fixture
def stack(tmp_path, nginx_bin):
    """Nginx on a loopback port -> stowage serve --uds, behind_nginx on."""
    with stowage_behind_nginx(tmp_path) as running_stack:
        yield {
            "client": running_stack.client,
            "base": running_stack.base,
            "root": running_stack.root,
            "socket": running_stack.socket,
        }


AUTH = {"Authorization": "Bearer test-token-0123456789abcdef"}


def test_upload_through_nginx_and_signed_downloads(stack):
    client = stack["client"]
    data = mp4_bytes(3 * 1024 * 1024)
    response = client.post("/api/upload/video", files={"file": ("clip.mp4", data)}, headers=AUTH)
    assert response.status_code == 201, response.text
    assert_signed_downloads(stack["base"], response.json(), data, SECRET)


def test_api_downloads_are_handed_to_nginx(stack):
    client = stack["client"]
    data = image_bytes("PNG", size=(300, 200))
    key = client.post("/api/upload/image", files={"file": ("p.png", data)}, headers=AUTH).json()[
        "key"
    ]

    through_nginx = client.get(f"/api/files/{key}", headers=AUTH)
    assert through_nginx.status_code == 200
    assert through_nginx.content == data
    assert "x-accel-redirect" not in through_nginx.headers
    ranged = client.get(f"/api/files/{key}", headers=AUTH | {"Range": "bytes=0-7"})
    assert (ranged.status_code, ranged.content) == (206, data[:8])

    # Straight to the service: it answers with the redirect header and no body at all.
    transport = httpx.HTTPTransport(uds=str(stack["socket"]))
    with httpx.Client(transport=transport, base_url="http://stowage") as direct:
        handed = direct.get(f"/api/files/{key}", headers=AUTH)
    assert handed.headers["x-accel-redirect"] == f"/_stowage_internal/{key}"
    assert handed.content == b""

    assert client.get(f"/_stowage_internal/{key}").status_code == 404


def test_internal_files_and_traversal_are_refused(stack):
    assert_traversal_refused(stack["client"], AUTH)


def test_the_tls_site_redirects_and_serves_over_https(tmp_path, nginx_bin):
    """The site once certbot has a certificate (a self-signed one here): HTTP answers the
    ACME challenge and redirects everything else; HTTPS carries HSTS and the same checks."""
    import subprocess

    certs, root, prefix = tmp_path / "certs", tmp_path / "media", tmp_path / "nginx"
    for directory in (certs, root, prefix / "acme" / ".well-known" / "acme-challenge"):
        directory.mkdir(parents=True)
    (prefix / "acme/.well-known/acme-challenge/token").write_text("proof")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=media.example.test"),
            *("-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")),
        ],
        check=True,
        capture_output=True,
    )
    port, tls_port = free_port(), free_port()
    conf = render_site(
        prefix,
        port=port,
        socket=tmp_path / "absent.sock",
        root=root,
        secret=SECRET,
        body_limit_mb=1,
        tls=("media.example.test", certs, tls_port),
    )
    base, secure = f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}"
    with running([nginx_bin, "-c", str(conf)], log=tmp_path / "nginx.log"):
        wait_for_http(f"{base}/.well-known/acme-challenge/token")
        challenge = httpx.get(f"{base}/.well-known/acme-challenge/token")
        assert (challenge.status_code, challenge.text) == (200, "proof")
        redirect = httpx.get(f"{base}/files/a.jpg?x=1", headers={"Host": "media.example.test"})
        assert redirect.status_code == 301
        assert redirect.headers["location"] == "https://media.example.test/files/a.jpg?x=1"
        with httpx.Client(verify=False) as client:  # noqa: S501 - self-signed test certificate
            unsigned = client.get(f"{secure}/files/a.jpg")
        assert unsigned.status_code == 403
        assert unsigned.headers["strict-transport-security"] == "max-age=63072000"

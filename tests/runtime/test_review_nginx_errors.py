"""Review F14: every error Nginx answers itself is the JSON error contract, typed
application/json with nosniff, whatever the requested file's extension."""

from __future__ import annotations

import socket

import pytest

from stowage.signing import sign_file_url
from tests.runtime.conftest import SECRET, image_bytes
from tests.runtime.nginx import nginx_binary, stowage_behind_nginx

pytestmark = pytest.mark.needs_root

AUTH = {"Authorization": "Bearer test-token-0123456789abcdef"}


@pytest.fixture
def stack(tmp_path):
    nginx_binary()
    with stowage_behind_nginx(tmp_path, body_limit_mb=1) as running_stack:
        yield running_stack


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    # A 416 keeps the media location's headers and gains the server's: "nosniff, nosniff",
    # which browsers read as nosniff (Fetch takes the first value).
    assert response.headers["x-content-type-options"].split(",")[0] == "nosniff"
    # The review found Nginx's own errors without the media policy the service's carry.
    assert "default-src 'none'" in response.headers.get("content-security-policy", "")
    assert response.json()["error"] == code


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes httpx would refuse to send; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_errors_under_files_are_json_whatever_the_extension(stack):
    client, base = stack.client, stack.base
    key = client.post(
        "/api/upload/image", files={"file": ("p.png", image_bytes())}, headers=AUTH
    ).json()["key"]
    signed = sign_file_url(base, key, SECRET, ttl=300)
    assert client.get(signed).headers["content-type"] == "image/png"

    assert_json_error(client.get(f"/files/{key}"), 403, "forbidden")
    assert_json_error(client.get(sign_file_url(base, key, SECRET, ttl=-5)), 410, "expired")
    missing = key.replace(".png", "-gone.png")
    assert_json_error(client.get(sign_file_url(base, missing, SECRET, ttl=300)), 404, "not_found")
    assert_json_error(client.post(signed, content=b"x"), 405, "method_not_allowed")
    assert_json_error(
        client.get(signed, headers={"Range": "bytes=999999-"}), 416, "range_not_satisfiable"
    )
    assert_json_error(client.get("/elsewhere/x.html"), 404, "not_found")
    assert_json_error(
        client.post("/api/upload/transcript-text", content=b"x" * 2_000_000, headers=AUTH),
        413,
        "too_large",
    )


def test_nginx_bad_requests_are_json_not_html(stack):
    for request in (
        b"GET /files/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /files/a.png HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n",
        b"GET /x.png HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 20000 + b"\r\n\r\n",
    ):
        status, headers, body = raw_request(stack.port, request)
        assert status == 400, (request[:40], body[:200])
        assert headers["content-type"] == "application/json", headers
        assert headers["x-content-type-options"] == "nosniff"
        assert body.startswith(b'{"error":"bad_request"'), body[:200]


def test_service_down_is_json(stack):
    stack.service.terminate()
    stack.service.wait(timeout=30)
    assert_json_error(stack.client.get("/api/upload", headers=AUTH), 502, "unavailable")

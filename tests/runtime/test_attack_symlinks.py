"""Attack: symbolic links under the media root that point out of it (or into Stowage's own
catalog), placed on disk by anyone with a foothold on the host. Neither the service nor the
role's Nginx follows them; a regular file beside them is served (the control)."""

from __future__ import annotations

import httpx
import pytest

from stowage.signing import sign_file_url
from tests.runtime.conftest import SECRET, TOKEN
from tests.runtime.nginx import nginx_binary, stowage_behind_nginx

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENTINEL = b"outside-the-media-root-sentinel"
REGULAR = ("images/2026/01/01/real.jpg", b"\xff\xd8\xff regular file")
LINKED_KEYS = (
    "images/2026/01/01/link.jpg",  # file link to a file outside the root
    "images/outside/secret.jpg",  # directory link out of the root
    "images/2026/01/01/catalog.jpg",  # file link into the catalog (inside the root)
    "images/2026/01/01/passwd.jpg",  # /etc/passwd itself
)


def plant_links(root, outside) -> None:
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(SENTINEL)
    day = root / "images/2026/01/01"
    day.mkdir(parents=True)
    (day / "real.jpg").write_bytes(REGULAR[1])
    (day / "link.jpg").symlink_to(outside / "secret.jpg")
    (root / "images/outside").symlink_to(outside, target_is_directory=True)
    (root / ".stowage").mkdir(exist_ok=True)
    (root / ".stowage/catalog.db").touch()
    (day / "catalog.jpg").symlink_to(root / ".stowage/catalog.db")
    (day / "passwd.jpg").symlink_to("/etc/passwd")


def assert_refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert SENTINEL not in response.content
    assert b"root:" not in response.content


def test_the_service_never_follows_a_link(serve, tmp_path):
    api = serve()
    plant_links(api.root, tmp_path / "outside")
    regular = api.client.get(f"/api/files/{REGULAR[0]}", headers=AUTH)
    assert (regular.status_code, regular.content) == (200, REGULAR[1])
    for key in LINKED_KEYS:
        assert_refused(api.client.get(f"/api/files/{key}", headers=AUTH))
        assert_refused(api.client.head(f"/api/files/{key}", headers=AUTH))
        assert_refused(httpx.get(sign_file_url(api.url, key, SECRET, ttl=60)))
    listed = api.client.get("/api/upload", headers=AUTH)
    assert listed.status_code == 200


@pytest.fixture(scope="module")
def nginx_bin():
    return nginx_binary()


@pytest.mark.needs_root  # Nginx from apt, run as root by its config
def test_nginx_and_the_service_behind_it_never_follow_a_link(tmp_path, nginx_bin):
    with stowage_behind_nginx(tmp_path) as stack:
        plant_links(stack.root, tmp_path / "outside")
        regular = httpx.get(sign_file_url(stack.base, REGULAR[0], SECRET, ttl=60))
        assert (regular.status_code, regular.content) == (200, REGULAR[1])
        via_api = stack.client.get(f"/api/files/{REGULAR[0]}", headers=AUTH)
        assert (via_api.status_code, via_api.content) == (200, REGULAR[1])
        for key in LINKED_KEYS:
            signed = httpx.get(sign_file_url(stack.base, key, SECRET, ttl=60))
            assert signed.headers["server"] == "nginx"
            assert_refused(signed)
            assert_refused(stack.client.get(f"/api/files/{key}", headers=AUTH))

"""The outside review of image variants on the host, one test per finding, through Nginx from
the role's template in front of the service: non-canonical spellings rendered, a key segment
too long for a file name answered 500, a HEAD on a miss answered 405, /img/ refusals in plain
text, a newline in a key answered 404."""

from __future__ import annotations

import time

import httpx
import pytest

from stowage.signing import sign_file_url
from tests.runtime.conftest import SECRET
from tests.runtime.test_host_variants import AUTH, host, photo, upload, variant_files
from tests.runtime.test_review_nginx_errors import raw_request

pytestmark = pytest.mark.needs_root


@pytest.fixture
def stack(tmp_path):
    with host(tmp_path) as running_stack:
        yield running_stack


def assert_json_refusal(response, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_only_the_canonical_spelling_of_a_variant_is_rendered(stack):
    key = upload(stack, photo((900, 600)))["key"]
    top, rest = key.split("/", 1)
    for spelling in (
        f"/variants/%69{top[1:]}/{rest}/640x0.webp",  # an escaped unreserved letter
        f"/variants/{top}%2F{rest}/640x0.webp",  # an escaped slash
        f"/variants/{top}/./{rest}/640x0.webp",  # sent as written (httpx would normalize)
        f"/variants/{top}/x/../{rest}/640x0.webp",
    ):
        request = f"GET {spelling} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, headers, _ = raw_request(stack.port, request.encode())
        assert status in (400, 404), (spelling, status)
        assert headers["content-type"] == "application/json", spelling
    assert variant_files(stack.root) == []
    assert stack.client.get(f"/variants/{key}/640x0.webp").status_code == 200


def test_a_key_segment_longer_than_a_file_name_is_a_4xx(stack):
    name = "b" * 300 + ".jpg"
    for path in (f"/variants/images/{name}/640x0.webp", f"/img/images/{name}?w=640"):
        assert_json_refusal(stack.client.get(path))
    response = stack.client.get(f"/api/files/images/{name}", headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_key"


def test_head_on_a_variant_miss_is_answered_like_a_get(stack):
    key = upload(stack, photo((900, 600)))["key"]
    miss = stack.client.head(f"/variants/{key}/320x0.webp")
    assert miss.status_code == 200, miss.headers
    assert miss.headers["content-type"] == "image/webp"
    hit = stack.client.head(f"/variants/{key}/320x0.webp")
    assert hit.status_code == 200
    assert stack.client.head(f"/img/{key}?w=640&fmt=webp").status_code == 200


@pytest.mark.parametrize(
    "query", ["w=abc", "w=640&fmt=gif", "w=640&fit=crop", "w=640&h=640&fit=cover&fmt=png"]
)
def test_img_refusals_are_the_json_error_contract(stack, query):
    key = upload(stack, photo((900, 600)))["key"]
    assert_json_refusal(stack.client.get(f"/img/{key}?{query}"))


@pytest.mark.parametrize("path", ["/img/images/a%25b.jpg?w=640", "/img/images/a%C3.jpg?w=640"])
def test_the_njs_wrappers_own_refusals_are_json_with_the_policy(stack, path):
    assert_json_refusal(stack.client.get(path))


def test_a_newline_in_a_key_is_a_bad_key_not_a_missing_route(stack):
    response = stack.client.get("/variants/images/a%0ab.jpg/320x0.webp")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_key"


def test_a_deleted_upload_is_not_served_from_nginx_afterwards(stack):
    """The second review: Nginx's open-file cache kept serving a deleted variant and a deleted
    original (signed /files/ link) for up to 30 s after the DELETE answered 204."""
    record = upload(stack, photo((900, 600)))
    variant = f"/variants/{record['key']}/320x0.webp"
    link = sign_file_url(stack.base, record["key"], SECRET, ttl=300)
    for _ in range(3):  # served from disk, more than once
        assert stack.client.get(variant).status_code == 200
        assert httpx.get(link).status_code == 200
    assert stack.client.delete(f"/api/upload/{record['id']}", headers=AUTH).status_code == 204
    # At most nginx_open_file_cache_valid_seconds (1 s in the rendered site) later, never
    # Nginx's usual 30 s.
    deadline = time.monotonic() + 2.5
    while httpx.get(link).status_code != 404 or stack.client.get(variant).status_code != 404:
        assert time.monotonic() < deadline, "a deleted upload is still served"
        time.sleep(0.1)
    assert httpx.get(link).status_code == 404
    assert stack.client.get(variant).status_code == 404


def test_keys_with_sub_delimiters_and_non_ascii_have_one_spelling(stack):
    """The second review: x%21y.jpg beside x!y.jpg, caf%c3%a9 beside caf%C3%A9 rendered."""
    (stack.root / "images" / "r2").mkdir(parents=True)
    for name in ("x!y.jpg", "café.jpg"):
        (stack.root / "images" / "r2" / name).write_bytes(photo((900, 600)))
    for canonical, other in (
        ("x!y.jpg", "x%21y.jpg"),
        ("caf%C3%A9.jpg", "caf%c3%a9.jpg"),
    ):
        for uri in ("/variants/images/r2/{}/640x0.webp", "/img/images/r2/{}?w=640"):
            assert_json_refusal(stack.client.get(uri.format(other)))
            assert stack.client.get(uri.format(canonical)).status_code == 200, canonical
    assert sorted(p.name for p in (stack.root / "variants" / "images" / "r2").iterdir()) == [
        "café.jpg",
        "x!y.jpg",
    ]

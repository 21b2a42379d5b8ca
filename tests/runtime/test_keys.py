"""The one key validator, and the key layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowage.errors import InvalidKey
from stowage.keys import new_key, new_upload_id, permanent_key, top_prefix, validate_key


@pytest.mark.parametrize(
    "key",
    [
        "images/a.png",
        "videos/2026/01/01/x.mp4",
        "a",
        "café/☕.jpg",
        "with space+plus%25.txt",
        "k" * 1024,
    ],
)
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/abs", "relative"),
        ("a/../b", "'..'"),
        ("./a", "'.'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\b", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("a\u0085b", "control"),
        ("e\u0301", "NFC"),
        ("\ud800", "UTF-8"),
        ("é" * 513, "1024"),
        (b"bytes", "string"),
    ],
)
def test_invalid_keys(key, reason):
    with pytest.raises(InvalidKey, match=reason):
        validate_key(key)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=80))
def test_a_valid_key_never_leaves_its_root(key):
    try:
        validate_key(key)
    except InvalidKey:
        return
    parts = key.split("/")
    assert ".." not in parts
    assert not key.startswith("/")
    import posixpath

    assert not posixpath.normpath(key).startswith("..")


def test_layout():
    now = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    upload_id = new_upload_id()
    assert len(upload_id) == 32
    key = new_key("image", upload_id, ".jpg", is_temp=False, now=now)
    assert key == f"images/2026/03/04/{upload_id}.jpg"
    temp = new_key("video", upload_id, ".mp4", is_temp=True, now=now)
    assert temp == f"temp/videos/2026/03/04/{upload_id}.mp4"
    assert permanent_key(temp) == f"videos/2026/03/04/{upload_id}.mp4"
    assert top_prefix(temp) == "temp/videos/"
    assert top_prefix(key) == "images/"
    with pytest.raises(InvalidKey):
        permanent_key(key)


def test_upload_ids_sort_by_time():
    import time

    ids = []
    for _ in range(20):
        ids.append(new_upload_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len({new_upload_id() for _ in range(1000)}) == 1000

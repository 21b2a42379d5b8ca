"""Storage keys: the one place that decides whether a key is valid, and how new keys look.

Every entry point (API, CLI, migration, edge handler) validates through :func:`validate_key`.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote

from stowage.errors import InvalidKey

MAX_KEY_BYTES = 1024
PERMANENT_PREFIXES = ("videos/", "images/", "transcripts/", "processed/")
TEMP_PREFIX = "temp/"
VARIANTS_PREFIX = "variants/"
# Stowage's own state and spool directories on local disk are never object keys.
RESERVED_SEGMENTS = (".stowage", ".stowage-tmp")

# Upload kinds and the permanent prefix each one lands under.
KIND_PREFIX = {"video": "videos/", "image": "images/", "transcript": "transcripts/"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid storage key, else raise :class:`InvalidKey`.

    Valid: a non-empty relative path of NFC-normalized UTF-8, at most 1024 bytes, with no
    ``.``/``..`` or empty segments, no backslash, NUL or control character.
    """
    if not isinstance(key, str):
        raise InvalidKey("key must be a string")
    if not key:
        raise InvalidKey("key is empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey("key is not valid UTF-8 (lone surrogate)") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is {len(encoded)} bytes; the limit is {MAX_KEY_BYTES}")
    if unicodedata.normalize("NFC", key) != key:
        raise InvalidKey("key is not NFC-normalized")
    if _CONTROL.search(key):
        raise InvalidKey("key contains a NUL or control character")
    if "\\" in key:
        raise InvalidKey("key contains a backslash")
    if key.startswith("/"):
        raise InvalidKey("key must be relative (no leading '/')")
    if key.split("/", 1)[0] in RESERVED_SEGMENTS:
        raise InvalidKey(f"keys under {key.split('/', 1)[0]}/ are reserved for Stowage")
    for segment in key.split("/"):
        if segment in (".", ".."):
            raise InvalidKey("key contains a '.' or '..' segment")
        if segment == "":
            raise InvalidKey("key contains an empty segment ('//' or a trailing '/')")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a valid key optionally ending in '/'."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def new_upload_id() -> str:
    """32 hex characters: a millisecond timestamp then 80 random bits, so ids sort by time."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def new_key(kind: str, upload_id: str, extension: str, *, is_temp: bool, now: datetime) -> str:
    """``{prefix}{yyyy}/{mm}/{dd}/{upload_id}{.ext}``; temp uploads under ``temp/{prefix}``."""
    prefix = KIND_PREFIX[kind]
    if is_temp:
        prefix = TEMP_PREFIX + prefix
    now = now.astimezone(UTC)
    return validate_key(f"{prefix}{now:%Y/%m/%d}/{upload_id}{extension}")


def permanent_key(temp_key: str) -> str:
    """The key a temp object gets when it is moved to permanent storage."""
    validate_key(temp_key)
    if not temp_key.startswith(TEMP_PREFIX):
        raise InvalidKey("not a temp key")
    return temp_key.removeprefix(TEMP_PREFIX)


def top_prefix(key: str) -> str:
    """``images/`` for ``images/2026/...``; ``temp/images/`` for temp keys."""
    parts = key.split("/")
    if parts[0] + "/" == TEMP_PREFIX and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}/"
    return parts[0] + "/" if len(parts) > 1 else ""


# Characters a URL path may hold as they are: left unescaped, so a key has one spelling.
URL_PATH_SAFE = "/!$&'()*+,;=:@"


def url_path(key: str) -> str:
    """The one spelling of ``key`` in a /variants/ or /img/ URL (upper-case escapes for what
    must be escaped, nothing else), which the edge function and the image core accept."""
    return quote(key, safe=URL_PATH_SAFE)

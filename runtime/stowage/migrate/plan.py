"""Planning: inventory both sides and decide one action per source name.

Every name found at the source ends in the plan: copied, skipped as identical, a conflict,
or reported as a name that cannot be a key (with ``--normalize-names nfc``, NFD names are
planned under their NFC key, and two names meeting there are a conflict).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stowage.backends.base import Backend, ObjectInfo, Unlisted
from stowage.errors import InvalidKey
from stowage.keys import validate_key
from stowage.migrate.attributes import parse_cache_rules
from stowage.migrate.manifest import (
    CONFLICT,
    COPY,
    INVALID,
    OVERWRITE,
    SKIP,
    SKIPPED,
    Entry,
    Manifest,
)

NORMALIZE_POLICIES = ("none", "nfc")


@dataclass
class Options:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    workers: int = 8
    bwlimit: int | None = None
    overwrite: bool = False
    checksum: bool = False
    delete_source: bool = False
    catalog_url: str | None = None
    normalize_names: str = "none"
    cache_control: list[str] = field(default_factory=list)
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.normalize_names not in NORMALIZE_POLICIES:
            raise ValueError(f"--normalize-names must be one of {', '.join(NORMALIZE_POLICIES)}")
        if self.delete_source and self.normalize_names != "none":
            # A rollback could only write the source back under its normalized name.
            raise ValueError("--delete-source cannot be combined with --normalize-names")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.catalog_url is not None and not re.fullmatch(
            r"sqlite:///.+|dynamodb://[A-Za-z0-9_.-]{3,255}", self.catalog_url
        ):
            raise ValueError(
                f"--catalog {self.catalog_url!r}: expected sqlite:///PATH or dynamodb://TABLE"
            )
        self.cache_rules = parse_cache_rules(self.cache_control)

    def selects(self, key: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(key, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self.exclude)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("quiet", "cache_rules")}


def new_run_id() -> str:
    """Sortable by start time: ``20261121T142115123Z-1a2b3c`` (milliseconds, random tail)."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def plan(
    manifest: Manifest,
    source: Backend,
    destination: Backend,
    options: Options,
    key_prefix: str = "",
) -> None:
    """One entry per selected source name, written into ``manifest`` as the source is listed
    (a batch at a time: the plan is never held in memory). ``key_prefix`` is what the
    destination puts before each key: the whole key must be valid there too."""
    batch: list[Entry] = []
    for found in source.scan(""):
        if isinstance(found, Unlisted):
            entry = _unlisted(found, options)
        else:
            entry = _new_entry(found.key, found)
        if not options.selects(entry.key):
            continue
        if entry.action == COPY and key_prefix:
            try:
                validate_key(key_prefix + entry.key)
            except InvalidKey as exc:
                entry.action, entry.state = CONFLICT, SKIPPED
                entry.reason = f"the destination key {key_prefix}{entry.key} is invalid: {exc}"
        batch.append(entry)
        if len(batch) >= BATCH:
            manifest.add(batch)
            batch = []
    manifest.add(batch)
    for key in manifest.shared_keys():
        manifest.add(_collisions(manifest.with_keys([key])))
    _refuse(manifest, destination.cannot_hold(manifest.keys()))
    batch_of_existing: list[ObjectInfo] = []
    for info in destination.list(""):
        if options.selects(info.key):
            batch_of_existing.append(info)
        if len(batch_of_existing) >= BATCH:
            _compare(manifest, source, destination, batch_of_existing, options)
            batch_of_existing = []
    _compare(manifest, source, destination, batch_of_existing, options)


BATCH = 1000


def _refuse(manifest: Manifest, refused: Iterator[tuple[str, str]]) -> None:
    for key, reason in refused:
        entries = manifest.with_keys([key], COPY)
        for entry in entries:
            entry.action, entry.state, entry.reason = CONFLICT, SKIPPED, reason
        manifest.add(entries)


def _compare(
    manifest: Manifest,
    source: Backend,
    destination: Backend,
    existing: list[ObjectInfo],
    options: Options,
) -> None:
    """Decide the planned copies whose key the destination already holds."""
    by_key = {info.key: info for info in existing}
    entries = manifest.with_keys(by_key, COPY)
    for entry in entries:
        _decide(entry, source, destination, by_key[entry.key], options)
    manifest.add(entries)


def _new_entry(key: str, info: ObjectInfo, name: str | None = None) -> Entry:
    return Entry(
        key=key,
        action=COPY,
        size=info.size,
        src_modified=info.modified.isoformat(),
        src_version=info.version_id,
        src_sha256=info.sha256,
        src_name=name,
    )


def _unlisted(found: Unlisted, options: Options) -> Entry:
    if options.normalize_names == "nfc" and found.nfc_key:
        entry = Entry(key=found.nfc_key, action=COPY, size=found.size, src_name=found.name)
        entry.reason = f"renamed to its NFC form ({found.reason})"
        return entry
    hint = " (--normalize-names nfc would rename it)" if found.nfc_key else ""
    name = shown(found.name)
    return Entry(
        key=name,
        action=INVALID,
        size=found.size,
        state=SKIPPED,
        reason=f"cannot be a key: {found.reason}{hint}",
        src_name=name,
    )


def shown(name: str) -> str:
    """The name as reports show it: itself if printable UTF-8, else its Python repr."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return repr(name)
    return name if name.isprintable() else repr(name)


def _collisions(group: list[Entry]) -> list[Entry]:
    """Source names planned under one key: the renamed ones are conflicts."""
    for entry in group:
        if entry.src_name and entry.action == COPY:
            entry.action, entry.state = CONFLICT, SKIPPED
            others = ", ".join(repr(e.name) for e in group if e is not entry)
            entry.reason = f"{entry.name!r} and {others} are both {entry.key!r} once normalized"
    return group


def _decide(
    entry: Entry, source: Backend, destination: Backend, dst: ObjectInfo, options: Options
) -> None:
    src_sha = None if options.checksum else entry.src_sha256
    src_sha = src_sha or (None if options.checksum else source.head_listed(entry.name).sha256)
    src_sha = src_sha or listed_sha256(source, entry.name)
    entry.src_sha256 = src_sha
    dst_full = dst if dst.sha256 else destination.head(dst.key)
    dst_sha = dst_full.sha256
    if options.checksum or not dst_sha:
        dst_sha = destination.sha256(dst.key)
    entry.dst_prev_version = dst_full.version_id
    entry.dst_prev_sha256 = dst_sha
    if dst.size == entry.size and dst_sha == src_sha:
        entry.action, entry.state = SKIP, SKIPPED
    elif dst_full.sha256 == src_sha:
        entry.action, entry.reason = OVERWRITE, "repair: destination claims this source's hash"
    elif options.overwrite and not entry.src_name:
        entry.action, entry.reason = OVERWRITE, "--overwrite"
    else:
        entry.action, entry.state = CONFLICT, SKIPPED
        entry.reason = "destination differs; rerun with --overwrite to replace it"


def listed_sha256(source: Backend, name: str) -> str:
    """SHA-256 of a source object by its listed name, read in full."""
    digest = hashlib.sha256()
    for chunk in source.open_listed(name)[1]:
        digest.update(chunk)
    return digest.hexdigest()

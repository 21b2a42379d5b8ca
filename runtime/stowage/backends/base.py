"""The backend interface every storage backend implements, and its shared types.

Contract (checked by tests/runtime/test_backend_contract.py for every backend):
- every public method validates its key first (:class:`~stowage.errors.InvalidKey`);
- a missing object raises ``FileNotFoundError``; a full disk :class:`~stowage.errors.DiskFull`;
- a write is atomic: readers see the old object or the whole new one, never a part;
- bytes stream in and out in chunks, never a whole object in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from stowage.errors import BadRequest, Conflict, InvalidKey, StowageError
from stowage.keys import VARIANTS_PREFIX, validate_key, validate_prefix

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    sha256: str | None = None
    content_type: str | None = None
    version_id: str | None = None
    backend: str | None = None
    cache_control: str | None = None
    metadata: dict[str, str] | None = None  # user metadata, besides Stowage's own sha256
    kms_key_id: str | None = None


@dataclass(frozen=True)
class ObjectAttributes:
    """What a copy carries over besides bytes and content type."""

    cache_control: str | None = None
    metadata: dict[str, str] | None = None
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Unlisted:
    """A name found in a location that cannot be a key (reported by migrations, never
    skipped silently)."""

    name: str
    reason: str
    size: int = 0
    nfc_key: str | None = None  # the key it would be once NFC-normalized, if that is valid


# What ``undo_write`` did: the run's write was removed (nothing was there before), the
# replaced object restored, or the object changed since the run and was left alone.
REMOVED, RESTORED, CHANGED_SINCE = "removed", "restored", "changed-since"

OnBytes = Callable[[int], None]


class ChecksumMismatch(Exception):
    """The bytes read did not hash to what the source promised; nothing was kept."""


class AssembledDifferently(Conflict):
    """A concurrent completion of the same multipart upload already placed other bytes
    under the key (a part was re-sent in between); those stay, ours were discarded."""


def listed_name(name: str) -> str:
    """A name a migration may read or delete at its source: a valid key, or one that
    becomes valid once NFC-normalized (``--normalize-names nfc``)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey("name is not valid UTF-8") from None
    validate_key(unicodedata.normalize("NFC", name))
    return name


def classify(name: str, size: int) -> Unlisted | None:
    """``None`` if ``name`` is a valid key, else why not (and its NFC key, if that helps)."""
    try:
        validate_key(name)
        return None
    except InvalidKey as exc:
        reason = exc.detail
    try:
        nfc = validate_key(unicodedata.normalize("NFC", listed_name(name)))
    except InvalidKey:
        nfc = None
    return Unlisted(name, reason, size, nfc)


class Backend(ABC):
    """One place objects live. Implementations: ``local`` and ``s3``."""

    name: str

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        """Store the complete file at ``path`` (already hashed) under ``key``, consuming it."""

    @abstractmethod
    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        """Store everything read from ``stream`` under ``key``; the result carries the SHA-256
        of the bytes stored. With ``sha256`` given, a mismatch removes what was written and
        raises :class:`ChecksumMismatch`."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Facts about one object."""

    @abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive; ``None`` = to the end) of an object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object."""

    @abstractmethod
    def set_focal(self, key: str, focal: str | None) -> None:
        """Keep the original's focal point where its variants are made, and retire them."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def move(self, source: str, destination: str) -> ObjectInfo:
        """Rename ``source`` to ``destination`` (which must not exist)."""

    # -- multipart uploads: one contract, the client PUTs numbered parts then completes --

    @abstractmethod
    def start_multipart(self, key: str, *, content_type: str | None) -> str:
        """Begin a multipart upload to ``key``; returns the backend's upload handle."""

    @abstractmethod
    def part_url(self, key: str, handle: str, number: int, *, expires_in: int) -> str | None:
        """A URL the client PUTs part ``number`` to, or ``None`` if the service receives it."""

    def receive_part(self, handle: str, number: int, stream: BinaryIO, *, limit: int) -> int:
        """Store part ``number`` sent to the service (when ``part_url`` is ``None``)."""
        raise NotImplementedError(f"the {self.name} backend receives parts directly")

    @abstractmethod
    def complete_multipart(
        self, key: str, handle: str, *, parts: int, content_type: str | None = None
    ) -> ObjectInfo:
        """Assemble parts 1..``parts`` into the object; the result carries its SHA-256."""

    @abstractmethod
    def abort_multipart(self, key: str, handle: str) -> None:
        """Discard every part received so far."""

    # -- what the service asks of whichever backend it runs on -------------------------

    def spool_root(self) -> Path | None:
        """The media root whose filesystem spool files belong on (so that storing one is a
        rename), or ``None`` if the backend keeps nothing on local disk."""
        return None

    def side(self, name: str) -> Backend:
        """The backend that holds objects catalogued as living on ``name``."""
        if name != self.name:
            raise BadRequest(f"no {name} backend is configured")
        return self

    def presign_download(self, key: str, *, expires_in: int) -> str | None:
        """A download URL the backend signs itself, or ``None`` if the service signs it
        (files the host's Nginx serves)."""
        return None

    def open_object(self, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's facts and its bytes, read consistently (backends may do it in one
        request)."""
        return self.head(key), self.open_range(key)

    # -- capabilities a migration uses; defaults fit a backend with no special powers ---

    checksum_part_size: int | None = None
    """Part size of the backend's own stored checksum (S3's composite), if it keeps one."""

    def check_location(self, *, as_destination: bool = False) -> None:
        """Raise :class:`~stowage.errors.NotFound` (or ``Forbidden``) if the location itself
        (bucket, directory) is missing or unreachable (a destination directory is created
        by its first write)."""
        return None

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo | Unlisted]:
        """Like :meth:`list`, but names that cannot be keys are yielded as :class:`Unlisted`
        instead of being left out."""
        for info in self.list(prefix):
            yield classify(info.key, info.size) or info

    def scan_current(self) -> Iterator[ObjectInfo | Unlisted]:
        """Like :meth:`scan`, with the version id of each current object where the backend
        keeps versions (a resumed migration tells a changed source by it)."""
        return self.scan("")

    def cannot_hold(self, keys: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(key, reason) for the keys this backend could not store next to the others;
        ``keys`` come once each, in key order, and may be too many to hold."""
        return iter(())

    def open_listed(self, name: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """:meth:`open_object` by a name from :meth:`scan` (see :func:`listed_name`)."""
        return self.open_object(listed_name(name))

    def head_listed(self, name: str) -> ObjectInfo:
        return self.head(listed_name(name))

    def local_path(self, name: str) -> Path | None:
        """The file holding ``name`` if the backend is a disk a reader can open directly."""
        return None

    def head_local(self, name: str, path: Path) -> ObjectInfo:
        """:meth:`head_listed` of a name whose file :meth:`local_path` gave, without checking
        the path again."""
        return self.head_listed(name)

    def deferred_directory_syncs(self) -> contextlib.AbstractContextManager[None]:
        """Within it, a write's directory is made durable by :meth:`make_durable` instead
        of before the write returns (one fsync for the writers of a directory who need it at
        the same time); on leaving, anything still pending is synced. A backend whose writes
        are durable on return ignores it."""
        return contextlib.nullcontext()

    def make_durable(self, key: str) -> None:  # noqa: B027 - a capability most backends lack
        """Return once the write (or adoption) of ``key`` is durable (see above)."""

    def adopt(self, key: str) -> None:  # noqa: B027 - a capability most backends lack
        """An object an earlier, killed process wrote is taken as this run's write: make it
        as durable as one (it may have died between its rename and its directory's fsync)."""

    def write_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
        stored_checksum: str | None = None,
        on_bytes: OnBytes | None = None,
    ) -> ObjectInfo:
        """Store a copy of the file at ``path`` (which stays), already hashed to ``sha256``;
        ``on_bytes`` is told of every byte as it is transferred (it may block: a throttle)."""
        with open(path, "rb") as handle:
            return self.put_stream(
                key,
                _Counting(handle, on_bytes),
                content_type=content_type,
                sha256=sha256,
                attributes=attributes,
            )

    def verified_sha256(self, key: str, written: ObjectInfo) -> str:
        """The SHA-256 of what a write stored, established end to end: read back here; a
        backend that checked our checksum while storing overrides this."""
        return self.sha256(key)

    def keep_previous(self, key: str, backup_dir: Path) -> str | None:
        """Before ``key`` is overwritten: keep what it holds so a rollback can restore it.
        Returns where a copy was kept (``None`` if the backend keeps versions itself)."""
        raise StowageError(f"the {self.name} backend cannot keep {key} for a rollback")

    def undo_write(
        self,
        key: str,
        *,
        version_id: str | None,
        sha256: str,
        previous: str | None,
    ) -> str:
        """Undo one write of ``sha256`` (its ``version_id`` if versioned) and bring back what
        it replaced (``previous`` from :meth:`keep_previous`). An object changed since the
        write is left alone. Returns :data:`REMOVED`, :data:`RESTORED` or
        :data:`CHANGED_SINCE`."""
        try:
            current = self.sha256(key)
        except FileNotFoundError:
            return CHANGED_SINCE
        if current != sha256:
            return CHANGED_SINCE
        self.delete(key)
        return REMOVED

    def remove_source(self, name: str) -> str | None:
        """Delete a migrated source object; returns what :meth:`undelete` needs, if any."""
        self.delete(listed_name(name))
        return None

    def undelete(self, name: str, token: str | None) -> bool:
        """Bring back a source object removed by :meth:`remove_source` by the backend's own
        means; ``False`` if it cannot (then it is written back from the verified copy)."""
        return False

    def discard_debris(self, *, pids: list[int], keys: Container[str]) -> list[str]:
        """Remove what dead writers of a migration left behind (spool files of ``pids``,
        multipart uploads to ``keys``, which the run owns); returns what went."""
        return []

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except FileNotFoundError:
            return False
        return True

    def delete_variants(self, original_key: str) -> list[str]:
        """Delete every stored image variant of ``original_key`` (``variants/{key}/``, one
        directory per original by design); returns the keys removed."""
        try:
            prefix = validate_prefix(f"{VARIANTS_PREFIX}{validate_key(original_key)}/")
        except InvalidKey:
            return []  # too long to have variants at all
        removed = []
        for info in list(self.list(prefix)):
            with contextlib.suppress(FileNotFoundError):
                self.delete(info.key)
                removed.append(info.key)
        return removed

    def read_all(self, key: str) -> bytes:
        """Whole object in memory: for small objects and tests only."""
        return b"".join(self.open_range(key))

    def sha256(self, key: str) -> str:
        """SHA-256 of the stored bytes, computed by reading them back."""
        digest = hashlib.sha256()
        for chunk in self.open_range(key):
            digest.update(chunk)
        return digest.hexdigest()


class _Counting:
    def __init__(self, stream: BinaryIO, on_bytes: OnBytes | None) -> None:
        self._stream, self._on_bytes = stream, on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data and self._on_bytes:
            self._on_bytes(len(data))
        return data

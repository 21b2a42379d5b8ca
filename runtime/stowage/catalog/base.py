"""The catalog interface: what is stored where. SQLite on one host, DynamoDB on several.

Contract (tests/runtime/test_catalog_contract.py runs it against every implementation):
- ``add`` refuses a second row with the same id or key (:class:`~stowage.errors.Conflict`);
- ``get`` of an unknown id raises :class:`~stowage.errors.NotFound`;
- ``list`` pages in creation order within a top-level prefix with an opaque cursor;
- ``update`` and ``delete`` act only on the row as the caller last saw it (its key): a row a
  concurrent request moved meanwhile raises :class:`~stowage.errors.Conflict`, so no request
  deletes or overwrites a row it never read;
- ``commit_session`` ends a multipart session and adds its record in one atomic step.
"""

from __future__ import annotations

import base64
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from stowage.errors import BadRequest, Conflict, NotFound


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Record:
    id: str
    key: str
    size: int
    sha256: str
    content_type: str
    is_temp: bool
    backend: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    expires_at: datetime | None = None
    focal_point: tuple[float, float] | None = None  # (x, y) in 0-1: where cover crops centre

    def changed(self, **changes: Any) -> Record:
        return replace(self, updated_at=utcnow(), **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("created_at", "updated_at", "expires_at"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data


@dataclass(frozen=True)
class MultipartSession:
    id: str
    key: str
    handle: str
    backend: str
    kind: str
    content_type: str
    size: int
    part_size: int
    parts: int
    is_temp: bool
    filename: str | None
    created_at: datetime = field(default_factory=utcnow)


def session_to_json(session: MultipartSession) -> dict[str, Any]:
    return asdict(session) | {"created_at": session.created_at.isoformat()}


def session_from_json(body: dict[str, Any]) -> MultipartSession:
    return MultipartSession(**(body | {"created_at": datetime.fromisoformat(body["created_at"])}))


@dataclass(frozen=True)
class Stats:
    objects: int
    bytes: int
    temp_objects: int
    temp_bytes: int
    by_prefix: dict[str, dict[str, int]]
    by_backend: dict[str, dict[str, int]]


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


MAX_CURSOR_CHARS = 2048


def decode_cursor(cursor: str, *shape: type | tuple[type, ...]) -> list[Any]:
    """The list ``encode_cursor`` made, checked against ``shape`` (one type per element):
    anything else a client sends is a BadRequest, never an error deeper in the catalog."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError, RecursionError):
        raise BadRequest("malformed cursor") from None
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        # bool is an int to isinstance; no cursor holds one
        or any(
            isinstance(v, bool) or not isinstance(v, t)
            for v, t in zip(position, shape, strict=True)
        )
    ):
        raise BadRequest("malformed cursor")
    return position


class Catalog(ABC):
    @abstractmethod
    def add(self, record: Record) -> None: ...

    @abstractmethod
    def get(self, record_id: str) -> Record: ...

    @abstractmethod
    def get_by_key(self, key: str) -> Record | None: ...

    def find(self, record_id: str) -> Record | None:
        try:
            return self.get(record_id)
        except NotFound:
            return None

    @abstractmethod
    def update(self, record: Record, *, expected_key: str | None = None) -> None:
        """Replace the row with ``record.id`` (its key may change; the new key must be free).
        With ``expected_key``, only while the row still has that key (else Conflict)."""

    @abstractmethod
    def delete(self, record_id: str, *, expected_key: str | None = None) -> None:
        """Remove the row; with ``expected_key``, only while it still has that key."""

    @abstractmethod
    def list(
        self,
        *,
        prefix: str = "",
        is_temp: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Record], str | None]: ...

    @abstractmethod
    def temp_created_before(self, cutoff: datetime) -> Iterator[Record]:
        """Temp records created before ``cutoff`` (the cleanup's candidates), streamed: the
        caller may remove each one before asking for the next."""

    def temp_backlog(self, cutoff: datetime) -> tuple[int, int]:
        """(objects, bytes) of the temp records created before ``cutoff``."""
        objects = size = 0
        for record in self.temp_created_before(cutoff):
            objects, size = objects + 1, size + record.size
        return objects, size

    def remove_rows(self, records: Iterable[Record]) -> list[Record]:
        """Remove each row that still has the key its record shows (as ``delete`` with
        ``expected_key``); the records whose rows were removed. Rows a concurrent request
        moved or deleted meanwhile are left alone."""
        removed = []
        for record in records:
            with contextlib.suppress(Conflict, NotFound):
                self.delete(record.id, expected_key=record.key)
                removed.append(record)
        return removed

    @abstractmethod
    def all(self) -> Iterator[Record]: ...

    @abstractmethod
    def stats(self) -> Stats: ...

    @abstractmethod
    def add_session(self, session: MultipartSession) -> None: ...

    @abstractmethod
    def get_session(self, session_id: str) -> MultipartSession: ...

    @abstractmethod
    def delete_session(self, session_id: str) -> None: ...

    @abstractmethod
    def commit_session(self, record: Record) -> None:
        """End the multipart session ``record.id`` and add ``record``, atomically: Conflict
        (and nothing changed) if the session is gone or the id or key is taken."""

    @abstractmethod
    def sessions(self) -> Iterator[MultipartSession]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

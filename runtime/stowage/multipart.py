"""Resumable multipart uploads: start, receive parts, complete, abort.

The key is handed out before any byte exists, so the declared type (checked against the
kind's allowlist) fixes the key's extension and the stored Content-Type; at completion the
assembled bytes must sniff as that same type, or the object is removed (415).

Completion is idempotent, also across processes sharing one catalog: the backend assembles
an upload at most once (a second completion finds the object in place), and the catalog
ends the session and adds the record in one atomic step. A caller that loses a race gets
the winner's record (or a 409 while the winner is still working); nothing ever removes an
object some completion may have catalogued.
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from stowage.backends import Backend, ObjectInfo
from stowage.backends.base import AssembledDifferently
from stowage.catalog import Catalog, MultipartSession, Record
from stowage.errors import BackendError, BadRequest, Conflict, NotFound, UnsupportedType
from stowage.keys import KIND_PREFIX, new_key, new_upload_id
from stowage.settings import Settings
from stowage.signing import part_signature
from stowage.sniff import SNIFF_BYTES, declared_type, sniffed_type

MAX_PARTS = 10_000


class MultipartUploads:
    settings: Settings
    backend: Backend
    catalog: Catalog

    def signing_secret(self) -> str: ...  # provided by the service

    def check_room(self, expected_bytes: int | None) -> None: ...

    def start_multipart(
        self,
        kind: str,
        *,
        size: int,
        filename: str | None,
        content_type: str | None,
        is_temp: bool,
    ) -> tuple[MultipartSession, list[str]]:
        if kind not in KIND_PREFIX:
            raise BadRequest(f"unknown upload kind {kind!r}")
        if size <= 0:
            raise BadRequest("size must be positive")
        declared = declared_type(kind, content_type)
        self.check_room(size)
        part_size = max(self.settings.multipart_part_size, math.ceil(size / MAX_PARTS))
        parts = math.ceil(size / part_size)
        upload_id = new_upload_id()
        key = new_key(kind, upload_id, declared.extension, is_temp=is_temp, now=datetime.now(UTC))
        handle = self.backend.start_multipart(key, content_type=declared.content_type)
        session = MultipartSession(
            id=upload_id,
            key=key,
            handle=handle,
            backend=self.backend.name,
            kind=kind,
            content_type=declared.content_type,
            size=size,
            part_size=part_size,
            parts=parts,
            is_temp=is_temp,
            filename=filename,
        )
        self.catalog.add_session(session)
        return session, [self._part_url(session, n) for n in range(1, parts + 1)]

    def _part_url(self, session: MultipartSession, number: int) -> str:
        ttl = 24 * 3600
        url = self.backend.part_url(session.key, session.handle, number, expires_in=ttl)
        if url is not None:
            return url
        expires = int(time.time()) + ttl
        signature = part_signature(session.id, number, expires, self.signing_secret())
        return (
            f"{self.settings.public_base_url}/api/upload/{session.id}/parts/{number}"
            f"?expires={expires}&signature={signature}"
        )

    def receive_part(self, upload_id: str, number: int, stream: BinaryIO) -> int:
        session = self.catalog.get_session(upload_id)
        if not 1 <= number <= session.parts:
            raise BadRequest(f"part number must be 1..{session.parts}")
        return self.backend.receive_part(session.handle, number, stream, limit=session.part_size)

    def complete_multipart(self, upload_id: str) -> Record:
        if done := self.catalog.find(upload_id):
            return done
        try:
            session = self.catalog.get_session(upload_id)
        except NotFound:
            if done := self.catalog.find(upload_id):  # completed while we looked
                return done
            raise
        try:
            info = self._assembled(session)
            head = b"".join(self.backend.open_range(session.key, 0, SNIFF_BYTES - 1))
        except FileNotFoundError:
            return self._settled(session)  # aborted meanwhile: its outcome is the answer
        except BadRequest:  # parts that can never make the object: as for a wrong size
            self._end(session)
            raise
        except BackendError:
            if self._ended(session):  # the backend failed because the upload was aborted
                return self._settled(session)
            raise
        try:
            found = sniffed_type(session.kind, head)
            if found.content_type != session.content_type:
                raise UnsupportedType(
                    f"the upload declared {session.content_type}; its bytes are"
                    f" {found.content_type}"
                )
            if info.size != session.size:
                raise BadRequest(f"received {info.size} bytes, announced {session.size}")
        except (UnsupportedType, BadRequest):
            self._end(session)
            raise
        now = datetime.now(UTC)
        record = Record(
            id=session.id,
            key=session.key,
            size=info.size,
            sha256=info.sha256 or self.backend.sha256(session.key),
            content_type=session.content_type,
            is_temp=session.is_temp,
            backend=info.backend or self.backend.name,
            created_at=session.created_at,
            updated_at=now,
            expires_at=now + timedelta(hours=self.settings.temp_max_age_hours)
            if session.is_temp
            else None,
        )
        try:
            self.catalog.commit_session(record)
        except Conflict:
            return self._settled(session)
        return record

    def _assembled(self, session: MultipartSession) -> ObjectInfo:
        """The object the parts make: assembled now, or found in place when another
        completion (perhaps one that died before cataloguing it) already assembled it."""
        try:
            return self.backend.complete_multipart(
                session.key, session.handle, parts=session.parts, content_type=session.content_type
            )
        except AssembledDifferently:
            raise  # the object in place is another completion's, from other bytes: 409
        except (FileNotFoundError, Conflict) as exc:
            try:
                return self.backend.head(session.key)
            except FileNotFoundError:
                if isinstance(exc, Conflict):
                    raise exc from None  # parts genuinely missing
                raise

    def _ended(self, session: MultipartSession) -> bool:
        try:
            self.catalog.get_session(session.id)
        except NotFound:
            return True
        return False

    def _settled(self, session: MultipartSession) -> Record:
        """What a concurrent request made of this upload: its record, else 409 / 404."""
        if done := self.catalog.find(session.id):
            return done
        try:
            self.catalog.get_session(session.id)
        except NotFound:
            # A session ends with its record in one transaction: look once more, or a
            # completion committed between our two looks would lose its object here.
            if done := self.catalog.find(session.id):
                return done
            # Ended without a record (aborted or refused), and no record can be added
            # now: whatever a completion placed under the session's key is nobody's.
            with contextlib.suppress(FileNotFoundError):
                self.backend.delete(session.key)
            raise
        raise Conflict(f"multipart upload {session.id} is being completed by another request")

    def abort_multipart(self, upload_id: str) -> None:
        self._end(self.catalog.get_session(upload_id))

    def _end(self, session: MultipartSession) -> None:
        """End a session that will never be committed. Whoever ends it (the catalog says who)
        discards its parts and any object a completion assembled under its key: a record
        can no longer be added for it, so that object is nobody's."""
        try:
            self.catalog.delete_session(session.id)
        except NotFound:
            return
        with contextlib.suppress(FileNotFoundError):
            self.backend.abort_multipart(session.key, session.handle)
        with contextlib.suppress(FileNotFoundError):
            self.backend.delete(session.key)

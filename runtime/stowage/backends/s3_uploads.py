"""How the S3 backend writes objects: one checksummed PUT for small bodies, s3transfer's
multipart upload for large ones, and afterwards S3's own SHA-256 of what it stored compared
with ours. A version we wrote that does not match is removed, or hidden behind a delete
marker where the principal may not destroy versions."""

from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import ClientError

from stowage.backends.base import (
    CHUNK_SIZE,
    ChecksumMismatch,
    ObjectAttributes,
    ObjectInfo,
    OnBytes,
)
from stowage.backends.readers import HashingReader
from stowage.backends.s3_migration import Throttled
from stowage.errors import BackendError


class S3Uploads:
    """Mixed into :class:`~stowage.backends.s3.S3Backend` (which provides ``client``,
    ``bucket``, ``transfer``, ``spool_dir``, ``_k``, ``_write_args``, ``put_file`` and
    ``head``)."""

    def upload_path(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
        s3_checksum: str | None = None,
        on_bytes: OnBytes | None = None,
    ) -> ObjectInfo:
        """Upload a file that stays where it is (seekable: parts are read from disk, not
        buffered). With ``s3_checksum`` (see ``HashingReader.s3_checksum``) S3's checksum of
        what it stored must match, or the write is removed. ``on_bytes`` hears of every byte
        as it goes on the wire (s3transfer's callback: not while checksums are computed, and
        negative when a retry rewinds)."""
        size = path.stat().st_size
        if size < self.transfer.multipart_threshold:
            return self._put_small(key, path, size, sha256, content_type, attributes, on_bytes)
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                self._k(key),
                ExtraArgs={
                    **self._write_args(sha256, content_type, attributes),
                    "ChecksumAlgorithm": "SHA256",
                },
                Config=self.transfer,
                Callback=on_bytes,
            )
        except ClientError as exc:
            raise BackendError(f"S3 upload of {key} failed: {exc}") from None
        info, stored = self._head_with_checksum(key)
        if s3_checksum is not None and stored is not None and stored != s3_checksum:
            if info.sha256 == sha256:  # ours (not a concurrent writer's), and corrupted
                self._remove_version(key, info.version_id)
            raise ChecksumMismatch(f"{key}: S3 stored {stored}, read {s3_checksum}")
        return info

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        self._k(key)
        if sha256 is None:
            # The SHA-256 goes into metadata, which S3 takes before the body: hash on the
            # way to a spool file on disk (bounded memory), then upload that file.
            return self._put_spooled(key, stream, content_type, attributes)
        reader = HashingReader(stream, part_size=self.transfer.multipart_chunksize)
        args = {**self._write_args(sha256, content_type, attributes), "ChecksumAlgorithm": "SHA256"}
        try:
            self.client.upload_fileobj(
                reader, self.bucket, self._k(key), ExtraArgs=args, Config=self.transfer
            )
        except ClientError as exc:
            raise BackendError(f"S3 upload of {key} failed: {exc}") from None
        info = self.head(key)
        if reader.hexdigest() != sha256:
            if info.sha256 == sha256:  # the object we just wrote under a promise it broke
                self._remove_version(key, info.version_id)
            raise ChecksumMismatch(f"{key}: read {reader.hexdigest()}, expected {sha256}")
        self._check_stored(key, info, reader)
        return info

    def _put_spooled(self, key, stream, content_type, attributes) -> ObjectInfo:
        if self.spool_dir:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.spool_dir, delete=False, suffix=".part") as out:
            try:
                reader = HashingReader(stream, part_size=self.transfer.multipart_chunksize)
                while chunk := reader.read(CHUNK_SIZE):
                    out.write(chunk)
            except BaseException:
                Path(out.name).unlink(missing_ok=True)
                raise
        info = self.put_file(
            key,
            Path(out.name),
            sha256=reader.hexdigest(),
            content_type=content_type,
            attributes=attributes,
        )
        self._check_stored(key, info, reader)
        return info

    def _put_small(
        self, key, path, size, sha256, content_type, attributes, on_bytes=None
    ) -> ObjectInfo:
        """One PUT carrying our SHA-256 as the request checksum: S3 refuses the body unless
        the bytes it received hash to exactly that, so no HEAD is needed afterwards."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            with open(path, "rb") as handle:
                # The body is read once, on the wire: the checksum is already in the header.
                body = Throttled(handle, on_bytes) if on_bytes else handle
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._k(key),
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    **self._write_args(sha256, content_type, attributes),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("BadDigest", "InvalidRequest"):
                raise ChecksumMismatch(f"{key}: S3 refused the body: {exc}") from None
            raise BackendError(f"S3 upload of {key} failed: {exc}") from None
        if response.get("ChecksumSHA256") not in (None, checksum):
            raise ChecksumMismatch(f"{key}: S3 stored {response['ChecksumSHA256']}")
        attributes = attributes or ObjectAttributes()
        return ObjectInfo(
            key=key,
            size=size,
            modified=datetime.now(UTC),
            sha256=sha256,
            content_type=content_type,
            version_id=response.get("VersionId"),
            backend=self.name,
            cache_control=attributes.cache_control,
            metadata=attributes.metadata,
            kms_key_id=response.get("SSEKMSKeyId"),
        )

    def _check_stored(self, key: str, info: ObjectInfo, reader: HashingReader) -> None:
        """Compare S3's checksum of the version we wrote with ours; remove it if they differ.

        Without a version id (unversioned bucket) the latest object may be a concurrent
        writer's: it is removed only if it carries our hash (so it is ours, and corrupted)."""
        stored_info, stored = self._head_with_checksum(key, version_id=info.version_id)
        if stored is None or stored == reader.s3_checksum():
            return
        if stored_info.sha256 == reader.hexdigest():
            self._remove_version(key, stored_info.version_id)
        raise ChecksumMismatch(f"{key}: S3 stored {stored}, sent {reader.s3_checksum()}")

    def stored_checksum(self, key: str) -> str | None:
        """S3's own SHA-256 checksum of what it stored (base64; composite for multipart
        uploads, without the ``-N`` part count), or ``None`` if S3 kept none."""
        return self._head_with_checksum(key)[1]

    def _remove_version(self, key: str, version_id: str | None) -> None:
        args = {"Bucket": self.bucket, "Key": self._k(key)}
        if version_id and version_id != "null":
            args["VersionId"] = version_id
        try:
            self.client.delete_object(**args)
        except ClientError as exc:
            # The everyday principals may not destroy versions (s3:DeleteObjectVersion):
            # hide our corrupted version behind a delete marker while it is still the
            # current one; the noncurrent-version lifecycle rule removes it later.
            if exc.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            try:
                current = self.head(key).version_id
            except FileNotFoundError:
                return  # already hidden or deleted by someone else: nothing of ours shows
            if current == version_id:
                self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

"""S3 backend (AWS or any S3-compatible server via ``endpoint_url``).

Objects are written with SSE-KMS when a key is configured, their SHA-256 in user metadata
(``x-amz-meta-sha256``) and S3's own SHA-256 checksum. Large bodies go up in parts; S3 makes
each write atomic (no reader ever sees a part of an object).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from s3transfer.utils import signal_not_transferring, signal_transferring

from stowage.backends.base import (
    CHUNK_SIZE,
    Backend,
    ChecksumMismatch,
    HashingReader,
    ObjectAttributes,
    ObjectInfo,
    OnBytes,
)
from stowage.backends.s3_migration import S3Migration, Throttled
from stowage.errors import BackendError, BadRequest, Conflict
from stowage.keys import validate_key, validate_prefix

MULTIPART_THRESHOLD = 16 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


class S3Backend(S3Migration, Backend):
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        kms_key_id: str | None = None,
        spool_dir: Path | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.kms_key_id = kms_key_id
        self.spool_dir = spool_dir
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=32,
                signature_version="s3v4",
                request_checksum_calculation="when_required",
            ),
        )
        # The hooks s3transfer installs on first use, installed now (same ids, so once): a
        # throttled PUT body must not count the reads that only sign the payload.
        events = self.client.meta.events
        events.register_first(
            "request-created.s3", signal_not_transferring, unique_id="s3upload-not-transferring"
        )
        events.register_last(
            "request-created.s3", signal_transferring, unique_id="s3upload-transferring"
        )
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_THRESHOLD,
            max_concurrency=4,
        )

    def _k(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _write_args(
        self,
        sha256: str | None,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
    ) -> dict[str, Any]:
        attributes = attributes or ObjectAttributes()
        args: dict[str, Any] = {}
        metadata = dict(attributes.metadata or {})
        if sha256:
            metadata["sha256"] = sha256
        if metadata:
            args["Metadata"] = metadata
        if content_type:
            args["ContentType"] = content_type
        if attributes.cache_control:
            args["CacheControl"] = attributes.cache_control
        kms_key = self.kms_key_id or attributes.kms_key_id
        if kms_key:
            args["ServerSideEncryption"] = "aws:kms"
            args["SSEKMSKeyId"] = kms_key
        return args

    # -- writes ------------------------------------------------------------------------

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        content_type: str | None,
        attributes: ObjectAttributes | None = None,
    ) -> ObjectInfo:
        try:
            return self.upload_path(
                key, path, sha256=sha256, content_type=content_type, attributes=attributes
            )
        finally:
            path.unlink(missing_ok=True)

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
            if self.head(key).version_id == version_id:
                self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def move(self, source: str, destination: str) -> ObjectInfo:
        src, dst = self._k(source), self._k(destination)
        self.head(source)
        if self.exists(destination):
            raise Conflict(f"{destination} already exists")
        extra = {"MetadataDirective": "COPY"}
        if self.kms_key_id:
            extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": src},
                self.bucket,
                dst,
                ExtraArgs=extra,
                Config=self.transfer,
            )
            self.client.delete_object(Bucket=self.bucket, Key=src)
        except ClientError as exc:
            raise BackendError(f"S3 move {source} -> {destination} failed: {exc}") from None
        return self.head(destination)

    def delete(self, key: str) -> None:
        self.head(key)
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    # -- multipart: parts go straight from the client to S3 with presigned URLs ---------

    def start_multipart(self, key: str, *, content_type: str | None) -> str:
        response = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._k(key), **self._write_args(None, content_type)
        )
        return response["UploadId"]

    def part_url(self, key: str, handle: str, number: int, *, expires_in: int) -> str:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self._k(key),
                "UploadId": handle,
                "PartNumber": number,
            },
            ExpiresIn=expires_in,
        )

    def complete_multipart(
        self, key: str, handle: str, *, parts: int, content_type: str | None = None
    ) -> ObjectInfo:
        s3_key = self._k(key)
        received = []
        try:
            paginator = self.client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.bucket, Key=s3_key, UploadId=handle):
                received += [
                    {"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                    for p in page.get("Parts", [])
                ]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(handle) from None
            raise
        numbers = {p["PartNumber"] for p in received}
        missing = [n for n in range(1, parts + 1) if n not in numbers]
        if missing:
            raise Conflict(f"parts not received yet: {missing[:10]}")
        if len(numbers) != parts:
            raise BadRequest(f"received {len(numbers)} parts, expected {parts}")
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=handle,
                MultipartUpload={"Parts": sorted(received, key=lambda p: p["PartNumber"])},
            )
        except ClientError as exc:
            if _missing(exc):  # completed or aborted by a concurrent request
                raise FileNotFoundError(handle) from None
            raise BackendError(f"S3 completion of {key} failed: {exc}") from None
        # The service never saw the bytes: read them back once to know their SHA-256.
        sha256 = self.sha256(key)
        return ObjectInfo(**{**self.head(key).__dict__, "sha256": sha256})

    def abort_multipart(self, key: str, handle: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._k(key), UploadId=handle
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(handle) from None
            raise

    # -- reads -------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        return self._head_with_checksum(key, checksum=False)[0]

    def _head_with_checksum(self, key: str, *, checksum: bool = True, version_id=None):
        args = {"Bucket": self.bucket, "Key": self._k(key)}
        if version_id and version_id != "null":
            args["VersionId"] = version_id
        if checksum:
            args["ChecksumMode"] = "ENABLED"
        try:
            response = self.client.head_object(**args)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise BackendError(f"S3 head of {key} failed: {exc}") from None
        stored = response.get("ChecksumSHA256")
        return self._info(key, response), stored.split("-")[0] if stored else None

    def _info(self, key: str, response: dict) -> ObjectInfo:
        metadata = dict(response.get("Metadata", {}))
        sha256 = metadata.pop("sha256", None)
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            modified=response["LastModified"],
            sha256=sha256,
            content_type=response.get("ContentType"),
            version_id=response.get("VersionId"),
            backend=self.name,
            cache_control=response.get("CacheControl"),
            metadata=metadata or None,
            kms_key_id=response.get("SSEKMSKeyId"),
        )

    def open_object(self, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """One GET: the object's facts as served, and its bytes."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise BackendError(f"S3 read of {key} failed: {exc}") from None
        return self._info(key, response), self._chunks(response["Body"])

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._k(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())
            raise BackendError(f"S3 read of {key} failed: {exc}") from None
        return self._chunks(body)

    @staticmethod
    def _chunks(body) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"].removeprefix(self.prefix),
                    size=item["Size"],
                    modified=item["LastModified"],
                    backend=self.name,
                )

    def presign_download(self, key: str, *, expires_in: int) -> str:
        params = {"Bucket": self.bucket, "Key": self._k(key)}
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

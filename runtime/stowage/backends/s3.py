"""S3 backend (AWS or any S3-compatible server via ``endpoint_url``).

Objects are written with SSE-KMS when a key is configured, their SHA-256 in user metadata
(``x-amz-meta-sha256``) and S3's own SHA-256 checksum. Large bodies go up in parts; S3 makes
each write atomic (no reader ever sees a part of an object). How bodies are uploaded and
checked is in ``s3_uploads``, client multipart uploads in ``s3_multipart``, what only a
migration needs in ``s3_migration``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from s3transfer.utils import signal_not_transferring, signal_transferring

from stowage.backends.base import CHUNK_SIZE, Backend, ObjectAttributes, ObjectInfo
from stowage.backends.s3_migration import S3Migration
from stowage.backends.s3_multipart import S3Multipart
from stowage.backends.s3_uploads import S3Uploads
from stowage.errors import BackendError, Conflict
from stowage.images.focal import FOCAL_METADATA
from stowage.keys import validate_key, validate_prefix

MULTIPART_THRESHOLD = 16 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


class S3Backend(S3Uploads, S3Multipart, S3Migration, Backend):
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

    def set_focal(self, key: str, focal: str | None) -> None:
        """Write the focal point into the original's metadata, where the edge reads it, by a
        copy onto itself that keeps its type, caching, encryption, tags and checksum. The
        copy is an Object Created event: the invalidator then deletes the original's stored
        variants and invalidates ``/variants/{key}/*``, as for any replaced original."""
        try:
            current = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise BackendError(f"S3 head of {key} failed: {exc}") from None
        metadata = dict(current.get("Metadata", {}))
        metadata.pop(FOCAL_METADATA, None)
        if focal:
            metadata[FOCAL_METADATA] = focal
        kept = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding")
        args = {name: current[name] for name in kept if current.get(name)}
        if current.get("SSEKMSKeyId"):
            args |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": current["SSEKMSKeyId"]}
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._k(key),
                # Only the version just read: a concurrent upload is not overwritten with it.
                CopySource={"Bucket": self.bucket, "Key": self._k(key)},
                CopySourceIfMatch=current["ETag"],
                MetadataDirective="REPLACE",
                TaggingDirective="COPY",
                ChecksumAlgorithm="SHA256",
                Metadata=metadata,
                **args,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                raise Conflict(f"{key} was replaced while its focal point was set") from None
            raise BackendError(f"S3 copy of {key} onto itself failed: {exc}") from None

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

"""What a migration needs from the S3 backend beyond the storage contract: reading names
that are keys only once normalized, throttled uploads, exact undo by version id, and
cleaning up the open multipart uploads of a dead run."""

from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import ClientError

from stowage.backends.base import (
    CHANGED_SINCE,
    REMOVED,
    RESTORED,
    ObjectAttributes,
    ObjectInfo,
    OnBytes,
    Unlisted,
    classify,
    listed_name,
)
from stowage.errors import BackendError, Forbidden, NotFound, StowageError


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


class S3Migration:
    """Mixed into :class:`~stowage.backends.s3.S3Backend` (which provides ``client``,
    ``bucket``, ``prefix``, ``transfer`` and the storage methods used here)."""

    @property
    def checksum_part_size(self) -> int:
        return self.transfer.multipart_chunksize

    def check_location(self, *, as_destination: bool = False) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchBucket"):
                raise NotFound(f"bucket {self.bucket} does not exist") from None
            if code in ("403", "AccessDenied"):
                raise Forbidden(f"access to bucket {self.bucket} denied") from None
            raise BackendError(f"bucket {self.bucket}: {exc}") from None

    def scan_current(self) -> Iterator[ObjectInfo | Unlisted]:
        """One listing of versions instead of a HEAD per object: a listing's modification
        time has whole seconds only, so a same-size change within one is told by its id."""
        if not self.versioned():
            yield from self.scan("")
            return
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Versions", []):
                if not item["IsLatest"]:
                    continue
                info = ObjectInfo(
                    key=item["Key"].removeprefix(self.prefix),
                    size=item["Size"],
                    modified=item["LastModified"],
                    version_id=item["VersionId"],
                    backend=self.name,
                )
                yield classify(info.key, info.size) or info

    def open_listed(self, name: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.prefix + listed_name(name)
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(name) from None
            raise BackendError(f"S3 read of {name} failed: {exc}") from None
        return self._info(name, response), self._chunks(response["Body"])

    def head_listed(self, name: str) -> ObjectInfo:
        try:
            response = self.client.head_object(
                Bucket=self.bucket, Key=self.prefix + listed_name(name)
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(name) from None
            raise BackendError(f"S3 head of {name} failed: {exc}") from None
        return self._info(name, response)

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
        return self.upload_path(
            key,
            path,
            sha256=sha256,
            content_type=content_type,
            attributes=attributes,
            s3_checksum=stored_checksum,
            on_bytes=on_bytes,
        )

    def verified_sha256(self, key: str, written: ObjectInfo) -> str:
        """S3 compared its checksum of the stored bytes with ours during the write."""
        return written.sha256

    def keep_previous(self, key: str, backup_dir: Path) -> str | None:
        if not self.versioned():
            raise StowageError(
                "refusing to overwrite in an unversioned bucket: rollback could not restore it"
            )
        return None  # the bucket keeps the previous version; its id is in the manifest

    def undo_write(
        self, key: str, *, version_id: str | None, sha256: str, previous: str | None
    ) -> str:
        try:
            current = self.head(key)
        except FileNotFoundError:
            current = None
        if version_id in (None, "null"):
            if current is None or current.sha256 != sha256:
                return CHANGED_SINCE
            self.delete(key)
            return REMOVED
        # Removing the version this run wrote never touches anyone else's versions.
        self.delete_version(key, version_id)
        if current is None or current.version_id != version_id:
            return CHANGED_SINCE
        return RESTORED if self.exists(key) else REMOVED

    def remove_source(self, name: str) -> str | None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + listed_name(name))
        return self.latest_delete_marker(name)

    def undelete(self, name: str, token: str | None) -> bool:
        if not token:
            return False
        self.client.delete_object(
            Bucket=self.bucket, Key=self.prefix + listed_name(name), VersionId=token
        )
        return True

    def discard_debris(self, *, pids: list[int], keys: Container[str]) -> list[str]:
        """Abort the multipart uploads a dead run left open to the keys it has yet to copy.
        (Not filtered by start time: moto reports a fixed ``Initiated``, and the run owns
        those keys: an upload to one of them by anyone else would be overwritten anyway.)"""
        aborted = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                key = upload["Key"]
                if key.startswith(self.prefix) and key[len(self.prefix) :] in keys:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(f"{upload['Key']} (upload {upload['UploadId']})")
        return aborted

    def delete_version(self, key: str, version_id: str) -> None:
        """Remove one version (or delete marker) for good: undoes exactly one write."""
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key), VersionId=version_id)

    def versioned(self) -> bool:
        status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        return status == "Enabled"

    def latest_delete_marker(self, name: str) -> str | None:
        """The version id of the delete marker that hides ``name``, if one does."""
        key = self.prefix + listed_name(name)
        response = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        for marker in response.get("DeleteMarkers", []):
            if marker["Key"] == key and marker["IsLatest"]:
                return marker["VersionId"]
        return None


class Throttled:
    """A PUT body that reports the bytes read on the wire to ``on_bytes`` (which may block to
    throttle). Reads while botocore signs the payload (plain HTTP) are not transfers: the
    hooks s3transfer registers call ``signal_not_transferring`` around them."""

    def __init__(self, handle: BinaryIO, on_bytes: OnBytes) -> None:
        self._handle, self._on_bytes = handle, on_bytes
        self._transferring = True

    def signal_not_transferring(self) -> None:
        self._transferring = False

    def signal_transferring(self) -> None:
        self._transferring = True

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if data and self._transferring:
            self._on_bytes(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

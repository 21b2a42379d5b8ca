"""Multipart uploads on the S3 backend: parts go straight from the client to S3 with
presigned URLs; completion lists what S3 received, assembles it and reads it back once
(the service never saw the bytes, so this is where their SHA-256 comes from)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from stowage.backends.base import ObjectInfo
from stowage.errors import BackendError, BadRequest, Conflict

S3_MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
CLIENT_PART_ERRORS = {"EntityTooSmall", "InvalidPart", "InvalidPartOrder"}


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchUpload"}


class S3Multipart:
    """Mixed into :class:`~stowage.backends.s3.S3Backend` (which provides ``client``,
    ``bucket``, ``_k``, ``_write_args``, ``head`` and ``sha256``)."""

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
                received += page.get("Parts", [])
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
        received.sort(key=lambda p: p["PartNumber"])
        short = [p["PartNumber"] for p in received[:-1] if p["Size"] < S3_MIN_PART_BYTES]
        if short:
            raise BadRequest(
                f"parts {short[:10]} are smaller than {S3_MIN_PART_BYTES} bytes;"
                " only the last part may be"
            )
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=handle,
                MultipartUpload={
                    "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in received]
                },
            )
        except ClientError as exc:
            if _missing(exc):  # completed or aborted by a concurrent request
                raise FileNotFoundError(handle) from None
            if exc.response.get("Error", {}).get("Code") in CLIENT_PART_ERRORS:
                raise BadRequest(f"S3 refused the parts of {key}: {exc}") from None
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

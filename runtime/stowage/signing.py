"""Signed, expiring download URLs.

- Host: Nginx ``secure_link`` URLs ``/files/{key}?expires=E&md5=M`` where
  ``M = base64url(md5(f"{E}{uri} {secret}"))`` and ``uri`` is the *decoded* path; Nginx
  verifies them alone (tampered -> 403, expired -> 410). The service verifies the same way
  when no Nginx is in front.
- Service-received multipart parts: HMAC-SHA256 over the upload id, part number and expiry.
- Cloud: S3 presigned URLs (in the S3 backend) or CloudFront signed URLs (below).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from stowage.errors import Expired, Forbidden, Unauthorized
from stowage.keys import validate_key

FILES_PREFIX = "/files/"
# What a genuine link carries: ASCII digits (str.isdigit() also accepts "²"), and base64url.
_EXPIRES = re.compile(r"[0-9]{1,12}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def file_uri(key: str) -> str:
    """The decoded URI Nginx sees for ``key``."""
    return FILES_PREFIX + validate_key(key)


def secure_link_md5(uri: str, expires: int, secret: str) -> str:
    digest = hashlib.md5(f"{expires}{uri} {secret}".encode(), usedforsecurity=False).digest()
    return _b64(digest)


def sign_file_url(
    base_url: str, key: str, secret: str, *, ttl: int, now: float | None = None
) -> str:
    expires = int((now or time.time()) + ttl)
    uri = file_uri(key)
    token = secure_link_md5(uri, expires, secret)
    return f"{base_url}{quote(uri, safe='/')}?expires={expires}&md5={token}"


def verify_file_url(key: str, expires: str | None, md5: str | None, secret: str) -> None:
    """Check a ``/files/`` link exactly as Nginx's secure_link does."""
    verify_uri(file_uri(key), expires, md5, secret)


def verify_uri(uri: str, expires: str | None, md5: str | None, secret: str) -> None:
    """Check a secure_link signature over the decoded ``uri`` as Nginx does."""
    if not expires or not md5:
        raise Forbidden("missing signature (expires and md5)")  # as Nginx answers it
    if not _EXPIRES.fullmatch(expires) or not _TOKEN.fullmatch(md5):
        raise Forbidden("malformed signature")
    expected = secure_link_md5(uri, int(expires), secret)
    if not hmac.compare_digest(expected, md5):
        raise Forbidden("signature does not match")
    if int(expires) < time.time():
        raise Expired("link expired")


def part_signature(upload_id: str, number: int, expires: int, secret: str) -> str:
    message = f"part\n{upload_id}\n{number}\n{expires}".encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def verify_part(
    upload_id: str, number: int, expires: str | None, signature: str | None, secret: str
) -> None:
    if not expires or not signature:
        raise Unauthorized("missing part signature (expires and signature)")
    if not _EXPIRES.fullmatch(expires) or not _TOKEN.fullmatch(signature):
        raise Forbidden("malformed part signature")
    expected = part_signature(upload_id, number, int(expires), secret)
    if not hmac.compare_digest(expected, signature):
        raise Forbidden("part signature does not match")
    if int(expires) < time.time():
        raise Expired("part URL expired")


def cloudfront_signed_url(
    domain: str, key: str, *, key_pair_id: str, private_key_file: Path, ttl: int
) -> str:
    """A canned-policy CloudFront signed URL for ``https://{domain}/{key}``."""
    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    private_key = serialization.load_pem_private_key(private_key_file.read_bytes(), password=None)

    def rsa_signer(message: bytes) -> bytes:
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's scheme

    url = f"https://{domain}/{quote(validate_key(key), safe='/')}"
    expires = datetime.fromtimestamp(time.time() + ttl, UTC)
    return CloudFrontSigner(key_pair_id, rsa_signer).generate_presigned_url(
        url, date_less_than=expires
    )

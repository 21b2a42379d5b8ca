"""Signed URLs: Nginx secure_link compatibility, CloudFront canned policies, KMS writes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stowage.errors import Expired, Forbidden
from stowage.signing import cloudfront_signed_url, secure_link_md5, sign_file_url, verify_file_url


def test_secure_link_matches_nginx_definition():
    # secure_link_md5 "$secure_link_expires$uri $secret"; base64url without padding.
    expected = (
        base64.urlsafe_b64encode(
            hashlib.md5(b"1700000000/files/images/caf\xc3\xa9.jpg s3cret").digest()  # noqa: S324
        )
        .decode()
        .rstrip("=")
    )
    assert secure_link_md5("/files/images/café.jpg", 1700000000, "s3cret") == expected


def test_sign_and_verify_round_trip():
    url = sign_file_url("https://media.example.com", "images/a b.jpg", "secret", ttl=60)
    parts = urlsplit(url)
    assert parts.path == "/files/images/a%20b.jpg"
    query = parse_qs(parts.query)
    verify_file_url("images/a b.jpg", query["expires"][0], query["md5"][0], "secret")
    with pytest.raises(Forbidden):
        verify_file_url("images/other.jpg", query["expires"][0], query["md5"][0], "secret")
    with pytest.raises(Forbidden):
        verify_file_url("images/a b.jpg", query["expires"][0], query["md5"][0], "other secret")
    old = sign_file_url("https://m", "images/a.jpg", "secret", ttl=-1)
    query = parse_qs(urlsplit(old).query)
    with pytest.raises(Expired):
        verify_file_url("images/a.jpg", query["expires"][0], query["md5"][0], "secret")


def test_cloudfront_signed_url_verifies_with_the_public_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "cf.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    url = cloudfront_signed_url(
        "d111111abcdef8.cloudfront.net",
        "images/a b.jpg",
        key_pair_id="K2JCJMDEHXQW5F",
        private_key_file=pem,
        ttl=600,
    )
    parts = urlsplit(url)
    assert parts.netloc == "d111111abcdef8.cloudfront.net"
    assert parts.path == "/images/a%20b.jpg"
    query = parse_qs(parts.query)
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    expires = int(query["Expires"][0])
    assert 590 <= expires - time.time() <= 600
    resource = f"https://{parts.netloc}{parts.path}"
    policy = json.dumps(
        {
            "Statement": [
                {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}
            ]
        },
        separators=(",", ":"),
    ).encode()
    signature = base64.b64decode(
        query["Signature"][0].replace("-", "+").replace("_", "=").replace("~", "/")
    )
    key.public_key().verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


def test_s3_writes_use_the_configured_kms_key(bucket, moto_url, tmp_path):
    from stowage.backends.s3 import S3Backend

    kms_key = boto3.client("kms", endpoint_url=moto_url).create_key()["KeyMetadata"]["Arn"]
    backend = S3Backend(bucket, kms_key_id=kms_key, spool_dir=tmp_path)
    backend.put_stream("images/k.bin", io.BytesIO(b"secret bytes"))
    head = boto3.client("s3", endpoint_url=moto_url).head_object(Bucket=bucket, Key="images/k.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key
    backend.move("images/k.bin", "images/moved.bin")
    head = boto3.client("s3", endpoint_url=moto_url).head_object(
        Bucket=bucket, Key="images/moved.bin"
    )
    assert head["SSEKMSKeyId"] == kms_key


MALFORMED_QUERIES = (
    {"expires": "²", "md5": "A" * 22},  # str.isdigit() says yes, int() says no
    {"expires": "١٢٣", "md5": "A" * 22},  # Arabic-Indic digits
    {"expires": "9" * 40, "md5": "A" * 22},
    {"expires": "1700000000", "md5": "é" * 22},  # non-ASCII: hmac.compare_digest raises
    {"expires": "1700000000", "md5": "A" * 5000},
    {"expires": "-1", "md5": "A" * 22},
    {"expires": "", "md5": ""},
)


def test_malformed_signature_parameters_are_4xx_json(serve):
    """Over HTTP against the real service: never a 500, always the error contract."""
    api = serve()
    for query in MALFORMED_QUERIES:
        response = api.client.get("/files/images/2026/01/01/a.jpg", params=query)
        assert response.status_code == 403, (query, response.text)
        assert response.json()["error"] == "forbidden"

    auth = api.auth
    session = api.client.post(
        "/api/upload/multipart", json={"kind": "video", "size": 100}, headers=auth
    ).json()
    part = f"/api/upload/{session['id']}/parts/1"
    cases = [
        ({"expires": "²", "signature": "A" * 43}, 403),
        ({"expires": "1700000000", "signature": "é" * 43}, 403),
        ({"expires": "9" * 40, "signature": "A" * 43}, 400),
        ({"expires": "1700000000"}, 401),
        ({}, 401),
    ]
    for query, status in cases:
        response = api.client.put(part, params=query, content=b"x")
        assert response.status_code == status, (query, response.text)
        assert response.json()["error"] in ("forbidden", "unauthorized", "bad_request")
    for number in ("0", "-1", "10001", "²"):
        response = api.client.put(
            f"/api/upload/{session['id']}/parts/{number}",
            params={"expires": "1700000000", "signature": "A" * 43},
            content=b"x",
        )
        assert response.status_code == 400, (number, response.text)

"""The everyday principal's S3 rights, enforced by moto's server with IAM turned on.

The host's IAM user gets exactly the policy the synthesized Storage template attaches to
it (``RuntimeAccessHostUser``), resolved to this test's bucket; the rollback role's policy
goes to a second user. moto then evaluates every request against those policies
(``/moto-api/reset-auth``, the server-mode form of ``INITIAL_NO_AUTH_ACTION_COUNT``): the
Action and Resource of each S3 request against the user's statements. The KMS statement and
its ``kms:ViaService`` condition are never consulted (moto's S3 authorizes no KMS use and
these requests use no key); presigned URLs are not exercised (moto's IAM check reads the
Authorization header, which a presigned request does not carry).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stacks.config import load_config
from stowage.backends import S3Backend
from stowage.backends.base import ChecksumMismatch
from tests.cdk.conftest import synthesize
from tests.helpers import free_port, running

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def storage_template(tmp_path_factory) -> dict:
    return synthesize(load_config("example"), tmp_path_factory.mktemp("iam-synth")).templates[
        "Storage"
    ]


def _policy_of(template: dict, attached_to: str) -> dict:
    """The PolicyDocument of the AWS::IAM::Policy attached to the user or role whose
    logical id starts with ``attached_to``."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        props = resource["Properties"]
        refs = [ref["Ref"] for ref in props.get("Users", []) + props.get("Roles", [])]
        if any(ref.startswith(attached_to) for ref in refs):
            return props["PolicyDocument"]
    raise AssertionError(f"no policy attached to {attached_to}")


def _resolve(value, template: dict, bucket: str):
    """Fn::GetAtt/Fn::Join/Ref of the template, as CloudFormation would, for this bucket."""
    if isinstance(value, list):
        return [_resolve(item, template, bucket) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        kind = template["Resources"][logical_id]["Type"]
        return {
            "AWS::S3::Bucket": f"arn:aws:s3:::{bucket}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}",
            "AWS::DynamoDB::GlobalTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical_id}",
        }[kind]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(part, template, bucket) for part in parts)
    if "Ref" in value:
        return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}[
            value["Ref"]
        ]
    return {key: _resolve(item, template, bucket) for key, item in value.items()}


class EnforcingMoto:
    def __init__(self, url: str, bucket: str, keys: dict[str, tuple[str, str]]) -> None:
        self.url, self.bucket, self.keys = url, bucket, keys

    def client(self, user: str):
        key_id, secret = self.keys[user]
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(signature_version="s3v4", request_checksum_calculation="when_required"),
        )

    def backend(self, user: str = "host") -> S3Backend:
        return S3Backend(self.bucket, client=self.client(user))

    def versions(self, key: str) -> tuple[list[str], list[tuple[str, bool]]]:
        """(version ids, [(delete marker id, is latest)]) of ``key``, seen by the admin."""
        listed = self.client("admin").list_object_versions(Bucket=self.bucket, Prefix=key)
        versions = [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]
        markers = [
            (m["VersionId"], m["IsLatest"])
            for m in listed.get("DeleteMarkers", [])
            if m["Key"] == key
        ]
        return versions, markers


@pytest.fixture
def enforcing(tmp_path, storage_template) -> EnforcingMoto:
    """A moto server of its own (the shared one stays open), IAM enforced once set up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
        log=tmp_path / "moto-iam.log",
        ready_url=f"{url}/moto-api/",
    ):
        setup = {
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        bucket = f"stowage-iam-{uuid.uuid4().hex[:10]}"
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        iam = boto3.client("iam", **setup)
        admin = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        policies = {
            "host": _resolve(
                _policy_of(storage_template, "RuntimeAccessHostUser"), storage_template, bucket
            ),
            "rollback": _resolve(
                _policy_of(storage_template, "RuntimeAccessMigrationRollbackRole"),
                storage_template,
                bucket,
            ),
            "admin": admin,
        }
        keys = {}
        for user, document in policies.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(
                UserName=user, PolicyName=f"{user}-policy", PolicyDocument=json.dumps(document)
            )
            created = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (created["AccessKeyId"], created["SecretAccessKey"])
        httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()
        yield EnforcingMoto(url, bucket, keys)


def _denied(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "AccessDenied"


def test_everyday_principal_uploads_moves_and_deletes_but_cannot_destroy_a_version(
    enforcing, tmp_path
):
    host = enforcing.backend("host")
    small = host.put_stream("images/a.png", io.BytesIO(b"small object"), content_type="image/png")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))  # over the threshold: s3transfer multipart
    host.put_file(
        "videos/b.mp4",
        big,
        sha256=hashlib.sha256(big.read_bytes()).hexdigest(),
        content_type="video/mp4",
    )
    assert host.head("videos/b.mp4").size == 17 * 1024 * 1024
    moved = host.move("images/a.png", "images/moved.png")
    assert host.read_all("images/moved.png") == b"small object"
    host.delete("images/moved.png")
    assert not host.exists("images/moved.png")

    # Neither the raw request nor the backend's own version removal gets through ...
    with pytest.raises(ClientError) as raw:
        host.client.delete_object(
            Bucket=enforcing.bucket, Key="images/a.png", VersionId=small.version_id
        )
    assert _denied(raw.value)
    with pytest.raises(ClientError) as undo:
        host.delete_version("images/moved.png", moved.version_id)
    assert _denied(undo.value)
    # ... so every version the host wrote is still there, behind delete markers.
    assert enforcing.versions("images/a.png")[0] == [small.version_id]
    assert enforcing.versions("images/moved.png")[0] == [moved.version_id]

    # The rollback principal is the one that may.
    enforcing.backend("rollback").delete_version("images/moved.png", moved.version_id)
    assert enforcing.versions("images/moved.png")[0] == []


def test_corrupted_upload_is_hidden_behind_a_delete_marker_not_destroyed(enforcing):
    """An upload whose bytes break the SHA-256 promised for them: the everyday principal
    cannot remove the version it wrote, so it hides it (the caller hears of the mismatch,
    not of an AccessDenied, and no reader sees the bad bytes)."""
    host = enforcing.backend("host")
    promised = hashlib.sha256(b"what the source promised").hexdigest()
    with pytest.raises(ChecksumMismatch):
        host.put_stream("images/bad.png", io.BytesIO(b"what arrived"), sha256=promised)
    assert not host.exists("images/bad.png")
    versions, markers = enforcing.versions("images/bad.png")
    assert len(versions) == 1  # kept (noncurrent) until the lifecycle rule expires it
    assert [latest for _, latest in markers] == [True]


def test_a_version_no_longer_current_is_left_alone(enforcing):
    """Someone else wrote the key after us: hiding 'ours' would hide theirs, so nothing."""
    host = enforcing.backend("host")
    ours = host.put_stream("images/k.png", io.BytesIO(b"ours"))
    theirs = host.put_stream("images/k.png", io.BytesIO(b"theirs"))
    host._remove_version("images/k.png", ours.version_id)
    assert host.head("images/k.png").version_id == theirs.version_id
    assert host.read_all("images/k.png") == b"theirs"


def test_a_version_already_hidden_is_left_alone(enforcing):
    host = enforcing.backend("host")
    ours = host.put_stream("images/gone.png", io.BytesIO(b"ours"))
    host.delete("images/gone.png")
    host._remove_version("images/gone.png", ours.version_id)
    versions, markers = enforcing.versions("images/gone.png")
    assert versions == [ours.version_id]
    assert len(markers) == 1


def test_the_runtime_role_holds_the_same_statements_as_the_host_user(storage_template):
    """So the moto user above stands for both everyday principals."""
    role = _policy_of(storage_template, "RuntimeAccessRole")
    user = _policy_of(storage_template, "RuntimeAccessHostUser")
    assert role["Statement"] == user["Statement"]
    actions = {a for s in user["Statement"] for a in s["Action"]}
    assert "s3:DeleteObjectVersion" not in actions

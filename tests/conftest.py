"""Test-wide isolation: nothing in the suite may reach a real AWS account.

Set at import time, before any AWS client is created or the CDK is loaded.
"""

import os
import shutil
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests.helpers import free_port, running

# jsii runs `node` from PATH: take the virtualenv's Node 24, however pytest was started.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
os.environ.update(
    {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
)
for variable in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(variable, None)


# --- needs_root: tests that install Debian packages, start Nginx, mount or boot a container --

NEEDS_ROOT = "needs root (apt-get, Nginx, mount, systemd-nspawn)"


@pytest.hookimpl(trylast=True)  # after `-m` deselected what it deselects
def pytest_collection_modifyitems(config, items):
    """As a user, a selected needs_root test is an error where sudo could run it (CI must
    not go green by leaving it out) and a skip only where neither root nor sudo exists."""
    if os.geteuid() == 0:
        return
    privileged = [item for item in items if item.get_closest_marker("needs_root")]
    if not privileged:
        return
    if shutil.which("sudo"):
        raise pytest.UsageError(
            f"{NEEDS_ROOT}: {len(privileged)} selected tests, e.g. {privileged[0].nodeid}. "
            "Run them as root with `make test-root` (sudo -E), the others with "
            "`make test-user` (-m 'not needs_root')"
        )
    skip = pytest.mark.skip(reason=f"{NEEDS_ROOT}: this machine has neither root nor sudo")
    for item in privileged:
        item.add_marker(skip)


# --- moto's server: the S3 (and DynamoDB, KMS) API for every test that needs one -----------

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory) -> str:
    """moto's server on a loopback port: real HTTP, real boto3 signing."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with running(
        [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log=log,
        ready_url=f"{url}/moto-api/",
    ):
        yield url


@pytest.fixture(scope="session")
def aws_env(moto_url) -> dict[str, str]:
    """Environment that points boto3 (in this process and in children) at moto."""
    env = {
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    os.environ.update(env)
    return env


@pytest.fixture
def bucket(aws_env, moto_url) -> str:
    """A fresh versioned bucket for each test."""
    name = f"stowage-test-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name

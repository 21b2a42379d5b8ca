"""A host-only deployment's host variables expect no bucket: the vars plugin gives no bucket
name, the dynamic inventory finds no S3 key secret in the host-only Lightsail stack, and the
runtime role's env file (rendered by the role's own tasks) holds no S3 settings or key."""

from __future__ import annotations

import getpass
import grp
import json
import os
import sys

import boto3
import pytest

from stacks.config import load_config
from tests.ansible.test_inventory import STATIC, host_vars, inventory_list
from tests.ansible.test_roles import ansible
from tests.cdk.conftest import synthesize

CREDENTIALS = {"aws_access_key_id": "AKIAHOSTKEY000000000", "aws_secret_access_key": "s" * 40}


def test_the_vars_plugin_gives_a_host_only_deployment_no_bucket():
    found = host_vars(
        inventory_list(STATIC, STOWAGE_DEPLOYMENT="host-only"), "stowage-example-host"
    )
    assert found["stowage_cloud_storage"] is False
    assert found["stowage_s3_bucket"] == ""
    assert found["stowage_deployment"] == "stowage-host"
    assert found["stowage_storage_root"] == "/srv/stowage"
    both = host_vars(inventory_list(STATIC, STOWAGE_DEPLOYMENT="example"), "stowage-example-host")
    assert both["stowage_cloud_storage"] is True
    assert both["stowage_s3_bucket"] == "stowage-example-media-123456789012-eu-west-1"


@pytest.fixture(scope="module")
def lightsail_outputs(tmp_path_factory) -> dict[str, list[str]]:
    """The output names of each config's synthesized Lightsail stack."""
    return {
        name: list(
            synthesize(load_config(name), tmp_path_factory.mktemp(name)).templates["Lightsail"][
                "Outputs"
            ]
        )
        for name in ("host-only", "example")
    }


@pytest.fixture
def deploy_lightsail_stack(moto_url):
    """Creates stacks in moto with a synthesized template's outputs, as CloudFormation
    reports them after a deploy; deletes them afterwards (moto is shared by the session)."""
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_url)
    created = []

    def deploy(app_name: str, outputs: list[str], secret_arn: str) -> None:
        cloudformation.create_stack(
            StackName=f"{app_name}-lightsail",
            TemplateBody=json.dumps(template(app_name, outputs, secret_arn)),
        )
        created.append(f"{app_name}-lightsail")

    yield deploy
    for name in created:
        cloudformation.delete_stack(StackName=name)


def template(app_name: str, outputs: list[str], secret_arn: str) -> dict:
    values = {
        "StaticIpAddress": "127.0.0.1",
        "InstanceName": f"{app_name}-host",
        "SshUser": "admin",
        "DataDiskPath": "none",
        "HostCredentialsSecretArn": secret_arn,
    }
    return {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": values[name]} for name in outputs},
    }


def write_env_file(tmp_path, deployment: str, env: dict[str, str]) -> dict[str, str]:
    """Run the runtime role's env tasks on this machine (local connection) with the variables
    site.yml passes, and return the env file it wrote."""
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    playbook = tmp_path / "env.yml"
    playbook.write_text(
        f"""
- name: Write the runtime env file only
  hosts: stowage
  connection: local
  gather_facts: false
  tasks:
    - name: Run the runtime role's env tasks
      ansible.builtin.include_role:
        name: runtime
        tasks_from: env
      vars:
        runtime_config_dir: {config_dir}
        runtime_user: {getpass.getuser()}
        runtime_group: {grp.getgrgid(os.getgid()).gr_name}
        runtime_s3_region: "{{{{ stowage_region }}}}"
        runtime_s3_bucket: "{{{{ stowage_s3_bucket }}}}"
    # No service here to restart: end before the role's handler runs.
    - name: Stop before handlers
      ansible.builtin.meta: end_play
"""
    )
    result = ansible(
        "ansible-playbook",
        "-i",
        "inventory/stowage.py",
        str(playbook),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        STOWAGE_DEPLOYMENT=deployment,
        **env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (config_dir / "stowage.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_a_host_only_host_gets_no_s3_settings_and_no_key_lookup(
    tmp_path, aws_env, moto_url, lightsail_outputs, deploy_lightsail_stack
):
    deploy_lightsail_stack("stowage-host", lightsail_outputs["host-only"], "")
    env = {
        **aws_env,
        "AWS_ENDPOINT_URL_CLOUDFORMATION": moto_url,
        # Any Secrets Manager lookup would fail the play: nothing listens here.
        "AWS_URL": "http://127.0.0.1:9",
    }
    written = write_env_file(tmp_path, "host-only", env)
    assert written["STOWAGE_STORAGE_MODE"] == "local"
    assert not [name for name in written if name.startswith(("AWS_", "STOWAGE_S3_"))], written


def test_a_host_with_cloud_storage_gets_its_bucket_and_key(
    tmp_path, aws_env, moto_url, lightsail_outputs, deploy_lightsail_stack
):
    """The control: the same tasks on the "both" example do look up the key and write the
    bucket, so the test above can fail."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_url)
    secret = secrets.create_secret(
        Name="stowage-example-host-credentials", SecretString=json.dumps(CREDENTIALS)
    )
    deploy_lightsail_stack("stowage-example", lightsail_outputs["example"], secret["ARN"])
    env = {
        **aws_env,
        "AWS_ENDPOINT_URL_CLOUDFORMATION": moto_url,
        # amazon.aws plugins take their endpoint from AWS_URL, not boto3's variables.
        "AWS_URL": moto_url,
    }
    try:
        written = write_env_file(tmp_path, "example", env)
    finally:
        secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
    assert written["STOWAGE_S3_BUCKET"] == "stowage-example-media-123456789012-eu-west-1"
    assert written["AWS_ACCESS_KEY_ID"] == CREDENTIALS["aws_access_key_id"]

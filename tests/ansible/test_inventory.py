"""Where the host and its settings come from: the vars plugin (config/NAME.yaml -> group
variables) under both inventories, and the dynamic inventory against CloudFormation (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from tests.ansible.test_roles import ANSIBLE_DIR, ansible

STATIC = "inventory/example.static.yml"


def inventory_list(inventory: str, **env: str) -> subprocess.CompletedProcess:
    return ansible("ansible-inventory", "-i", inventory, "--list", **env)


def host_vars(result: subprocess.CompletedProcess, host: str) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout, object_hook=_plain)["_meta"]["hostvars"][host]


def _plain(value: dict):
    """ansible-inventory marks values from plugins as {"__ansible_unsafe": value}."""
    return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else value


def test_the_static_inventory_gets_the_deployment_settings_from_the_config():
    found = host_vars(inventory_list(STATIC, STOWAGE_DEPLOYMENT="example"), "stowage-example-host")
    assert found["ansible_host"] == "203.0.113.10"
    assert found["stowage_storage_root"] == "/srv/stowage"
    assert found["stowage_max_upload_mb"] == 2048
    assert found["stowage_temp_expiry_hours"] == 24
    assert found["stowage_disk_alert_threshold_percent"] == 80
    assert found["stowage_domain"] == ""
    assert found["stowage_public_base_url"] == ""  # site.yml falls back to http://HOST
    assert found["stowage_data_disk_device"] == ""
    assert found["stowage_s3_bucket"] == "stowage-example-media-123456789012-eu-west-1"
    assert found["stowage_storage_prefixes"] == [
        "videos",
        "images",
        "transcripts",
        "processed",
        "temp",
    ]


def test_another_config_changes_the_settings(tmp_path):
    source = (ANSIBLE_DIR.parent / "config/example.yaml").read_text()
    changed = (
        source.replace("storage_root: /srv/stowage", "storage_root: /data/media")
        .replace("data_disk_size_gb: 0", "data_disk_size_gb: 100")
        .replace("max_upload_mb: 2048", "max_upload_mb: 512\n  domain_name: media.example.com")
    )
    path = tmp_path / "other.yaml"
    path.write_text(changed)
    found = host_vars(inventory_list(STATIC, STOWAGE_DEPLOYMENT=str(path)), "stowage-example-host")
    assert found["stowage_storage_root"] == "/data/media"
    assert found["stowage_data_disk_device"] == "/dev/xvdf"
    assert found["stowage_max_upload_mb"] == 512
    assert found["stowage_domain"] == "media.example.com"
    assert found["stowage_public_base_url"] == "https://media.example.com"
    assert found["stowage_certbot_email"] == "ops@example.com"


def test_an_invalid_config_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    source = (ANSIBLE_DIR.parent / "config/example.yaml").read_text()
    path.write_text(source.replace("max_upload_mb: 2048", "max_upload_mb: -1"))
    result = inventory_list(STATIC, STOWAGE_DEPLOYMENT=str(path))
    output = result.stdout + result.stderr
    assert "lightsail.max_upload_mb" in output, output


@pytest.fixture
def lightsail_stack(aws_env, moto_url):
    """The Lightsail stack's outputs as CloudFormation (moto) reports them after a deploy."""
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "StaticIpAddress": {"Value": "198.51.100.7"},
            "InstanceName": {"Value": "stowage-example-host"},
            "SshUser": {"Value": "admin"},
            "DataDiskPath": {"Value": "none"},
            "HostCredentialsSecretArn": {
                "Value": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:host-AbCdEf"
            },
        },
    }
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_url)
    cloudformation.create_stack(
        StackName="stowage-example-lightsail", TemplateBody=json.dumps(template)
    )
    yield {**aws_env, "AWS_ENDPOINT_URL_CLOUDFORMATION": moto_url}
    cloudformation.delete_stack(StackName="stowage-example-lightsail")


def test_the_dynamic_inventory_finds_the_host_from_the_stack_outputs(lightsail_stack):
    found = host_vars(
        inventory_list("inventory/stowage.py", STOWAGE_DEPLOYMENT="example", **lightsail_stack),
        "stowage-example-host",
    )
    assert found["ansible_host"] == "198.51.100.7"
    assert found["ansible_user"] == "admin"
    assert found["runtime_s3_credentials_secret_arn"].endswith(":secret:host-AbCdEf")
    assert found["stowage_storage_root"] == "/srv/stowage"  # and the config's settings too


def test_the_dynamic_inventory_explains_a_missing_stack(aws_env, moto_url):
    result = subprocess.run(
        [sys.executable, str(ANSIBLE_DIR / "inventory/stowage.py"), "--list"],
        env={**os.environ, "AWS_ENDPOINT_URL_CLOUDFORMATION": moto_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot find the host of 'example' (stack lookup)" in result.stderr
    assert "stowage-example-lightsail" in result.stderr

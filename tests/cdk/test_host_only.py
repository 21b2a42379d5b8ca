"""Host-only deployments (config/host-only.yaml): the Lightsail host with its alarm topic
and budget, and nothing that S3, KMS or DynamoDB would bill."""

from __future__ import annotations

import pytest

from stacks.config import ConfigError, load_config
from tests.cdk.test_config import config_error, write_config

CLOUD_STORE_TYPES = ("AWS::S3::", "AWS::KMS::", "AWS::DynamoDB::", "AWS::CloudFront::")


def resource_types(synthesized) -> dict[str, set[str]]:
    return {
        stack: {resource["Type"] for resource in template["Resources"].values()}
        for stack, template in synthesized.templates.items()
    }


def test_host_only_has_no_bucket_key_table_or_cdn(host_only):
    types = resource_types(host_only)
    assert set(types) == {"Alerts", "Lightsail"}
    for stack, kinds in types.items():
        assert not [t for t in kinds if t.startswith(CLOUD_STORE_TYPES)], (stack, kinds)
    assert "AWS::Lightsail::Instance" in types["Lightsail"]


def test_the_example_still_has_its_cloud_store(example):
    """The same check finds the store where there is one (the assertion above can fail)."""
    kinds = set().union(*resource_types(example).values())
    assert {"AWS::S3::Bucket", "AWS::KMS::Key", "AWS::DynamoDB::GlobalTable"} <= kinds


def test_host_only_keeps_an_alarm_topic_and_a_budget(host_only):
    alerts = host_only.template("Alerts")
    alerts.resource_count_is("AWS::SNS::Topic", 1)
    alerts.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    alerts.has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": {
                # Not "{app}-monthly": the retiring Storage stack may still hold that name.
                "BudgetName": "stowage-host-host-monthly",
                "BudgetLimit": {"Amount": 15, "Unit": "USD"},
                "BudgetType": "COST",
            }
        },
    )
    topic = host_only.templates["Alerts"]["Resources"]
    (policy,) = [r for r in topic.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    principals = {s["Principal"].get("Service") for s in statements if s["Effect"] == "Allow"}
    assert {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"} <= principals
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s) for s in statements)


def test_host_only_host_publishes_no_s3_credentials(host_only, example):
    """The dynamic inventory reads the host key's secret from this output: host-only has
    none, so Ansible looks nothing up and writes no S3 key."""
    assert "HostCredentialsSecretArn" not in host_only.templates["Lightsail"]["Outputs"]
    assert "HostCredentialsSecretArn" in example.templates["Lightsail"]["Outputs"]


def test_the_host_resources_keep_their_construct_ids(host_only, example):
    """Moving a deployment to host-only must update the Lightsail stack, not replace it."""
    host_ids = set(host_only.templates["Lightsail"]["Resources"])
    example_ids = set(example.templates["Lightsail"]["Resources"])
    assert host_ids == example_ids


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"cdn": {"enabled": True}}, "cdn.enabled", "CloudFront serves the media bucket"),
        ({"replica": {"region": "eu-central-1"}}, "replica", "copies the media bucket"),
        ({"lightsail": None}, "lightsail.enabled", "must be true when storage.enabled"),
        ({"storage": {"enable": False}}, "storage.enable", "unknown field"),
    ],
)
def test_host_only_rules_name_the_field(tmp_path, change, field, reason):
    data = load_config("host-only").model_dump(mode="json") | change
    message = config_error(tmp_path, data)
    assert f"  {field}: " in message, message
    assert reason in message.split(f"  {field}: ", 1)[1].splitlines()[0]


def test_host_only_config_loads(tmp_path):
    config = load_config("host-only")
    assert config.host_only
    assert not config.cdn.enabled
    assert config.replica is None
    assert not load_config("example").host_only
    with pytest.raises(ConfigError):
        load_config(write_config(tmp_path, {"storage": {"enabled": "sometimes"}}))

"""Runtime access: the compute role, the Lightsail host's user and key, and the separate
principal that may destroy versions (docs/security.md, "Cloud topology")."""

import json

import pytest
from aws_cdk.assertions import Match

from tests.cdk.test_storage_stack import as_list, only, statements


def test_runtime_role_is_for_compute_that_assumes_roles(storage):
    _, role = only(storage, "AWS::IAM::Role", {"Description": Match.string_like_regexp("runtime")})
    services = {
        service
        for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in as_list(s["Principal"]["Service"])
    }
    assert services == {"ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "lambda.amazonaws.com"}


def runtime_principal(storage, resource_type: str, description: str = "runtime") -> str:
    (grantee,) = [
        logical_id
        for logical_id, resource in storage.find_resources(resource_type).items()
        if logical_id.startswith("RuntimeAccess")
        and description in resource["Properties"].get("Description", "runtime")
    ]
    return grantee


@pytest.mark.parametrize("resource_type", ["AWS::IAM::Role", "AWS::IAM::User"])
def test_runtime_access_is_least_privilege(storage, resource_type):
    granted = statements(storage, runtime_principal(storage, resource_type))
    actions = {action for s in granted for action in as_list(s["Action"])}
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"} <= actions
    assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem"} <= actions
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions
    assert not {a for a in actions if a.endswith(":*") or a == "*"}, "no service-wide actions"
    for statement in granted:
        assert statement["Effect"] == "Allow"
        assert "*" not in as_list(statement["Resource"]), statement


@pytest.mark.parametrize("resource_type", ["AWS::IAM::Role", "AWS::IAM::User"])
def test_everyday_principals_cannot_destroy_versions(storage, resource_type):
    """The host's long-lived key (and the compute role) may delete, which in the versioned
    bucket leaves a delete marker; never remove a version for good."""
    actions = {
        action
        for s in statements(storage, runtime_principal(storage, resource_type))
        for action in as_list(s["Action"])
    }
    destroying = {
        "s3:DeleteObjectVersion",
        "s3:DeleteObject*",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketVersioning",
        "s3:DeleteBucket",
        "s3:BypassGovernanceRetention",
    }
    assert not actions & destroying
    assert not [a for a in actions if a.startswith("s3:") and "*" in a]


@pytest.mark.parametrize("resource_type", ["AWS::IAM::Role", "AWS::IAM::User"])
def test_kms_is_used_only_as_s3_and_dynamodb_need_it_through_them(storage, resource_type):
    key_id, _ = only(storage, "AWS::KMS::Key", {"Description": Match.string_like_regexp("media")})
    granted = statements(storage, runtime_principal(storage, resource_type))
    kms = [s for s in granted if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert len(kms) == 1
    (statement,) = kms
    assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:ViaService": ["s3.eu-west-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com"]
        }
    }


def test_every_kms_grant_in_the_deployment_goes_through_a_service(example):
    """No principal anywhere may call KMS directly: each statement names kms:ViaService, and
    none may ReEncrypt; Encrypt only for S3 replication into the replica key."""
    for stack_id, template in example.templates.items():
        for policy in template["Resources"].values():
            if policy["Type"] != "AWS::IAM::Policy":
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = as_list(statement["Action"])
                if not any(a.startswith("kms:") for a in actions):
                    continue
                assert "kms:ViaService" in json.dumps(statement.get("Condition")), stack_id
                assert "kms:ReEncrypt*" not in actions, stack_id
                if "kms:Encrypt" in actions:
                    assert "s3:ReplicateObject" in json.dumps(
                        policy["Properties"]["PolicyDocument"]
                    ), stack_id


def test_migration_rollback_has_a_principal_of_its_own(storage):
    """What may destroy versions (rolling back a migration into the versioned bucket) is a
    separate role that only the account's admins can assume (docs/migration-runbook.md)."""
    role_id = runtime_principal(storage, "AWS::IAM::Role", "rollback")
    _, role = only(storage, "AWS::IAM::Role", {"Description": Match.string_like_regexp("rollback")})
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    }
    assert role["Properties"]["MaxSessionDuration"] == 3600
    actions = {a for s in statements(storage, role_id) for a in as_list(s["Action"])}
    assert "s3:DeleteObjectVersion" in actions
    assert not actions & {"s3:PutObject", "s3:DeleteObject"}
    assert "MigrationRollbackRoleArn" in storage.to_json()["Outputs"]


def test_host_access_key_is_kept_in_secrets_manager_not_in_the_template(storage):
    key_id, key = only(storage, "AWS::IAM::AccessKey")
    user_id, _ = only(storage, "AWS::IAM::User")
    assert key["Properties"] == {"Serial": 1, "UserName": {"Ref": user_id}}
    _, secret = only(storage, "AWS::SecretsManager::Secret")
    secret_string = json.dumps(secret["Properties"]["SecretString"])
    assert f'"Ref": "{key_id}"' in secret_string
    assert f'"Fn::GetAtt": ["{key_id}", "SecretAccessKey"]' in secret_string

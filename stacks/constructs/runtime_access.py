"""Credentials for the Stowage runtime: a role for AWS compute, an access key for Lightsail."""

from aws_cdk import Duration, SecretValue, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.constructs.nag import acknowledge, finding_text

# Object-level S3 actions of the everyday principals: no s3:DeleteObjectVersion (nor any
# other action that destroys a version) -- a plain delete leaves a delete marker, undoable.
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUCKET_ACTIONS = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
]
# What the rollback of a migration into a versioned bucket needs on top of reading.
ROLLBACK_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"]
CATALOG_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
]
# SSE-KMS reads need Decrypt, writes GenerateDataKey (multipart: both); nothing else.
KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]
_KEY_WILDCARD = (
    "Action::kms:GenerateDataKey*",
    "GenerateDataKey and GenerateDataKeyWithoutPlaintext for SSE-KMS writes, on the one"
    " customer key and only through S3 and DynamoDB (kms:ViaService).",
)


class RuntimeAccess(Construct):
    """Least-privilege access to the media bucket, its key and the catalog table.

    None of the everyday principals may destroy an object version; ``rollback_role`` may,
    for rolling back a migration into the versioned bucket (docs/migration-runbook.md).

    ``role`` is for compute that can assume roles (EC2, ECS tasks, Lambda). ``user`` is for a
    Lightsail host, which cannot: its access key lives in ``credentials_secret``. Bump
    ``credentials_serial`` to issue a new key (the old one is deleted on the same deploy).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        media_bucket: s3.IBucket,
        catalog_table: dynamodb.ITableV2,
        credentials_serial: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            description="Stowage runtime on AWS compute: media bucket, key and catalog.",
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("ec2.amazonaws.com"),
                iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                iam.ServicePrincipal("lambda.amazonaws.com"),
            ),
        )
        self.user = iam.User(self, "HostUser")
        for grantee in (self.role, self.user):
            _grant_media(grantee, media_bucket, catalog_table, OBJECT_ACTIONS)
        self.rollback_role = iam.Role(
            self,
            "MigrationRollbackRole",
            description="Stowage migration rollback: may delete object versions for good."
            " Assumed by the account's admins only for `stowage rollback`.",
            assumed_by=iam.AccountRootPrincipal(),
            max_session_duration=Duration.hours(1),
        )
        _grant_media(self.rollback_role, media_bucket, catalog_table, ROLLBACK_ACTIONS)

        access_key = iam.AccessKey(self, "HostAccessKey", user=self.user, serial=credentials_serial)
        self.credentials_secret = secretsmanager.Secret(
            self,
            "HostCredentials",
            description="S3 access key of the Stowage Lightsail host (write to its env file).",
            secret_object_value={
                "aws_access_key_id": SecretValue.unsafe_plain_text(access_key.access_key_id),
                "aws_secret_access_key": access_key.secret_access_key,
            },
        )
        acknowledge(
            self.credentials_secret,
            "AwsSolutions-SMG4",
            "The secret holds an IAM access key, which Secrets Manager cannot rotate by itself;"
            " it is rotated by bumping host_credentials_serial (runbook in docs/).",
        )
        resource_wildcards = {
            f"Resource::{finding_text(self, media_bucket.arn_for_objects('*'))}": (
                "The runtime reads and writes any object under the bucket's prefixes."
            ),
            f"Resource::{finding_text(self, catalog_table.table_arn)}/index/*": (
                "The runtime queries the catalog's ByKey, ByPrefix and TempByExpiry indexes."
            ),
        }
        for grantee in (self.role, self.user, self.rollback_role):
            for finding, reason in dict([_KEY_WILDCARD], **resource_wildcards).items():
                acknowledge(grantee, f"AwsSolutions-IAM5[{finding}]", reason)


def _grant_media(
    grantee: iam.IGrantable,
    bucket: s3.IBucket,
    table: dynamodb.ITableV2,
    object_actions: list[str],
) -> None:
    """Hand-written rather than ``grant_read_write``: those grants add s3:DeleteObject*
    (version destruction) and kms:Encrypt/ReEncrypt* without kms:ViaService."""
    stack = Stack.of(bucket)
    principal = grantee.grant_principal
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=BUCKET_ACTIONS, resources=[bucket.bucket_arn])
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=object_actions, resources=[bucket.arn_for_objects("*")])
    )
    table.grant(grantee, *CATALOG_ACTIONS)
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=KEY_ACTIONS,
            resources=[bucket.encryption_key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": [
                        f"s3.{stack.region}.amazonaws.com",
                        f"dynamodb.{stack.region}.amazonaws.com",
                    ]
                }
            },
        )
    )

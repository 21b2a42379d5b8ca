"""Credentials for the Stowage runtime: a role for AWS compute, an access key for Lightsail."""

from aws_cdk import SecretValue
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.constructs.nag import acknowledge, finding_text

# What the grants below expand to, and why each wildcard is as narrow as the API allows.
_GRANT_WILDCARDS = {
    "Action::s3:GetObject*": "grant_read: GetObject, GetObjectVersion and their attributes;"
    " the runtime serves objects and migration restores versions.",
    "Action::s3:GetBucket*": "grant_read: bucket location and versioning state, read by the"
    " S3 client and migration.",
    "Action::s3:List*": "grant_read: ListBucket and ListBucketVersions for prefix listings,"
    " reindexing and migration planning.",
    "Action::s3:DeleteObject*": "grant_read_write: cleanup deletes temp objects; rollback"
    " deletes the versions a migration created.",
    "Action::s3:Abort*": "grant_read_write: AbortMultipartUpload for resumable uploads that"
    " are cancelled.",
    "Action::kms:GenerateDataKey*": "Bucket and table grants: data keys for SSE-KMS writes,"
    " limited to the one customer key.",
    "Action::kms:ReEncrypt*": "Bucket and table grants on the one customer key: S3 copies"
    " between prefixes re-encrypt under the same key.",
}


class RuntimeAccess(Construct):
    """Least-privilege access to the media bucket, its key and the catalog table.

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
            media_bucket.grant_read_write(grantee)
            catalog_table.grant_read_write_data(grantee)

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
        for grantee in (self.role, self.user):
            for finding, reason in {**_GRANT_WILDCARDS, **resource_wildcards}.items():
                acknowledge(grantee, f"AwsSolutions-IAM5[{finding}]", reason)

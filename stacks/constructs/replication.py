"""The role S3 assumes to replicate SSE-KMS media into the replica region."""

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.nag import acknowledge, finding_text


class ReplicationRole(Construct):
    """Least-privilege replication role, scoped tighter than the one aws-s3 would generate.

    The generated role allows ``kms:Encrypt`` on every key (``Resource: *``) when the replica
    key lives in another region; this one allows only the replica key, found by its alias,
    and only through S3 in the regions involved.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        replica_bucket: s3.IBucket,
        replica_region: str,
        replica_key_alias: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description="S3 replication of the media bucket into the replica bucket.",
        )
        self._replica_objects = replica_bucket.arn_for_objects("*")
        self._replica_keys = Stack.of(self).format_arn(
            service="kms", region=replica_region, resource="key", resource_name="*"
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                resources=[self._replica_objects],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self._replica_keys],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": replica_key_alias},
                },
            )
        )

    def allow_source(self, source_bucket: s3.IBucket, source_key: kms.IKey) -> None:
        """Let the role read (and decrypt) what it replicates; call once the bucket exists."""
        source_objects = source_bucket.arn_for_objects("*")
        for statement in (
            iam.PolicyStatement(
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[source_bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[source_objects],
            ),
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[source_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}
                },
            ),
        ):
            self.role.add_to_principal_policy(statement)

        policy = self.role.node.find_child("DefaultPolicy")
        for resource, reason in (
            (source_objects, "Replication reads every object version of the source bucket."),
            (self._replica_objects, "Replication writes every replicated object to the replica."),
            (
                self._replica_keys,
                "The replica key lives in another region and stack, so it is matched by its"
                " alias (kms:ResourceAliases) and kms:ViaService rather than by key id.",
            ),
        ):
            acknowledge(
                policy, f"AwsSolutions-IAM5[Resource::{finding_text(self, resource)}]", reason
            )

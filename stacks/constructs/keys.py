"""Customer-managed KMS keys."""

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


def customer_key(scope: Construct, construct_id: str, *, alias: str, description: str) -> kms.Key:
    """A symmetric key with yearly rotation, retained on stack deletion.

    The key policy holds only CDK's default statement (the account may delegate use through
    IAM); every principal gets its rights through grants on its own IAM policy, so each role
    holds exactly the actions it needs.
    """
    # Stateful: deleting the key would make every object encrypted under it unreadable.
    return kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        rotation_period=Duration.days(365),
        removal_policy=RemovalPolicy.RETAIN,
        pending_window=Duration.days(30),
    )

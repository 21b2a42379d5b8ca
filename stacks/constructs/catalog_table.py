"""The runtime's object catalog in DynamoDB, for when the service runs on several hosts.

Access patterns (docs/storage-design.md explains each):
- get one object by id                      -> table, partition key ``id``
- find the object stored under a key        -> guard item ``id = "key#<key>"`` (unique,
                                               written in the same transaction as the row)
- list a prefix in creation order, paged    -> index ``ByPrefix`` (``prefix``, ``created``)
- temp objects by expiry, for cleanup       -> sparse index ``TempByExpiry`` (``temp``,
                                               ``expires_at``); TTL also expires the rows
The runtime's ``stowage.catalog.dynamodb`` reads and writes exactly these names.
"""

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

PARTITION_KEY = "id"
TTL_ATTRIBUTE = "expires_at"
BY_PREFIX_INDEX = "ByPrefix"
TEMP_BY_EXPIRY_INDEX = "TempByExpiry"


class CatalogTable(Construct):
    """On-demand table with point-in-time recovery, encrypted with the customer key."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        string = dynamodb.AttributeType.STRING
        # Stateful: retained and deletion-protected; the catalog maps ids to stored bytes.
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=string),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(encryption_key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=BY_PREFIX_INDEX,
                    partition_key=dynamodb.Attribute(name="prefix", type=string),
                    sort_key=dynamodb.Attribute(name="created", type=string),
                ),
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=TEMP_BY_EXPIRY_INDEX,
                    partition_key=dynamodb.Attribute(name="temp", type=string),
                    sort_key=dynamodb.Attribute(
                        name=TTL_ATTRIBUTE, type=dynamodb.AttributeType.NUMBER
                    ),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                ),
            ],
        )

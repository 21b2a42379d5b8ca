"""DashboardStack (primary region): the operations dashboard, graphing metrics of every
region they land in (README, "Dashboards")."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from constructs import Construct

from stacks.constructs.dashboard import (
    CdnRef,
    OperationsDashboard,
    ReplicationRuleRef,
)


class DashboardStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        bucket_name: str,
        table_name: str,
        replication_rules: Sequence[ReplicationRuleRef] = (),
        cdn: CdnRef | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.operations = OperationsDashboard(
            self,
            "Operations",
            app_name=app_name,
            bucket_name=bucket_name,
            table_name=table_name,
            replication_rules=replication_rules,
            cdn=cdn,
        )

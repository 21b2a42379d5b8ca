"""AlertsStack: the alarm topic and cost budget of a host-only deployment.

With cloud storage these live in StorageStack (construct ``Monitoring``). A host-only
deployment has no StorageStack, so this stack carries them alone: no bucket, no KMS key, no
table. Its budget has a name of its own so it can be created while a retiring StorageStack
(with its ``{app}-monthly`` budget) still exists.
"""

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.constructs.monitoring import Monitoring


class AlertsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        alarm_email: str,
        monthly_budget_usd: float,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            app_name=app_name,
            alarm_email=alarm_email,
            monthly_budget_usd=monthly_budget_usd,
            encrypted_topic=False,
            budget_name=f"{app_name}-host-monthly",
        )
        CfnOutput(
            self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn, description="Alarms"
        )

"""Builds every stack of one deployment config into a CDK app."""

from dataclasses import dataclass

from aws_cdk import App, Environment, Fn, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.alerts_stack import AlertsStack
from stacks.cdn_stack import CdnStack
from stacks.config import DeploymentConfig
from stacks.constructs.dashboard import CdnRef, ReplicationRuleRef
from stacks.dashboard_stack import CdnAlarmsStack, DashboardStack
from stacks.lightsail_stack import LightsailStack
from stacks.regions import EDGE_REGIONS_BY_PRICE_CLASS
from stacks.replica_stack import ReplicaStack
from stacks.storage_stack import StorageStack


@dataclass(frozen=True)
class Deployment:
    storage: StorageStack | None
    replica: ReplicaStack | None
    cdn: CdnStack | None
    lightsail: LightsailStack | None
    alerts: AlertsStack | None = None
    dashboard: DashboardStack | None = None
    cdn_alarms: CdnAlarmsStack | None = None


def _identity(
    config: DeploymentConfig,
    name: str,
    purpose: str,
    region: str | None = None,
    *,
    protected: bool = True,
) -> dict:
    """Name, description, account/region and termination protection of one stack."""
    return {
        "stack_name": f"{config.app_name}-{name}",
        "description": f"Stowage {config.app_name}: {purpose}",
        "env": Environment(account=config.account, region=region or config.primary_region),
        "termination_protection": protected,
    }


def add_stacks(app: App, config: DeploymentConfig) -> Deployment:
    """Instantiate the stacks ``config`` asks for, with cdk-nag AwsSolutions on all of them."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    Tags.of(app).add("stowage:app", config.app_name)
    for key, value in config.tags.items():
        Tags.of(app).add(key, value)

    if config.host_only:
        return _add_host_only(app, config)

    replica = None
    if config.replica is not None:
        replica = ReplicaStack(
            app,
            "Replica",
            **_identity(config, "replica", "replica bucket and key", config.replica.region),
            app_name=config.app_name,
            noncurrent_version_expiry_days=config.noncurrent_version_expiry_days,
            access_log_expiry_days=config.access_log_expiry_days,
            # The resizer stores variants in whichever bucket answered: the replica too.
            cdn_readable_prefixes=(
                [*config.prefixes.permanent, "variants/"] if config.cdn.enabled else None
            ),
        )

    storage = StorageStack(
        app,
        "Storage",
        **_identity(config, "storage", "media bucket, catalog, runtime access, alerts"),
        app_name=config.app_name,
        media_bucket_name=config.media_bucket_name,
        permanent_prefixes=config.prefixes.permanent,
        temp_prefix=config.prefixes.temp,
        temp_expiry_days=config.temp_expiry_days,
        noncurrent_version_expiry_days=config.noncurrent_version_expiry_days,
        access_log_expiry_days=config.access_log_expiry_days,
        cors_allowed_origins=config.cors_allowed_origins,
        alarm_email=config.alarm_email,
        monthly_budget_usd=config.monthly_budget_usd,
        bucket_5xx_alarm_threshold=config.bucket_5xx_alarm_threshold,
        host_credentials_serial=config.host_credentials_serial,
        replica_bucket=replica.replica_bucket if replica else None,
        replica_region=replica.region if replica else None,
        replica_key_alias=replica.replica_key_alias if replica else None,
        replication_time_control=bool(config.replica and config.replica.replication_time_control),
        replication_latency_alarm_seconds=(
            config.replica.latency_alarm_seconds if config.replica else 900
        ),
        cdn_enabled=config.cdn.enabled,
    )
    if replica is not None:
        storage.add_stack_dependency(replica, "Replication rules point at the replica bucket")
    cdn = None
    if config.cdn.enabled:
        # After Storage: the buckets (and their CloudFront grants) must exist first.
        cdn = CdnStack(
            app,
            "Cdn",
            **_identity(config, "cdn", "CloudFront for media and image variants", protected=False),
            app_name=config.app_name,
            cdn=config.cdn,
            media_bucket_name=storage.media_bucket_name,
            media_key_alias=storage.media_key_alias,
            permanent_prefixes=config.prefixes.permanent,
            temp_prefix=config.prefixes.temp,
            cors_allowed_origins=config.cors_allowed_origins,
            access_log_expiry_days=config.access_log_expiry_days,
            alarm_topic=storage.monitoring.topic,
            replica_bucket_name=replica.replica_bucket_name if replica else None,
            replica_region=config.replica.region if config.replica else None,
            replica_key_alias=replica.replica_key_alias if replica else None,
        )
        cdn.add_stack_dependency(storage, "CloudFront reads the media bucket")

    dashboard = _add_dashboard(app, config, storage, replica, cdn)
    cdn_alarms = None
    if cdn is not None:
        in_us_east_1 = config.primary_region == CdnAlarmsStack.REGION
        cdn_alarms = CdnAlarmsStack(
            app,
            "CdnAlarms",
            **_identity(
                config, "cdn-alarms", "CloudFront alarms", CdnAlarmsStack.REGION, protected=False
            ),
            cross_region_references=not in_us_east_1,
            app_name=config.app_name,
            distribution_id=cdn.distribution.distribution_id,
            cache_hit_rate_target_percent=config.cdn.cache_hit_rate_target_percent,
            alarm_topic=storage.monitoring.topic if in_us_east_1 else None,
            alarm_email=str(config.alarm_email),
        )
        cdn_alarms.add_stack_dependency(cdn, "Alarms on the distribution's metrics")

    host = None
    if config.lightsail is not None and config.lightsail.enabled:
        host = LightsailStack(
            app,
            "Lightsail",
            **_identity(config, "lightsail", "the single host"),
            app_name=config.app_name,
            host=config.lightsail,
            credentials_secret_arn=storage.runtime_access.credentials_secret.secret_arn,
        )
    return Deployment(
        storage=storage,
        replica=replica,
        cdn=cdn,
        lightsail=host,
        dashboard=dashboard,
        cdn_alarms=cdn_alarms,
    )


def _add_dashboard(
    app: App,
    config: DeploymentConfig,
    storage: StorageStack,
    replica: ReplicaStack | None,
    cdn: CdnStack | None,
) -> DashboardStack:
    rules = []
    if replica is not None:
        rules = [
            ReplicationRuleRef(storage.media_bucket_name, replica.replica_bucket_name, rule_id)
            for rule_id in storage.replication_rule_ids
        ]
    # Imported by export name (strong references): cfn-lint cannot type-check the weak
    # Fn::GetStackOutput references (cdk.json) inside the dashboard body's Fn::Join.
    dashboard = DashboardStack(
        app,
        "Dashboard",
        **_identity(config, "dashboard", "operations dashboard", protected=False),
        app_name=config.app_name,
        bucket_name=storage.media_bucket_name,
        table_name=Fn.import_value(storage.catalog_table_export),
        replication_rules=rules,
        cdn=CdnRef(
            distribution_id=Fn.import_value(cdn.distribution_id_export),
            resizer_function_name=Fn.import_value(cdn.resizer_metric_name_export),
            edge_regions=EDGE_REGIONS_BY_PRICE_CLASS[config.cdn.price_class],
        )
        if cdn
        else None,
    )
    dashboard.add_stack_dependency(storage, "Graphs the catalog table")
    if cdn is not None:
        dashboard.add_stack_dependency(cdn, "Graphs the distribution and the resizer")
    return dashboard


def _add_host_only(app: App, config: DeploymentConfig) -> Deployment:
    """The host, its alarm topic and its budget; no bucket, key, table or CDN (the config
    model guarantees a Lightsail host and no CDN or replica here)."""
    alerts = AlertsStack(
        app,
        "Alerts",
        **_identity(config, "alerts", "alarm topic and cost budget of the single host"),
        app_name=config.app_name,
        alarm_email=str(config.alarm_email),
        monthly_budget_usd=config.monthly_budget_usd,
    )
    host = LightsailStack(
        app,
        "Lightsail",
        **_identity(config, "lightsail", "the single host"),
        app_name=config.app_name,
        host=config.lightsail,
        credentials_secret_arn=None,
    )
    return Deployment(storage=None, replica=None, cdn=None, lightsail=host, alerts=alerts)

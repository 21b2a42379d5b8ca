"""LightsailStack: the single-host topology's instance, static IP, snapshots and data disk.

Lightsail has only L1 resources. Instance name, blueprint, bundle and zone are create-only:
changing one replaces the host (and needs a new name). The instance is retained on stack
deletion because deleting it deletes its automatic snapshots too.
"""

from __future__ import annotations

import ipaddress

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_lightsail as lightsail
from constructs import Construct

from stacks.config import LightsailConfig


def _port(port: int, **access) -> lightsail.CfnInstance.PortProperty:
    return lightsail.CfnInstance.PortProperty(
        from_port=port, to_port=port, protocol="tcp", **access
    )


def _daily_snapshots(resource: type, time_of_day: str) -> list:
    """The AutoSnapshot add-on of a CfnInstance or CfnDisk (each has its own property types)."""
    return [
        resource.AddOnProperty(
            add_on_type="AutoSnapshot",
            status="Enabled",
            auto_snapshot_add_on_request=resource.AutoSnapshotAddOnProperty(
                snapshot_time_of_day=time_of_day
            ),
        )
    ]


def _ssh_sources(cidrs: list[str]) -> dict[str, list[str]]:
    """IPv4 ranges go into ``Cidrs``, IPv6 ranges into ``Ipv6Cidrs`` (Lightsail keeps them
    apart, and an IPv6 range in ``Cidrs`` is refused or ignored)."""
    v4 = [c for c in cidrs if ipaddress.ip_network(c).version == 4]
    v6 = [c for c in cidrs if ipaddress.ip_network(c).version == 6]
    return {"cidrs": v4, **({"ipv6_cidrs": v6} if v6 else {})}


class LightsailStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app_name: str,
        host: LightsailConfig,
        credentials_secret_arn: str | None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        instance_name = f"{app_name}-host"
        disk = None
        if host.data_disk_size_gb:
            # Stateful: the media lives here when a data disk is configured.
            disk = lightsail.CfnDisk(
                self,
                "DataDisk",
                disk_name=f"{app_name}-media",
                size_in_gb=host.data_disk_size_gb,
                availability_zone=host.availability_zone,
                # A disk has its own automatic snapshots: the instance's do not include it.
                add_ons=_daily_snapshots(lightsail.CfnDisk, host.snapshot_time_of_day),
            )
            disk.apply_removal_policy(RemovalPolicy.RETAIN)

        # Stateful: the host, its local media and (with it) its automatic snapshots.
        self.instance = lightsail.CfnInstance(
            self,
            "Host",
            instance_name=instance_name,
            blueprint_id=host.blueprint_id,
            bundle_id=host.bundle_id,
            availability_zone=host.availability_zone,
            key_pair_name=host.key_pair_name,
            networking=lightsail.CfnInstance.NetworkingProperty(
                # Listing ports replaces Lightsail's defaults: SSH must be listed (restricted).
                ports=[
                    _port(22, **_ssh_sources(host.ssh_allowed_cidrs)),
                    _port(80, cidrs=["0.0.0.0/0"], ipv6_cidrs=["::/0"]),
                    _port(443, cidrs=["0.0.0.0/0"], ipv6_cidrs=["::/0"]),
                ]
            ),
            add_ons=_daily_snapshots(lightsail.CfnInstance, host.snapshot_time_of_day),
            hardware=lightsail.CfnInstance.HardwareProperty(
                disks=[
                    lightsail.CfnInstance.DiskProperty(
                        disk_name=disk.disk_name, path=host.data_disk_device
                    )
                ]
            )
            if disk
            else None,
        )
        self.instance.apply_removal_policy(RemovalPolicy.RETAIN)
        if disk:
            self.instance.add_dependency(disk)

        # Stateful: DNS records point at this address; a stack delete must not free it.
        self.static_ip = lightsail.CfnStaticIp(
            self, "StaticIp", static_ip_name=f"{app_name}-ip", attached_to=self.instance.ref
        )
        self.static_ip.apply_removal_policy(RemovalPolicy.RETAIN)

        outputs = [
            ("StaticIpAddress", self.static_ip.attr_ip_address, "Public address of the host"),
            ("InstanceName", self.instance.ref, "Lightsail instance"),
            ("SshUser", host.ssh_user, "Login user of the blueprint"),
            ("DataDiskPath", host.data_disk_device or "none", "Block device of the data disk"),
        ]
        # Host-only deployments have no bucket, so no S3 key: the dynamic inventory then
        # leaves S3 out of the host's env file.
        if credentials_secret_arn is not None:
            outputs.append(
                (
                    "HostCredentialsSecretArn",
                    credentials_secret_arn,
                    "Secret with the host's S3 access key (for migration)",
                )
            )
        for output_id, value, description in outputs:
            CfnOutput(self, output_id, value=value, description=description)

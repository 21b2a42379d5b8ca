"""LightsailStack (cdk-nag has no Lightsail rules, so every property is asserted here)."""

from __future__ import annotations

import pytest

from stacks.config import parse_config
from tests.cdk.conftest import example_data, synthesize
from tests.cdk.test_storage_stack import only


@pytest.fixture(scope="session")
def host(example):
    return example.template("Lightsail")


def test_instance_from_the_config_and_retained(host):
    _, instance = only(host, "AWS::Lightsail::Instance")
    props = instance["Properties"]
    assert props["InstanceName"] == "stowage-example-host"
    assert (props["BlueprintId"], props["BundleId"]) == ("debian_12", "small_3_0")
    assert props["AvailabilityZone"] == "eu-west-1a"
    assert props["KeyPairName"] == "stowage-admin"
    assert instance["DeletionPolicy"] == "Retain"  # its automatic snapshots go with it
    assert "UserData" not in props
    assert "Hardware" not in props  # no data disk configured


def test_ports_ssh_only_from_configured_networks(host):
    _, instance = only(host, "AWS::Lightsail::Instance")
    ports = {p["FromPort"]: p for p in instance["Properties"]["Networking"]["Ports"]}
    assert set(ports) == {22, 80, 443}
    assert ports[22]["Cidrs"] == ["203.0.113.0/24"]
    assert "Ipv6Cidrs" not in ports[22]
    for web in (80, 443):
        assert ports[web]["Cidrs"] == ["0.0.0.0/0"]
        assert ports[web]["Protocol"] == "tcp"
    assert "MonthlyTransfer" not in instance["Properties"]["Networking"]


def test_daily_snapshots_and_static_ip(host):
    instance_id, instance = only(host, "AWS::Lightsail::Instance")
    (add_on,) = instance["Properties"]["AddOns"]
    assert add_on["AddOnType"] == "AutoSnapshot"
    assert add_on["AutoSnapshotAddOnRequest"] == {"SnapshotTimeOfDay": "06:00"}
    _, static_ip = only(host, "AWS::Lightsail::StaticIp")
    assert static_ip["Properties"]["AttachedTo"] == {"Ref": instance_id}
    # DNS may still point at the address after a stack delete: never release it.
    assert static_ip["DeletionPolicy"] == "Retain"
    assert static_ip["UpdateReplacePolicy"] == "Retain"


def test_ipv6_ssh_ranges_go_into_ipv6_cidrs(tmp_path):
    data = example_data()
    data["lightsail"]["ssh_allowed_cidrs"] = ["203.0.113.0/24", "2001:db8:1::/48"]
    data["cdn"]["enabled"] = False
    data["replica"] = None
    template = synthesize(parse_config(data, "ipv6 ssh"), tmp_path).template("Lightsail")
    _, instance = only(template, "AWS::Lightsail::Instance")
    ports = {p["FromPort"]: p for p in instance["Properties"]["Networking"]["Ports"]}
    assert ports[22]["Cidrs"] == ["203.0.113.0/24"]
    assert ports[22]["Ipv6Cidrs"] == ["2001:db8:1::/48"]


def test_outputs_for_ansible(host):
    outputs = host.to_json()["Outputs"]
    assert set(outputs) >= {
        "StaticIpAddress",
        "InstanceName",
        "SshUser",
        "DataDiskPath",
        "HostCredentialsSecretArn",
    }
    assert outputs["SshUser"]["Value"] == "admin"
    assert "RuntimeAccessHostCredentials" in str(outputs["HostCredentialsSecretArn"]["Value"])


def test_data_disk_and_ubuntu(tmp_path):
    data = example_data()
    data["lightsail"] |= {"data_disk_size_gb": 120, "blueprint_id": "ubuntu_24_04"}
    data["cdn"]["enabled"] = False
    data["replica"] = None
    template = synthesize(parse_config(data, "disk"), tmp_path).template("Lightsail")
    disk_id, disk = only(template, "AWS::Lightsail::Disk")
    assert disk["Properties"]["SizeInGb"] == 120
    assert disk["DeletionPolicy"] == "Retain"
    assert disk["Properties"]["AddOns"] == [
        {
            "AddOnType": "AutoSnapshot",
            "Status": "Enabled",
            "AutoSnapshotAddOnRequest": {"SnapshotTimeOfDay": "06:00"},
        }
    ]
    _, instance = only(template, "AWS::Lightsail::Instance")
    assert instance["Properties"]["Hardware"]["Disks"] == [
        {"DiskName": "stowage-example-media", "Path": "/dev/xvdf"}
    ]
    assert disk_id in instance["DependsOn"]
    assert template.to_json()["Outputs"]["SshUser"]["Value"] == "ubuntu"


def test_no_host_when_disabled(tmp_path):
    data = example_data()
    data["lightsail"]["enabled"] = False
    data["cdn"]["enabled"] = False
    data["replica"] = None
    assert "Lightsail" not in synthesize(parse_config(data, "no-host"), tmp_path).templates

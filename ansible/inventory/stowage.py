#!/usr/bin/env python3
"""Dynamic inventory: the Lightsail host of one Stowage deployment.

``STOWAGE_DEPLOYMENT`` names the deployment config (default ``example``). The host is found
from the Lightsail stack's outputs (``STOWAGE_HOST_LOOKUP=stack``, the default) or from the
Lightsail API by the ``stowage:app`` tag (``STOWAGE_HOST_LOOKUP=tag``); the AWS credentials
and profile are the usual ones of boto3. The deployment's settings reach the host through
the vars plugin (plugins/vars/stowage_deployment.py), not from here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stacks.config import ConfigError, DeploymentConfig, load_config

GROUP = "stowage"


def from_stack(config: DeploymentConfig, session) -> dict:
    stack_name = f"{config.app_name}-lightsail"
    stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return {
        "name": outputs["InstanceName"],
        "ansible_host": outputs["StaticIpAddress"],
        "ansible_user": outputs["SshUser"],
        "runtime_s3_credentials_secret_arn": outputs.get("HostCredentialsSecretArn", ""),
    }


def from_tag(config: DeploymentConfig, session) -> dict:
    paginator = session.client("lightsail").get_paginator("get_instances")
    found = [
        instance
        for page in paginator.paginate()
        for instance in page["instances"]
        if {"key": "stowage:app", "value": config.app_name} in instance.get("tags", [])
    ]
    if len(found) != 1:
        raise LookupError(
            f"expected one Lightsail instance tagged stowage:app={config.app_name},"
            f" found {len(found)}"
        )
    instance = found[0]
    return {
        "name": instance["name"],
        "ansible_host": instance["publicIpAddress"],
        "ansible_user": instance["username"],
    }


def inventory(config: DeploymentConfig, lookup: str) -> dict:
    import boto3

    session = boto3.session.Session(region_name=config.primary_region)
    finder = {"stack": from_stack, "tag": from_tag}[lookup]
    host = finder(config, session)
    name = host.pop("name")
    return {GROUP: {"hosts": [name]}, "_meta": {"hostvars": {name: host}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--host")
    args = parser.parse_args(argv)
    if args.host:
        print("{}")  # every host variable is in _meta
        return 0
    name = os.environ.get("STOWAGE_DEPLOYMENT", "example")
    lookup = os.environ.get("STOWAGE_HOST_LOOKUP", "stack")
    if lookup not in ("stack", "tag"):
        print(f"STOWAGE_HOST_LOOKUP must be 'stack' or 'tag', not {lookup!r}", file=sys.stderr)
        return 2
    try:
        result = inventory(load_config(name), lookup)
    except ConfigError as exc:
        print(f"STOWAGE_DEPLOYMENT={name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # botocore errors, a missing stack or output, no matching tag
        print(f"cannot find the host of {name!r} ({lookup} lookup): {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

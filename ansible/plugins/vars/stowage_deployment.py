"""Vars plugin: the deployment config's values as variables of the ``stowage`` group.

The same ``config/NAME.yaml`` that the CDK app synthesizes from sets the host's temp expiry,
storage root, upload limit and domain, so each is written once. ``STOWAGE_DEPLOYMENT`` names
the config (a name under ``config/`` or a path; default ``example``). Works with any
inventory that puts the host in the ``stowage`` group, the dynamic one or a static file.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.plugins.vars import BaseVarsPlugin

DOCUMENTATION = """
    name: stowage_deployment
    short_description: Variables of the 'stowage' group from config/NAME.yaml
    description:
      - Loads the deployment config named by the STOWAGE_DEPLOYMENT environment variable and
        validates it with the CDK app's own model (stacks/config.py).
    options:
      stage:
        ini:
          - key: stage
            section: vars_stowage_deployment
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
"""

REPO_ROOT = Path(__file__).resolve().parents[3]
GROUP = "stowage"


@functools.cache
def deployment_vars(name_or_path: str) -> dict:
    """The ``stowage_*`` variables for one deployment config (raises ConfigError).

    Read once per run: Ansible asks a vars plugin again for every inventory source and
    playbook directory."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from stacks.config import load_config
    from stacks.edge_config import cloudfront_function_code, host_variant_config

    config = load_config(name_or_path)
    if config.lightsail is None:
        raise AnsibleError(f"deployment {config.app_name!r} has no 'lightsail' section")
    host = config.lightsail
    prefixes = [*config.prefixes.permanent, config.prefixes.temp]
    return {
        "stowage_deployment": config.app_name,
        "stowage_region": config.primary_region,
        # Host-only deployments have no bucket: empty keeps S3 out of the host's env file.
        "stowage_cloud_storage": config.storage.enabled,
        "stowage_s3_bucket": "" if config.host_only else config.media_bucket_name,
        "stowage_storage_root": host.storage_root,
        "stowage_storage_prefixes": [prefix.rstrip("/") for prefix in prefixes],
        "stowage_data_disk_device": host.data_disk_device or "",
        "stowage_max_upload_mb": host.max_upload_mb,
        "stowage_temp_expiry_hours": config.temp_expiry_hours,
        "stowage_disk_alert_threshold_percent": host.disk_alert_threshold_percent,
        "stowage_domain": host.domain_name or "",
        # Let's Encrypt's expiry notices go where the deployment's alarms go.
        "stowage_certbot_email": str(config.alarm_email),
        # Without a domain the playbook falls back to the host's address (site.yml).
        "stowage_public_base_url": f"https://{host.domain_name}" if host.domain_name else "",
        # Image variants on the host: the edge's resizer settings and CloudFront Function,
        # from the same cdn.variant_* values; empty when the host serves none.
        "stowage_image_variants": host_variant_config(config.cdn) if host.image_variants else {},
        "stowage_img_function": cloudfront_function_code(config.cdn) if host.image_variants else "",
        "stowage_private_prefixes": list(config.cdn.private_prefixes),
    }


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True

    def get_vars(self, loader, path, entities, cache=True):
        super().get_vars(loader, path, entities)
        if not any(isinstance(e, Group) and e.name == GROUP for e in entities):
            return {}
        name = os.environ.get("STOWAGE_DEPLOYMENT", "example")
        try:
            return copy.deepcopy(deployment_vars(name))
        except AnsibleError:
            raise
        except Exception as exc:  # ConfigError and friends: show the message, not a traceback
            raise AnsibleError(f"STOWAGE_DEPLOYMENT={name}: {exc}") from exc

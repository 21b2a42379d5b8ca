"""The host's variant settings come from the deployment config's cdn.variant_* values, the
same the edge is given: through the vars plugin, into the runtime role's files and the
service, which refuses to start on a config it cannot use."""

from __future__ import annotations

import json
import subprocess

import jinja2

from stacks.config import load_config
from stacks.edge_config import cloudfront_function_code, edge_handler_config
from tests.ansible.test_inventory import host_vars, inventory_list
from tests.ansible.test_roles import ANSIBLE_DIR
from tests.runtime.conftest import BIN, service_env


def test_the_host_gets_the_edges_resizer_settings_only_when_configured(tmp_path):
    source = (ANSIBLE_DIR.parent / "config/example.yaml").read_text()
    off = host_vars(inventory_list("inventory/example.static.yml"), "stowage-example-host")
    assert off["stowage_image_variants"] == {}
    assert off["stowage_img_function"] == ""

    changed = source.replace(
        "variant_widths: [320, 640, 800, 1280, 1920]", "variant_widths: [200, 800]"
    ).replace("image_variants: false", "image_variants: true")
    path = tmp_path / "variants.yaml"
    path.write_text(changed)
    found = host_vars(
        inventory_list("inventory/example.static.yml", STOWAGE_DEPLOYMENT=str(path)),
        "stowage-example-host",
    )
    cdn = load_config(str(path)).cdn
    edge = edge_handler_config(cdn, bucket="b", region="eu-west-1", kms_key_arn="k")
    host = found["stowage_image_variants"]
    assert host["widths"] == [200, 800]
    assert host == {k: v for k, v in edge.items() if k in host} | {"private_prefixes": []}
    assert set(edge) - set(host) == {
        "bucket",
        "region",
        "kms_key_arn",
        "replica_bucket",
        "replica_region",
    }
    assert found["stowage_img_function"] == cloudfront_function_code(cdn)
    assert '"widths": [200, 800]' in found["stowage_img_function"]


def test_the_env_file_names_the_variant_config_only_when_there_is_one():
    common = {
        "ansible_managed": "x",
        "runtime_storage_root": "/srv/stowage",
        "runtime_public_base_url": "http://h",
        "runtime_max_upload_mb": 1,
        "runtime_temp_expiry_hours": 24,
        "runtime_signed_url_ttl_seconds": 60,
        "runtime_log_level": "INFO",
        "__runtime_api_tokens": ["t" * 16],
        "runtime_signing_secret": "s" * 32,
        "runtime_disk_alert_webhook": "",
        "runtime_s3_bucket": "",
        "runtime_config_dir": "/etc/stowage",
        "runtime_variant_renders": 2,
        "runtime_variant_render_queue": 16,
    }
    env = jinja2.Environment(  # noqa: S701 - renders an env file, not HTML
        loader=jinja2.FileSystemLoader(ANSIBLE_DIR / "roles/runtime/templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
    )
    env.filters["comment"] = lambda text: f"# {text}"
    template = env.get_template("etc/stowage/stowage.env.j2")
    on = template.render(runtime_image_variants={"widths": [800]}, **common)
    assert "STOWAGE_VARIANTS_CONFIG=/etc/stowage/variants.json\n" in on
    assert "STOWAGE_VARIANT_RENDERS=2\n" in on
    off = template.render(runtime_image_variants={}, **common)
    assert "VARIANT" not in off


def test_the_service_refuses_to_start_on_a_broken_variant_config(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    config = tmp_path / "variants.json"
    for content, words in (
        ("{not json", "JSONDecodeError"),
        (json.dumps({"widths": [800]}), "source_prefixes"),
    ):
        config.write_text(content)
        env = service_env(root, 0, STOWAGE_VARIANTS_CONFIG=str(config))
        result = subprocess.run(
            [str(BIN / "stowage"), "serve", "--uds", str(tmp_path / "s.sock")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert "STOWAGE_VARIANTS_CONFIG" in result.stderr, result.stderr
        assert words in result.stderr
        assert "Traceback" not in result.stderr

"""Template snapshots: any change to what CloudFormation receives shows up in review.

Update deliberately with UPDATE below, then review the diff of tests/cdk/__snapshots__.
"""

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
ACCOUNT_ID = re.compile(r"\b\d{12}\b")
UPDATE = ".venv/bin/python -m pytest tests/cdk/test_snapshots.py --snapshot-update"


def masked(template: dict) -> dict:
    """Asset hashes change with any bundled byte and account ids with the deployment."""
    text = json.dumps(template, sort_keys=True)
    text = ASSET_HASH.sub("<asset-hash>", text)
    text = ACCOUNT_ID.sub("<account>", text)
    return json.loads(text)


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize(
    ("deployment", "stack_id"),
    [
        ("example", "Storage"),
        ("example", "Replica"),
        ("example", "Cdn"),
        ("example", "Lightsail"),
        ("example", "edge-lambda-stack-c816d30614d1dcf057a0c7c5a34b2c4fcba60ee04f"),
        ("single_region", "Storage"),
        ("example", "Dashboard"),
        ("example", "CdnAlarms"),
        ("host_only", "Alerts"),
        ("host_only", "Lightsail"),
    ],
)
def test_template_snapshot(request, snapshot_json, deployment, stack_id):
    template = request.getfixturevalue(deployment).templates[stack_id]
    assert masked(template) == snapshot_json, f"template changed; if intended, run: {UPDATE}"

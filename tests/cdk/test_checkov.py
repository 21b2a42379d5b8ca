"""checkov (pinned, in its own .venv-checkov) over every synthesized template: no finding
except those accepted, with their reasons, in checkov-skips.yaml; no stale acceptance."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cdk.conftest import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIPS = ROOT / "checkov-skips.yaml"
DEPLOYMENTS = ["example", "single_region", "private_images", "host_only"]
MIN_REASON_LENGTH = 40


def load_skips() -> list[dict]:
    skips = yaml.safe_load(SKIPS.read_text())
    for skip in skips:
        assert set(skip) == {"check", "resources", "reason"}, skip
        assert len(skip["reason"]) >= MIN_REASON_LENGTH, f"{skip['check']} needs a real reason"
    return skips


def run_checkov(outdirs: list[Path]) -> list[tuple[str, str]]:
    """(check id, "TEMPLATE:Type.LogicalId") of every failed check."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup`"
    directories = [arg for outdir in outdirs for arg in ("-d", str(outdir))]
    options = ["--framework", "cloudformation", "--output", "json", "--quiet"]
    offline = ["--skip-download", "--skip-results-upload"]
    result = subprocess.run(
        [str(CHECKOV), *directories, *options, *offline],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    failed = []
    for report in json_documents(result.stdout):
        if isinstance(report, dict) and "results" in report:
            for check in report["results"]["failed_checks"]:
                template = Path(check["file_path"]).name.removesuffix(".template.json")
                failed.append((check["check_id"], f"{template}:{check['resource']}"))
    return failed


def json_documents(text: str) -> list:
    """checkov prints one JSON document per directory, one after the other."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text.rstrip()):
        document, index = decoder.raw_decode(text, index)
        documents.extend(document if isinstance(document, list) else [document])
        while index < len(text) and text[index].isspace():
            index += 1
    return documents


def accepted(check_id: str, resource: str, skip: dict) -> bool:
    return check_id == skip["check"] and any(
        fnmatch.fnmatchcase(resource, pattern) for pattern in skip["resources"]
    )


@pytest.fixture(scope="module")
def findings(request) -> list[tuple[str, str]]:
    outdirs = [request.getfixturevalue(name).outdir for name in DEPLOYMENTS]
    return run_checkov(outdirs)


def test_checkov_finds_nothing_unaccepted(findings):
    skips = load_skips()
    open_findings = [
        (check_id, resource)
        for check_id, resource in findings
        if not any(accepted(check_id, resource, skip) for skip in skips)
    ]
    assert open_findings == []


def test_every_accepted_finding_still_exists(findings):
    for skip in load_skips():
        for pattern in skip["resources"]:
            assert any(
                check_id == skip["check"] and fnmatch.fnmatchcase(resource, pattern)
                for check_id, resource in findings
            ), f"stale checkov skip {skip['check']} for {pattern}"


def test_checkov_judges_for_real(tmp_path):
    """The gate is live: a bucket without encryption, logging or versioning is reported."""
    template = {
        "Resources": {"CarelessBucket": {"Type": "AWS::S3::Bucket", "Properties": {}}},
    }
    (tmp_path / "Careless.template.json").write_text(json.dumps(template))
    checks = {check_id for check_id, _ in run_checkov([tmp_path])}
    assert {"CKV_AWS_18", "CKV_AWS_21"} <= checks

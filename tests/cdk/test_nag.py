"""cdk-nag AwsSolutions: zero unacknowledged findings, and no acknowledgement without a finding."""

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

import stacks.constructs.nag as nag
from stacks.config import load_config
from stacks.deployment import add_stacks
from tests.cdk.conftest import CDK_CONTEXT

MIN_REASON_LENGTH = 40


def violations(outdir) -> list[tuple[str, str]]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == nag.PLUGIN
        for violation in violation_list(plugin)
        for construct in violation["violatingConstructs"]
    ]


def violation_list(plugin: dict) -> list[dict]:
    return [v for v in plugin["violations"] if v["severity"] in ("error", "warning")]


@pytest.mark.parametrize("deployment", ["example", "single_region", "private_images", "host_only"])
def test_no_unacknowledged_findings(request, deployment):
    synthesized = request.getfixturevalue(deployment)
    report = synthesized.outdir / "validation-report.json"
    if report.exists():
        assert violations(synthesized.outdir) == []


def synth_without_acknowledgements(tmp_path, monkeypatch, config) -> list[tuple[str, str, str]]:
    """Synthesize with acknowledgements switched off; return what the code acknowledged
    as (rule, construct path, reason)."""
    acknowledged: list[tuple[str, str, str]] = []

    class Recorder:
        def __init__(self, construct):
            self.path = construct.node.path

        def acknowledge(self, ack):
            acknowledged.append((ack.id.removeprefix(f"{nag.PLUGIN}::"), self.path, ack.reason))

    class NoAcknowledgements:
        @staticmethod
        def of(construct):
            return Recorder(construct)

    monkeypatch.setattr(nag, "Validations", NoAcknowledgements)
    app = cdk.App(outdir=str(tmp_path), context=CDK_CONTEXT, analytics_reporting=False)
    add_stacks(app, config)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    return acknowledged


def test_every_acknowledgement_answers_a_real_finding(tmp_path, monkeypatch):
    """Synthesize with acknowledgements switched off: the findings must be exactly the ones
    the code acknowledges, so none is stale and none is missing."""
    acknowledged = synth_without_acknowledgements(tmp_path, monkeypatch, load_config("example"))
    found = violations(tmp_path)
    assert found, "without acknowledgements cdk-nag must report findings"
    for rule, path in found:
        assert any(
            rule == ack_rule and (path == ack_path or path.startswith(ack_path + "/"))
            for ack_rule, ack_path, _ in acknowledged
        ), f"unacknowledged {rule} at {path}"
    for ack_rule, ack_path, reason in acknowledged:
        assert any(
            rule == ack_rule and (path == ack_path or path.startswith(ack_path + "/"))
            for rule, path in found
        ), f"stale acknowledgement {ack_rule} at {ack_path}"
        assert len(reason) >= MIN_REASON_LENGTH, f"{ack_rule} at {ack_path} needs a real reason"


def test_acknowledgements_say_what_the_policy_grants(tmp_path, monkeypatch):
    """The reasons are true: originals are read only from variant source prefixes (never
    "from variants/"), and no function claims a log scope its policy does not have."""
    acknowledged = synth_without_acknowledgements(tmp_path, monkeypatch, load_config("example"))
    resizer = [(rule, reason) for rule, path, reason in acknowledged if "VariantResizer" in path]
    for rule, reason in resizer:
        if reason.startswith("Originals are read from"):
            assert rule.endswith("/images/*]"), (rule, reason)
        if rule.endswith("/variants/*]"):
            assert "written under variants/" in reason, reason
            assert "are read" not in reason, reason
    assert not [reason for rule, path, reason in acknowledged if "read from variants/" in reason]
    invalidator = [
        (rule, reason) for rule, path, reason in acknowledged if "VariantInvalidator" in path
    ]
    assert not [rule for rule, _ in invalidator if rule.startswith("AwsSolutions-IAM4")]
    (logs,) = [reason for rule, reason in invalidator if "VariantInvalidatorLogs" in rule]
    assert "own log group" in logs


def test_a_new_unsafe_resource_fails_synthesis(tmp_path):
    """The gate is live: an unencrypted, unlogged, HTTP-allowing bucket stops the synth."""
    app = cdk.App(outdir=str(tmp_path), context=CDK_CONTEXT, analytics_reporting=False)
    deployment = add_stacks(app, load_config("example"))
    s3.Bucket(deployment.storage, "CarelessBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {rule for rule, path in violations(tmp_path) if "CarelessBucket" in path}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules

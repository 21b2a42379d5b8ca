"""`make synth`, the main job: it says what it did and where the templates are, and nothing
else unless something is wrong; then the failing step's whole output shows.

The synth step runs for real (the CDK CLI, jsii, cdk-nag, cfn-lint: about 20-60 s), not the
suite's in-process synthesis: the noise came from the CLI and jsii, which only this path
goes through. The install steps are taken as done (`make -o STAMP`), as after `make setup`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.helpers import ROOT

STAMPS = (".venv/.installed", "node_modules/.installed", ".venv-checkov/.installed")
# Run by `make test` the test is a sub-make: drop what would make it print its directory.
MAKE_ENV = {
    **{
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    },
    "LC_ALL": "C",
}


def make_synth(*variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", *(f"--old-file={stamp}" for stamp in STAMPS), "synth", *variables],
        cwd=ROOT,
        env=MAKE_ENV,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_synth_prints_only_what_it_did_and_where_the_templates_are(tmp_path):
    out = tmp_path / "cdk.out"
    result = make_synth(f"OUTDIR={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    templates = sorted(path.name for path in out.glob("*.template.json"))
    assert "Storage.template.json" in templates
    assert result.stdout.splitlines() == [
        f"Synthesized config example (cdk-nag and cfn-lint passed) into {out}/:",
        *(f"  {out}/{name}" for name in templates),
    ]
    assert result.stderr == ""


def test_a_failing_synth_shows_its_whole_output(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("budget: [\n")
    result = make_synth(f"CONFIG={config}", f"OUTDIR={tmp_path / 'cdk.out'}")
    assert result.returncode != 0
    assert f"error: {config}: line 2, column 1: YAML syntax error" in result.stderr
    assert "Subprocess exited with error 1" in result.stderr  # the CDK CLI's own line, kept
    assert "Synthesized" not in result.stdout


def test_a_cdk_warning_is_shown_with_its_context(tmp_path):
    """A warning annotation is something wrong: the CLI's report shows, summary after it."""
    app = tmp_path / "warned.py"
    app.write_text(
        textwrap.dedent(
            """\
            import aws_cdk as cdk
            from aws_cdk import aws_sns as sns

            app = cdk.App()
            stack = cdk.Stack(app, "Warned")
            sns.Topic(stack, "Topic")
            cdk.Annotations.of(stack).add_warning_v2("stowage:test", "read this before deploying")
            app.synth()
            """
        )
    )
    out = tmp_path / "cdk.out"
    result = make_synth(f"CDK=cdk --app '{sys.executable} {app}'", f"OUTDIR={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING read this before deploying" in result.stderr
    assert "Acknowledge with 'Annotation::stowage:test'" in result.stderr
    assert result.stdout.splitlines() == [
        f"Synthesized config example (cdk-nag and cfn-lint passed) into {out}/:",
        f"  {out}/Warned.template.json",
    ]

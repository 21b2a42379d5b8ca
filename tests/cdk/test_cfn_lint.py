"""cfn-lint over every synthesized template: no error, no warning."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdk.conftest import ROOT


@pytest.mark.parametrize("deployment", ["example", "single_region", "private_images", "host_only"])
def test_cfn_lint_is_clean(request, deployment):
    synthesized = request.getfixturevalue(deployment)
    templates = sorted(str(p) for p in synthesized.outdir.glob("*.template.json"))
    assert templates
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
        cwd=ROOT,  # where .cfnlintrc.yaml is
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

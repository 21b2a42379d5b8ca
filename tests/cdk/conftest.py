"""Synthesized deployments, one per session and config, shared by every infrastructure test."""

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk.assertions import Template

from stacks.config import CONFIG_DIR, DeploymentConfig, load_config, parse_config
from stacks.deployment import add_stacks

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synthesized:
    config: DeploymentConfig
    outdir: Path
    templates: dict[str, dict]

    def template(self, stack_id: str) -> Template:
        return Template.from_json(self.templates[stack_id])


def synthesize(config: DeploymentConfig, outdir: Path) -> Synthesized:
    """Synthesize exactly as app.py does (same context and feature flags, cdk-nag on)."""
    app = cdk.App(outdir=str(outdir), context=CDK_CONTEXT, analytics_reporting=False)
    add_stacks(app, config)
    app.synth()
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    return Synthesized(config=config, outdir=outdir, templates=templates)


def example_data() -> dict:
    return yaml.safe_load((CONFIG_DIR / "example.yaml").read_text())


@pytest.fixture(scope="session")
def example(tmp_path_factory) -> Synthesized:
    """config/example.yaml: primary region plus a replica with Replication Time Control."""
    return synthesize(load_config("example"), tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="session")
def single_region(tmp_path_factory) -> Synthesized:
    """The example without a replica, without RTC and without CORS origins."""
    data = example_data()
    data.update(replica=None, cors_allowed_origins=[], temp_expiry_hours=49)
    config = parse_config(data, "single-region variant of example.yaml")
    return synthesize(config, tmp_path_factory.mktemp("single"))


@pytest.fixture(scope="session")
def host_only(tmp_path_factory) -> Synthesized:
    """config/host-only.yaml: the Lightsail host, its alarm topic and budget; no cloud store."""
    return synthesize(load_config("host-only"), tmp_path_factory.mktemp("host-only"))


@pytest.fixture(scope="session")
def storage(example) -> Template:
    return example.template("Storage")


@pytest.fixture(scope="session")
def replica(example) -> Template:
    return example.template("Replica")


# A real RSA 2048-bit public key (the config parses it); its private half was discarded.
SIGNING_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3UodRlTrmtzadr07RfTc
HLY7Fo/JbHaGo3kd9NI5MWPk0S1Pgm5C1eHHf/kOhNJDT8RFx/UhtIY+0gN5q667
OEbO5QtRLGCm9kHbRHRLQCLf58pw2IlsTpkd+RfAydMT+xpFK/eOLONT3Hpa/uVc
j089UIGSiPZGpkE55yoHxCXCFpMpHmhAIXwzbFBnUb6zsxhkmD4VeDGu4AlRbv8r
1UVsIQtssJdTdn0/iF0PwZOHWUBbPIL+gK6RCt2NndYEnMaeAOuv+PleccaYvhn1
3vSi6Z793nbhmMHrT/hUzkhHwCIFOiBeDEhtFLDl17vS9fVKI87oWFO2PMYW3KYE
UwIDAQAB
-----END PUBLIC KEY-----
"""


def private_images_config() -> DeploymentConfig:
    """The example with ``images/`` private (signed URLs) and its replica kept."""
    data = example_data()
    data["cdn"] |= {
        "private_prefixes": ["images/"],
        "signing_public_key_pem": SIGNING_PUBLIC_KEY_PEM,
    }
    return parse_config(data, "example with private images/")


@pytest.fixture(scope="session")
def private_images(tmp_path_factory) -> Synthesized:
    return synthesize(private_images_config(), tmp_path_factory.mktemp("private"))


def first_matching_behaviour(distribution_config: dict, path: str) -> dict:
    """The behaviour CloudFront applies to ``path``: the first listed cache behaviour whose
    pattern matches (``*`` any run of characters, ``?`` one), else the default."""
    for behaviour in distribution_config.get("CacheBehaviors", []):
        if fnmatch.fnmatchcase(path, behaviour["PathPattern"]):
            return behaviour
    return {**distribution_config["DefaultCacheBehavior"], "PathPattern": "*"}

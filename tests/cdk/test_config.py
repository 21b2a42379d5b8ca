"""The deployment config: a bad file fails with the file, the field and the reason."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.config import ConfigError, load_config
from tests.cdk.conftest import ROOT, SIGNING_PUBLIC_KEY_PEM, example_data


def write_config(tmp_path: Path, data: dict | str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def config_error(tmp_path: Path, data: dict | str) -> str:
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message, "the message names the file"
    return message


def test_example_config_is_valid():
    config = load_config("example")
    assert config.app_name == "stowage-example"
    assert config.replica is not None
    assert config.replica.region == "eu-central-1"
    assert config.prefixes.permanent == ["videos/", "images/", "transcripts/", "processed/"]
    assert config.prefixes.temp == "temp/"
    assert config.lightsail is not None
    assert config.lightsail.ssh_allowed_cidrs == ["203.0.113.0/24"]


@pytest.mark.parametrize(("hours", "days"), [(1, 1), (24, 1), (25, 2), (48, 2), (49, 3)])
def test_temp_expiry_rounds_hours_up_to_whole_days(tmp_path, hours, days):
    data = example_data() | {"temp_expiry_hours": hours}
    assert load_config(write_config(tmp_path, data)).temp_expiry_days == days


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"bucket_name": "x"}, "bucket_name", "unknown field"),
        ({"cdn": {"enabled": True, "varient_widths": [1]}}, "cdn.varient_widths", "unknown field"),
        ({"primary_region": "eu-wst-1"}, "primary_region", "not a known AWS region"),
        ({"replica": {"region": "mars-1"}}, "replica.region", "not a known AWS region"),
        ({"temp_expiry_hours": -1}, "temp_expiry_hours", "greater than 0"),
        ({"noncurrent_version_expiry_days": 0}, "noncurrent_version_expiry_days", "greater than 0"),
        ({"alarm_email": "ops.example.com"}, "alarm_email", "not a valid email address"),
        ({"account": 123456789012}, "account", "valid string"),
        ({"account": "12345"}, "account", "should match pattern"),
        (
            {"cors_allowed_origins": ["https://app.example.com/"]},
            "cors_allowed_origins[0]",
            "origin",
        ),
        (
            {"prefixes": {"permanent": ["/videos"], "temp": "temp/"}},
            "prefixes.permanent[0]",
            "prefix",
        ),
        ({"prefixes": {"permanent": ["temp/"], "temp": "temp/"}}, "prefixes", "unique"),
        ({"monthly_budget_usd": 0}, "monthly_budget_usd", "greater than 0"),
    ],
)
def test_bad_value_names_field_and_reason(tmp_path, change, field, reason):
    message = config_error(tmp_path, example_data() | change)
    assert f"  {field}: " in message
    assert reason in message.split(f"  {field}: ", 1)[1].splitlines()[0]


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("203.0.113.0/33", "not a CIDR block"),
        ("203.0.113.7/24", "host bits set"),
        ("not-a-network", "not a CIDR block"),
        ("0.0.0.0/0", "opens SSH to 4,294,967,296 addresses"),
        ("0.0.0.0/1", "IPv4 prefixes of /16 or longer"),
        ("10.0.0.0/15", "opens SSH to 131,072 addresses"),
        ("2001:db8::/32", "IPv6 prefixes of /48 or longer"),
        ("::/0", "IPv6 prefixes of /48 or longer"),
    ],
)
def test_malformed_ssh_cidr(tmp_path, cidr, reason):
    data = example_data()
    data["lightsail"]["ssh_allowed_cidrs"] = ["198.51.100.0/24", cidr]
    message = config_error(tmp_path, data)
    assert f"  lightsail.ssh_allowed_cidrs[1]: {cidr!r}" in message
    assert reason in message


def test_ssh_cidrs_accept_site_sized_ranges_and_ipv6(tmp_path):
    data = example_data()
    data["lightsail"]["ssh_allowed_cidrs"] = ["10.20.0.0/16", "198.51.100.7/32", "2001:db8:1::/48"]
    config = load_config(write_config(tmp_path, data))
    assert config.lightsail.ssh_allowed_cidrs[2] == "2001:db8:1::/48"


def test_ssh_cidrs_need_an_ipv4_range(tmp_path):
    data = example_data()
    data["lightsail"]["ssh_allowed_cidrs"] = ["2001:db8:1::/48"]
    assert "ssh_allowed_cidrs needs at least one IPv4 range" in config_error(tmp_path, data)


@pytest.mark.parametrize("field", ["app_name", "account", "alarm_email", "monthly_budget_usd"])
def test_missing_required_field(tmp_path, field):
    data = example_data()
    del data[field]
    assert f"  {field}: required field is missing" in config_error(tmp_path, data)


def test_every_error_is_reported_at_once(tmp_path):
    data = example_data() | {"primary_region": "nowhere-1", "temp_expiry_hours": -5, "typo": 1}
    message = config_error(tmp_path, data)
    assert [line.split(":")[0].strip() for line in message.splitlines()[1:]] == [
        "primary_region",
        "temp_expiry_hours",
        "typo",
    ]


def test_cross_field_rules(tmp_path):
    data = example_data()
    data["replica"]["region"] = data["primary_region"]
    assert "replica.region must differ from primary_region" in config_error(tmp_path, data)

    data = example_data()
    data["lightsail"]["availability_zone"] = "us-east-1a"
    assert "is not in primary_region eu-west-1" in config_error(tmp_path, data)

    data = example_data()
    data["cdn"]["domain_name"] = "media.example.com"
    assert "domain_name and certificate_arn go together" in config_error(tmp_path, data)


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    text = "app_name: stowage\naccount: '123456789012'\nprefixes: [videos/\n"
    message = config_error(tmp_path, text)
    assert "YAML syntax error" in message
    assert "line 4" in message


def test_duplicate_key_is_an_error(tmp_path):
    text = (ROOT / "config" / "example.yaml").read_text() + "\ntemp_expiry_hours: 48\n"
    message = config_error(tmp_path, text)
    assert "duplicate key 'temp_expiry_hours'" in message


def test_non_mapping_file(tmp_path):
    assert "a YAML mapping of fields" in config_error(tmp_path, "- just\n- a list\n")


def test_unknown_config_name_lists_known_ones():
    with pytest.raises(ConfigError, match=r"no such deployment config \(known: .*example"):
        load_config("no-such-deployment")


def test_app_stops_before_building_any_construct(tmp_path):
    """`cdk synth -c config=...` with a bad file prints one message and no traceback."""
    bad = write_config(tmp_path, example_data() | {"temp_expiry_hours": -1})
    outdir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=os.environ
        | {"CDK_CONTEXT_JSON": json.dumps({"config": str(bad)}), "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert f"error: {bad}: invalid deployment config" in result.stderr
    assert "temp_expiry_hours: Input should be greater than 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(outdir.glob("*.template.json"))


def test_private_prefixes_must_fit_in_cloudfront_behaviours(tmp_path):
    data = example_data()
    permanent = [f"p{index}/" for index in range(10)]
    data["prefixes"]["permanent"] = permanent
    data["cdn"] |= {
        "private_prefixes": permanent,
        "signing_public_key_pem": SIGNING_PUBLIC_KEY_PEM,
        "variant_source_prefixes": ["p0/"],
    }
    message = config_error(tmp_path, data)
    assert "would need 33 cache behaviours" in message
    assert "CloudFront allows 25" in message


RSA_1024_PEM = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCqVDZYrFcalxlaZZCAiyqxh6nf
mN2adKGHIcK9Ay5Oq76uaSFOXvMLZe0RLx1ZcMdzGzTEQ1keQdga6yr8C3Ht/s2X
9QSWm/NSUNmBJlKS+bsrSP3nu98tGDnskZQ5LGtaw+tLMqrwH0DE7J/D/yg47c1u
JdftG59HN9y+ENU6qwIDAQAB
-----END PUBLIC KEY-----
"""
P_256_PEM = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEG6Puf2k7vqluUI5blMYOpQ1WUfnb
X0GEUD1k8P9lf4ZdcCa7ND+LodicW/qZG4QdLCd8LSbz2DRvTirdDAjzpg==
-----END PUBLIC KEY-----
"""


def assert_refused(tmp_path, data: dict, field: str, reason: str) -> None:
    message = config_error(tmp_path, data)
    assert f"  {field}: " in message, message
    assert reason in message.split(f"  {field}: ", 1)[1].splitlines()[0], message


@pytest.mark.parametrize(
    "field", ["variant_widths", "variant_heights", "variant_formats", "variant_source_prefixes"]
)
def test_empty_variant_lists_are_refused(tmp_path, field):
    """Empty, the baked CloudFront Function would rewrite to /-Infinityx-Infinity.undefined,
    or (no source prefix) the resizer would refuse every variant, silently."""
    data = example_data()
    data["cdn"][field] = []
    assert_refused(tmp_path, data, f"cdn.{field}", "at least 1 item")


@pytest.mark.parametrize(
    ("prefixes", "field"),
    [
        ({"permanent": ["images/", "variants/"], "temp": "temp/"}, "prefixes.permanent[1]"),
        ({"permanent": ["img/", "images/"], "temp": "temp/"}, "prefixes.permanent[0]"),
        ({"permanent": ["images/", "variants/old/"], "temp": "temp/"}, "prefixes.permanent[1]"),
        ({"permanent": ["images/"], "temp": "img/"}, "prefixes.temp"),
    ],
)
def test_prefixes_may_not_take_the_generated_behaviours(tmp_path, prefixes, field):
    data = example_data() | {"prefixes": prefixes}
    assert_refused(tmp_path, data, field, "which the generated")


@pytest.mark.parametrize("root", ["/srv/../etc", "/srv/./stowage", "/srv//stowage", "/.."])
def test_storage_root_must_be_a_plain_absolute_path(tmp_path, root):
    data = example_data()
    data["lightsail"]["storage_root"] = root
    assert_refused(tmp_path, data, "lightsail.storage_root", "not a plain absolute path")


@pytest.mark.parametrize(
    ("pem", "reason"),
    [
        ("garbage", "is not a PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----", "not a readable PEM"),
        (SIGNING_PUBLIC_KEY_PEM[:200] + "\n-----END PUBLIC KEY-----\n", "not a readable PEM"),
        (RSA_1024_PEM, "RSA 2048-bit or ECDSA P-256 keys only"),
    ],
    ids=["garbage", "not-base64-der", "truncated", "rsa-1024"],
)
def test_signing_public_key_is_parsed(tmp_path, pem, reason):
    data = example_data()
    data["cdn"] |= {"private_prefixes": ["images/"], "signing_public_key_pem": pem}
    assert_refused(tmp_path, data, "cdn.signing_public_key_pem", reason)


@pytest.mark.parametrize("pem", [SIGNING_PUBLIC_KEY_PEM, P_256_PEM], ids=["rsa-2048", "p-256"])
def test_cloudfront_key_types_are_accepted(tmp_path, pem):
    data = example_data()
    data["cdn"] |= {"private_prefixes": ["images/"], "signing_public_key_pem": pem}
    assert load_config(write_config(tmp_path, data)).cdn.signing_public_key_pem == pem


@pytest.mark.parametrize("box", ["1200X630", "0x400", "400x0", "0400x400", "9000x400", "400", ""])
def test_malformed_variant_boxes_are_refused_at_their_field(tmp_path, box):
    data = example_data()
    data["cdn"]["variant_boxes"] = ["400x400", box]
    assert_refused(tmp_path, data, "cdn.variant_boxes[1]", "is not a box like '1200x630'")


def test_unknown_fit_mode_is_refused_at_its_field(tmp_path):
    data = example_data()
    data["cdn"]["variant_fits"] = ["fit", "contain"]
    assert_refused(tmp_path, data, "cdn.variant_fits[1]", "'fit' or 'cover'")


def test_variant_boxes_and_fits_reach_the_core_and_the_function():
    from stacks.edge_config import cloudfront_function_code, variant_config

    cdn = load_config("example").cdn
    core = variant_config(cdn)
    assert (core["boxes"], core["fits"]) == ([[400, 400], [1200, 630]], ["fit", "cover"])
    assert '"boxes": [[400, 400], [1200, 630]]' in cloudfront_function_code(cdn)

"""Settings: STOWAGE_ names, the motivating apps' aliases, and one clear start-up error."""

from __future__ import annotations

import subprocess

import pytest

from stowage.settings import Settings, SettingsError, StorageMode, load_settings
from tests.runtime.conftest import BIN


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("STOWAGE_") or name in (
            "STORAGE_MODE",
            "STORAGE_TYPE",
            "LOCAL_STORAGE_PATH",
            "S3_BUCKET_NAME",
            "S3_MEDIA_BUCKET",
            "S3_SPLIT_PERCENTAGE",
        ):
            monkeypatch.delenv(name)


def test_defaults(monkeypatch):
    settings = load_settings()
    assert settings.storage_mode is StorageMode.LOCAL
    assert str(settings.local_root) == "data"
    assert settings.resolved_catalog_url.startswith("sqlite:///")
    assert settings.resolved_catalog_url.endswith("data/.stowage/catalog.db")


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"STOWAGE_STORAGE_MODE": "s3", "STOWAGE_S3_BUCKET": "b"}, "storage_mode", StorageMode.S3),
        ({"STORAGE_MODE": "s3", "S3_BUCKET_NAME": "b"}, "s3_bucket", "b"),
        ({"STORAGE_TYPE": "local"}, "storage_mode", StorageMode.LOCAL),
        ({"LOCAL_STORAGE_PATH": "/srv/media"}, "local_root", "/srv/media"),
        ({"S3_MEDIA_BUCKET": "media"}, "s3_bucket", "media"),
        (
            {"STOWAGE_STORAGE_MODE": "hybrid", "S3_BUCKET_NAME": "b", "S3_SPLIT_PERCENTAGE": "25"},
            "hybrid_s3_percent",
            25,
        ),
        (
            {"STOWAGE_API_TOKENS": " a-long-token-0000000001 , b-long-token-0000000002 ,"},
            "api_tokens",
            ["a-long-token-0000000001", "b-long-token-0000000002"],
        ),
    ],
)
def test_names_and_aliases(monkeypatch, env, field, value):
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    settings = load_settings()
    got = getattr(settings, field)
    if field == "api_tokens":
        got = [t.get_secret_value() for t in got]
    if field == "local_root":
        got = str(got)
    assert got == value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STOWAGE_STORAGE_MODE": "s3"}, "STOWAGE_STORAGE_MODE=s3 needs STOWAGE_S3_BUCKET"),
        (
            {"STOWAGE_STORAGE_MODE": "hybrid", "STOWAGE_S3_BUCKET": "b"},
            "needs STOWAGE_HYBRID_S3_PERCENT",
        ),
        ({"STOWAGE_STORAGE_MODE": "tape"}, "STOWAGE_STORAGE_MODE"),
        ({"STOWAGE_HYBRID_S3_PERCENT": "150"}, "STOWAGE_HYBRID_S3_PERCENT"),
        ({"STOWAGE_CATALOG_URL": "postgres://x"}, "sqlite:///PATH or dynamodb://TABLE"),
        ({"STOWAGE_MAX_UPLOAD_BYTES": "-1"}, "STOWAGE_MAX_UPLOAD_BYTES"),
        ({"STOWAGE_S3_PREFIX": "/media"}, "STOWAGE_S3_PREFIX"),
    ],
)
def test_contradictions_fail_with_one_message(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="invalid settings") as caught:
        load_settings()
    assert message in str(caught.value)


def test_service_needs_tokens_and_secret():
    settings = Settings()
    with pytest.raises(SettingsError) as caught:
        settings.require_service_secrets()
    assert "STOWAGE_API_TOKENS" in str(caught.value)
    assert "STOWAGE_SIGNING_SECRET" in str(caught.value)


def test_serve_refuses_to_start_with_contradictory_settings(tmp_path):
    result = subprocess.run(
        [str(BIN / "stowage"), "serve", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "STOWAGE_STORAGE_MODE": "s3", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "stowage: invalid settings: STOWAGE_STORAGE_MODE=s3 needs STOWAGE_S3_BUCKET"
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"STOWAGE_HYBRID_S3_PERCENT": "150"}, "STOWAGE_HYBRID_S3_PERCENT"),
        ({"S3_SPLIT_PERCENTAGE": "abc"}, "STOWAGE_HYBRID_S3_PERCENT"),  # alias: canonical name
        ({"STOWAGE_MAX_JSON_BYTES": "0"}, "STOWAGE_MAX_JSON_BYTES"),
    ],
)
def test_a_bad_value_names_the_variable_that_was_set(monkeypatch, env, name):
    """The message names the variable (its STOWAGE_ name), never STOWAGE_STOWAGE_..."""
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid settings: {name}: "), message
    assert "STOWAGE_STOWAGE_" not in message


def test_json_body_limit_defaults_to_one_mib():
    assert load_settings().max_json_bytes == 1024 * 1024

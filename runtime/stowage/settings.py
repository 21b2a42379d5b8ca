"""Service settings: environment variables with the ``STOWAGE_`` prefix (an env file on hosts).

The names the motivating apps already use are accepted as aliases, so an existing deployment
can switch without renaming. Contradictory settings stop start-up with one clear message.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class StorageMode(StrEnum):
    LOCAL = "local"
    S3 = "s3"
    HYBRID = "hybrid"


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(f"STOWAGE_{name}", *aliases)


# DynamoDB's own rule for table names.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


class SettingsError(Exception):
    """Settings that cannot work together; the message lists every problem."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, populate_by_name=True
    )

    storage_mode: StorageMode = Field(
        default=StorageMode.LOCAL,
        validation_alias=_env("STORAGE_MODE", "STORAGE_MODE", "STORAGE_TYPE"),
    )
    local_root: Path = Field(
        default=Path("./data"), validation_alias=_env("LOCAL_ROOT", "LOCAL_STORAGE_PATH")
    )
    s3_bucket: str | None = Field(
        default=None, validation_alias=_env("S3_BUCKET", "S3_BUCKET_NAME", "S3_MEDIA_BUCKET")
    )
    s3_prefix: str = Field(default="", validation_alias=_env("S3_PREFIX"))
    s3_endpoint_url: str | None = Field(default=None, validation_alias=_env("S3_ENDPOINT_URL"))
    s3_region: str | None = Field(default=None, validation_alias=_env("S3_REGION", "AWS_REGION"))
    kms_key_id: str | None = Field(default=None, validation_alias=_env("KMS_KEY_ID"))
    hybrid_s3_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        validation_alias=_env("HYBRID_S3_PERCENT", "S3_SPLIT_PERCENTAGE"),
    )
    catalog_url: str | None = Field(default=None, validation_alias=_env("CATALOG_URL"))
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default=[], validation_alias=_env("API_TOKENS")
    )
    signing_secret: SecretStr | None = Field(default=None, validation_alias=_env("SIGNING_SECRET"))
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias=_env("PUBLIC_BASE_URL")
    )
    behind_nginx: bool = Field(default=False, validation_alias=_env("BEHIND_NGINX"))
    max_upload_bytes: int = Field(
        default=5 * 1024**3, gt=0, validation_alias=_env("MAX_UPLOAD_BYTES")
    )
    # JSON bodies are parsed in memory: their own small limit, checked while reading.
    max_json_bytes: int = Field(
        default=1024 * 1024, gt=0, le=64 * 1024**2, validation_alias=_env("MAX_JSON_BYTES")
    )
    temp_max_age_hours: int = Field(default=24, gt=0, validation_alias=_env("TEMP_MAX_AGE_HOURS"))
    signed_url_ttl_seconds: int = Field(
        default=3600, gt=0, le=7 * 86400, validation_alias=_env("SIGNED_URL_TTL_SECONDS")
    )
    multipart_part_size: int = Field(
        default=16 * 1024**2,
        ge=5 * 1024**2,
        le=5 * 1024**3,
        validation_alias=_env("MULTIPART_PART_SIZE"),
    )
    cloudfront_domain: str | None = Field(default=None, validation_alias=_env("CLOUDFRONT_DOMAIN"))
    cloudfront_key_pair_id: str | None = Field(
        default=None, validation_alias=_env("CLOUDFRONT_KEY_PAIR_ID")
    )
    cloudfront_private_key_file: Path | None = Field(
        default=None, validation_alias=_env("CLOUDFRONT_PRIVATE_KEY_FILE")
    )
    disk_alert_webhook: str | None = Field(
        default=None, validation_alias=_env("DISK_ALERT_WEBHOOK")
    )
    log_level: str = Field(default="INFO", validation_alias=_env("LOG_LEVEL"))
    # Image variants on the host: the resizer's JSON config (the runtime role writes it from
    # the deployment config); unset, the host serves no variants.
    variants_config: Path | None = Field(default=None, validation_alias=_env("VARIANTS_CONFIG"))
    variant_renders: int = Field(default=2, ge=1, le=64, validation_alias=_env("VARIANT_RENDERS"))
    variant_render_queue: int = Field(
        default=16, ge=0, le=1024, validation_alias=_env("VARIANT_RENDER_QUEUE")
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value and (value.startswith("/") or not value.endswith("/")):
            raise ValueError("must be empty or end with '/' and not start with '/'")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if self.storage_mode in (StorageMode.S3, StorageMode.HYBRID) and not self.s3_bucket:
            problems.append(f"STOWAGE_STORAGE_MODE={self.storage_mode} needs STOWAGE_S3_BUCKET")
        if self.storage_mode is StorageMode.HYBRID and self.hybrid_s3_percent is None:
            problems.append("STOWAGE_STORAGE_MODE=hybrid needs STOWAGE_HYBRID_S3_PERCENT (0-100)")
        if self.catalog_url and not self.catalog_url.startswith(("sqlite:///", "dynamodb://")):
            problems.append("STOWAGE_CATALOG_URL must be sqlite:///PATH or dynamodb://TABLE")
        elif self.catalog_url == "sqlite:///":
            problems.append("STOWAGE_CATALOG_URL=sqlite:/// needs a file path")
        elif self.catalog_url and self.catalog_url.startswith("dynamodb://"):
            table = self.catalog_url.removeprefix("dynamodb://")
            if not _TABLE_NAME.fullmatch(table):
                problems.append(
                    f"STOWAGE_CATALOG_URL={self.catalog_url}: the table name must be 3-255"
                    " letters, digits, '_', '-' or '.' (dynamodb://TABLE)"
                )
        cloudfront = (
            self.cloudfront_domain,
            self.cloudfront_key_pair_id,
            self.cloudfront_private_key_file,
        )
        if any(cloudfront) and not all(cloudfront):
            problems.append(
                "CloudFront signing needs STOWAGE_CLOUDFRONT_DOMAIN, STOWAGE_CLOUDFRONT_KEY_PAIR_ID"
                " and STOWAGE_CLOUDFRONT_PRIVATE_KEY_FILE together"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def resolved_catalog_url(self) -> str:
        return (
            self.catalog_url
            or f"sqlite:///{(self.local_root / '.stowage' / 'catalog.db').resolve()}"
        )

    def require_local_root(self) -> None:
        """Create the local root (spool, SQLite catalog, local media live there) or stop
        with the setting's name, not a traceback from deep in the start-up."""
        try:
            self.local_root.mkdir(parents=True, exist_ok=True)
            if not self.local_root.is_dir():
                raise NotADirectoryError(0, "not a directory")
        except OSError as exc:
            raise SettingsError(
                f"invalid settings: STOWAGE_LOCAL_ROOT={self.local_root} cannot be created"
                f" ({exc.strerror or exc})"
            ) from None

    def require_service_secrets(self) -> None:
        """The HTTP service refuses to start without tokens and a signing secret."""
        problems = []
        if not self.api_tokens:
            problems.append("STOWAGE_API_TOKENS is empty: set at least one bearer token")
        elif any(len(t.get_secret_value()) < 16 for t in self.api_tokens):
            problems.append("every STOWAGE_API_TOKENS entry must be at least 16 characters")
        if self.signing_secret is None or len(self.signing_secret.get_secret_value()) < 32:
            problems.append("STOWAGE_SIGNING_SECRET must be set, at least 32 characters")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))


def _env_name(loc: tuple) -> str:
    """The variable a validation error is about: ``loc`` holds the alias that was read
    (``STOWAGE_HYBRID_S3_PERCENT``, ``S3_SPLIT_PERCENTAGE``) or, for overrides, the field."""
    name = ".".join(str(part) for part in loc).upper()
    if name.lower() in Settings.model_fields:
        return f"STOWAGE_{name}"
    return name


def load_settings(**overrides) -> Settings:
    """Read settings from the environment; raise :class:`SettingsError` with one message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{_env_name(error['loc'])}: {message}" if error["loc"] else message)
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None

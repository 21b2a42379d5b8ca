"""The typed deployment config: one YAML file per deployment under ``config/``.

Every value a stack needs comes from here, validated once before any construct is built.
A bad file fails with one :class:`ConfigError` naming the file, each bad field and why.
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

from stacks.config_base import (
    Cidr,
    ConfigError,
    DomainName,
    FieldError,
    MediaPrefix,
    Origin,
    Prefix,
    Region,
    WatermarkConfig,
    _Model,
)
from stacks.config_checks import (
    absolute_path,
    cloudfront_public_key,
    variant_box,
)
from stacks.regions import LIGHTSAIL_REGIONS

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

SSH_USERS = {"debian_12": "admin", "ubuntu_24_04": "ubuntu"}
DATA_DISK_DEVICE = "/dev/xvdf"

# CloudFront's default quota of cache behaviours per distribution.
CLOUDFRONT_MAX_BEHAVIOURS = 25


class PrefixesConfig(_Model):
    """Top-level key prefixes shared by both topologies (PRODUCT.md, storage key layout)."""

    permanent: list[MediaPrefix] = Field(
        default=["videos/", "images/", "transcripts/", "processed/"], min_length=1
    )
    temp: MediaPrefix = "temp/"

    @model_validator(mode="after")
    def _no_overlap(self) -> PrefixesConfig:
        every = [*self.permanent, self.temp]
        if len(set(every)) != len(every):
            raise ValueError("prefixes must be unique (temp may not also be permanent)")
        for a in every:
            for b in every:
                if a != b and b.startswith(a):
                    raise ValueError(f"prefix {b!r} lies inside prefix {a!r}")
        return self


class ReplicaConfig(_Model):
    """Cross-region replication of the permanent prefixes into a second bucket."""

    region: Region
    replication_time_control: bool = Field(
        default=False, description="S3 RTC: 15-minute replication SLA, billed per GB."
    )
    latency_alarm_seconds: int = Field(default=900, gt=0, le=86_400)


class StorageConfig(_Model):
    """The cloud store: media bucket, its KMS key and the catalog table (StorageStack)."""

    enabled: bool = Field(
        default=True,
        description="false: a host-only deployment, with no bucket, key, table or CDN.",
    )


class CdnConfig(_Model):
    """CloudFront in front of the media bucket, with image variants at the edge."""

    enabled: bool = True
    domain_name: DomainName | None = None
    certificate_arn: (
        Annotated[str, Field(pattern=r"^arn:aws:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")]
        | None
    ) = Field(default=None, description="ACM certificate in us-east-1 covering domain_name.")
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    origin_shield_region: Region | None = None
    private_prefixes: list[Prefix] = Field(
        default=[], description="Prefixes served only with CloudFront signed URLs."
    )
    signing_public_key_pem: Annotated[str, AfterValidator(cloudfront_public_key)] | None = Field(
        default=None, description="Public key (PEM) of the key pair that signs private URLs."
    )
    variant_source_prefixes: list[Prefix] = Field(
        default=["images/"],
        min_length=1,
        description="Prefixes whose originals have image variants; the resizer reads only these.",
    )
    # Each list needs an entry: the CloudFront Function picks from them for every request.
    variant_widths: list[Annotated[int, Field(gt=0, le=8192)]] = Field(
        default=[320, 640, 800, 1280, 1920], min_length=1
    )
    variant_heights: list[Annotated[int, Field(ge=0, le=8192)]] = Field(
        default=[0], min_length=1, description="Allowed heights; 0 means 'keep the aspect ratio'."
    )
    variant_boxes: list[Annotated[str, AfterValidator(variant_box)]] = Field(
        default=[], description="More sizes ('1200x630'); cover needs a box or a height > 0."
    )
    variant_fits: list[Literal["fit", "cover"]] = Field(default=["fit", "cover"], min_length=1)
    variant_formats: list[Literal["avif", "webp", "jpeg", "png"]] = Field(
        default=["avif", "webp", "jpeg", "png"], min_length=1
    )
    jpeg_quality: int = Field(default=82, ge=1, le=100)
    webp_quality: int = Field(default=80, ge=1, le=100)
    avif_quality: int = Field(default=55, ge=1, le=100)
    max_source_megapixels: int = Field(default=50, gt=0, le=500)
    edge_memory_size_mb: int = Field(default=1536, ge=128, le=10_240)
    client_hints: bool = Field(
        default=False,
        description="Ask browsers for Sec-CH-Width/Sec-CH-DPR (Accept-CH) on /img/ responses.",
    )
    watermark: WatermarkConfig | None = Field(
        default=None, description="Off unless set: an overlay on variants of some prefixes."
    )
    cache_hit_rate_target_percent: float = Field(
        default=80,
        gt=0,
        le=100,
        description="Alarm when CloudFront's cache hit rate stays below this for an hour.",
    )

    @model_validator(mode="after")
    def _domain_needs_certificate(self) -> CdnConfig:
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise ValueError("domain_name and certificate_arn go together: set both or neither")
        if self.private_prefixes and not self.signing_public_key_pem:
            raise ValueError("private_prefixes need signing_public_key_pem to verify signed URLs")
        return self

    @model_validator(mode="after")
    def _watermark_on_variant_sources(self) -> CdnConfig:
        for prefix in self.watermark.prefixes if self.watermark else ():
            if not prefix.startswith(tuple(self.variant_source_prefixes)):
                raise FieldError(
                    "watermark.prefixes",
                    f"{prefix!r} is not under a variant source prefix"
                    f" ({', '.join(self.variant_source_prefixes)}): it has no variants to mark",
                )
        return self


class LightsailConfig(_Model):
    """The single-host topology: one Lightsail instance configured by Ansible."""

    enabled: bool = False
    availability_zone: str = Field(pattern=r"^[a-z]{2}-[a-z]+-\d[a-z]$")
    blueprint_id: Literal["debian_12", "ubuntu_24_04"] = "debian_12"
    bundle_id: str = Field(default="small_3_0", pattern=r"^[a-z0-9_]+$")
    key_pair_name: str = Field(min_length=1, max_length=255)
    ssh_allowed_cidrs: list[Cidr] = Field(
        min_length=1,
        description="Networks SSH is open to (IPv4 /16 or longer, IPv6 /48 or longer).",
    )
    snapshot_time_of_day: str = Field(
        default="06:00",
        pattern=r"^([01]\d|2[0-3]):00$",
        description="UTC hour (HH:00) of the automatic daily snapshot.",
    )
    data_disk_size_gb: int = Field(default=0, ge=0, le=16_384, description="0: no data disk.")
    domain_name: DomainName | None = None
    storage_root: Annotated[str, AfterValidator(absolute_path)] = Field(
        default="/srv/stowage", pattern=r"^/[A-Za-z0-9_./-]*[^/]$"
    )
    max_upload_mb: int = Field(default=2048, gt=0)
    disk_alert_threshold_percent: int = Field(default=80, gt=0, lt=100)
    image_variants: bool = Field(
        default=False,
        description="Serve /variants/ and /img/ on the host too, with the cdn.variant_* values.",
    )

    @model_validator(mode="after")
    def _ssh_needs_ipv4(self) -> LightsailConfig:
        # Lightsail's behaviour for a port rule with IPv6 ranges but no IPv4 range is not
        # documented; never leave it to guess.
        if not any(ipaddress.ip_network(c).version == 4 for c in self.ssh_allowed_cidrs):
            raise ValueError("ssh_allowed_cidrs needs at least one IPv4 range")
        return self

    @property
    def ssh_user(self) -> str:
        """The login user Lightsail creates for the blueprint."""
        return SSH_USERS[self.blueprint_id]

    @property
    def data_disk_device(self) -> str | None:
        """Block device the data disk is attached at, or None without one."""
        return DATA_DISK_DEVICE if self.data_disk_size_gb else None


class DeploymentConfig(_Model):
    """One deployment of Stowage: what ``config/NAME.yaml`` holds."""

    app_name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$",
        description="Lowercase name (3-24 characters) that prefixes stack and resource names.",
    )
    account: str = Field(pattern=r"^\d{12}$", description="AWS account id, quoted in YAML.")
    primary_region: Region
    replica: ReplicaConfig | None = None
    prefixes: PrefixesConfig = PrefixesConfig()
    temp_expiry_hours: int = Field(
        default=24,
        gt=0,
        le=8_760,
        description="Temp uploads expire after this many hours (S3 rounds up to whole days).",
    )
    noncurrent_version_expiry_days: int = Field(default=30, gt=0, le=3_650)
    access_log_expiry_days: int = Field(default=365, gt=0, le=3_650)
    cors_allowed_origins: list[Origin] = []
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+@-]+$")],
        Annotated[str, Field(max_length=256, pattern=r"^[\w .:/=+@-]*$")],
    ] = {}
    alarm_email: EmailStr
    monthly_budget_usd: float = Field(gt=0)
    bucket_5xx_alarm_threshold: int = Field(default=5, gt=0)
    host_credentials_serial: int = Field(
        default=1,
        ge=1,
        description="Bump to rotate the Lightsail host's S3 access key on the next deploy.",
    )
    storage: StorageConfig = StorageConfig()
    cdn: CdnConfig = CdnConfig()
    lightsail: LightsailConfig | None = None

    @model_validator(mode="after")
    def _host_only(self) -> DeploymentConfig:
        if self.storage.enabled:
            return self
        # The CDN and the replica serve and copy the media bucket: without it they have
        # nothing to stand on, and the host is then the whole deployment.
        if self.cdn.enabled:
            raise FieldError(
                "cdn.enabled",
                "CloudFront serves the media bucket, and storage.enabled is false: set"
                " cdn.enabled: false",
            )
        if self.replica is not None:
            raise FieldError(
                "replica", "copies the media bucket, and storage.enabled is false: remove it"
            )
        if self.lightsail is None or not self.lightsail.enabled:
            raise FieldError(
                "lightsail.enabled",
                "must be true when storage.enabled is false (the host is then the only store)",
            )
        return self

    @model_validator(mode="after")
    def _cross_field(self) -> DeploymentConfig:
        if self.replica and self.replica.region == self.primary_region:
            raise ValueError("replica.region must differ from primary_region")
        if self.lightsail:
            if self.primary_region not in LIGHTSAIL_REGIONS:
                raise ValueError(f"Lightsail does not run in {self.primary_region}")
            if not self.lightsail.availability_zone.startswith(self.primary_region):
                raise ValueError(
                    f"lightsail.availability_zone {self.lightsail.availability_zone!r} is not in"
                    f" primary_region {self.primary_region}"
                )
        private = set(self.cdn.private_prefixes)
        if private - set(self.prefixes.permanent):
            raise ValueError(
                f"cdn.private_prefixes {sorted(private - set(self.prefixes.permanent))} are not"
                " permanent prefixes"
            )
        behaviours = len(self.prefixes.permanent) + 2 * len(private) + 3
        if self.cdn.enabled and behaviours > CLOUDFRONT_MAX_BEHAVIOURS:
            raise ValueError(
                f"the distribution would need {behaviours} cache behaviours (each permanent"
                " prefix, /img/ and /variants/ for each of cdn.private_prefixes, /img/*,"
                f" /variants/*, temp); CloudFront allows {CLOUDFRONT_MAX_BEHAVIOURS}"
            )
        sources = set(self.cdn.variant_source_prefixes)
        if sources - set(self.prefixes.permanent):
            raise ValueError(
                f"cdn.variant_source_prefixes {sorted(sources - set(self.prefixes.permanent))}"
                " are not permanent prefixes"
            )
        return self

    @property
    def host_only(self) -> bool:
        """No cloud storage: the Lightsail host is the only store."""
        return not self.storage.enabled

    @property
    def media_bucket_name(self) -> str:
        """Fixed, so stacks in other regions and the host can name it without lookups."""
        return f"{self.app_name}-media-{self.account}-{self.primary_region}"

    @property
    def temp_expiry_days(self) -> int:
        """S3 lifecycle rules count whole days: round the configured hours up."""
        return math.ceil(self.temp_expiry_hours / 24)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _reason(error: dict) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling against README's config reference)"
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and "input" in error:
        message += f" (got {error['input']!r})"
    return message


def parse_config(data: object, source: str) -> DeploymentConfig:
    """Validate already-loaded YAML data; ``source`` names the file in errors."""
    try:
        return DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            # Errors from validators on a whole model carry only that model's path.
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, FieldError):
                loc = (*loc, *cause.field.split("."))
            lines.append(f"  {_field_path(loc)}: {_reason(error)}")
        raise ConfigError(f"{source}: invalid deployment config\n" + "\n".join(lines)) from None


def load_config(name_or_path: str | Path, config_dir: Path = CONFIG_DIR) -> DeploymentConfig:
    """Load ``config/NAME.yaml`` (or a path to a YAML file) and validate it."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir / f"{name_or_path}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml"))) or "none"
        raise ConfigError(f"{path}: no such deployment config (known: {known})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a deployment config is a YAML mapping of fields")
    return parse_config(data, str(path))

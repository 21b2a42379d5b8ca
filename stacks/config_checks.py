"""Field checks of the deployment config: each raises ``ValueError`` with the reason, and
``stacks/config.py`` reports it at its field."""

from __future__ import annotations

import ipaddress
import re

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from stacks.regions import AWS_REGIONS

# The CloudFront behaviours the Cdn stack generates for every deployment, and the host's
# Nginx locations of the same name: a media prefix there would share (and break) them.
RESERVED_PREFIXES = ("variants/", "img/")
_PEM_HEADER = "-----BEGIN PUBLIC KEY-----"


def media_prefix(value: str) -> str:
    top = value.split("/", 1)[0] + "/"
    if top in RESERVED_PREFIXES:
        raise ValueError(
            f"{value!r} lies under {top!r}, which the generated /{top}* CloudFront behaviour"
            " and host location serve; choose another prefix"
        )
    return value


def variant_box(value: str) -> str:
    match = re.fullmatch(r"([1-9][0-9]{0,3})x([1-9][0-9]{0,3})", value)
    if not match or max(int(match[1]), int(match[2])) > 8192:
        raise ValueError(
            f"{value!r} is not a box like '1200x630': width x height in pixels, each 1-8192,"
            " without leading zeros"
        )
    return value


def absolute_path(value: str) -> str:
    segments = value.split("/")[1:]
    if not value.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise ValueError(
            f"{value!r} is not a plain absolute path: it must start with '/' and have no"
            " empty, '.' or '..' segments (Nginx and the service would resolve it elsewhere)"
        )
    return value


def cloudfront_public_key(value: str) -> str:
    """CloudFront takes an X.509 SubjectPublicKeyInfo PEM of an RSA 2048 or ECDSA P-256 key."""
    text = value.strip()
    if not text.startswith(_PEM_HEADER):
        raise ValueError(
            f"is not a PEM public key: it must start with {_PEM_HEADER!r}"
            " (openssl rsa -pubout -in private_key.pem)"
        )
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a readable PEM public key ({exc})") from None
    rsa_2048 = isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    p_256 = isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    if not (rsa_2048 or p_256):
        raise ValueError(
            "is a public key CloudFront cannot use: signed URLs take RSA 2048-bit or ECDSA"
            " P-256 keys only"
        )
    return value


def region(value: str) -> str:
    if value not in AWS_REGIONS:
        raise ValueError(f"{value!r} is not a known AWS region (for example 'eu-west-1')")
    return value


def key_prefix(value: str) -> str:
    if not re.fullmatch(r"(?:[a-z0-9][a-z0-9_-]*/)+", value):
        raise ValueError(
            f"{value!r} is not a key prefix: lowercase segments of letters, digits, '-' or '_',"
            " each ending in '/', with no leading '/'"
        )
    return value


# The widest ranges SSH may be opened to: a /16 is already 65,536 IPv4 addresses (a whole
# organisation); an IPv6 /48 is one site. Anything wider is a mistake or the Internet.
SSH_MIN_PREFIX_LENGTH = {4: 16, 6: 48}


def ssh_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block like 203.0.113.0/24 ({exc})") from None
    shortest = SSH_MIN_PREFIX_LENGTH[network.version]
    if network.prefixlen < shortest:
        raise ValueError(
            f"{value!r} opens SSH to {network.num_addresses:,} addresses; list your own"
            f" networks, IPv{network.version} prefixes of /{shortest} or longer"
        )
    return str(network)


def web_origin(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?", value):
        raise ValueError(
            f"{value!r} is not a web origin like https://app.example.com (scheme, host, optional"
            " port, no path or trailing '/')"
        )
    return value

"""Render and start a real Nginx (Debian's package) in front of the service."""

from __future__ import annotations

import subprocess
from pathlib import Path
from string import Template

from tests.helpers import ensure_debian_packages

TEMPLATE = Path(__file__).with_name("nginx_site.conf.tmpl")


def nginx_binary() -> str:
    return ensure_debian_packages("nginx", binary="nginx")


def render_site(
    prefix: Path, *, port: int, socket: Path, root: Path, secret: str, body_limit: str, extra=""
) -> Path:
    """Write ``prefix/nginx.conf`` and its temp directories; check it with ``nginx -t``."""
    text = Template(TEMPLATE.read_text()).substitute(
        prefix=prefix,
        port=port,
        socket=socket,
        root=root,
        secret=secret,
        body_limit=body_limit,
        extra=extra,
    )
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    check = subprocess.run(
        [nginx_binary(), "-t", "-c", str(conf)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    return conf

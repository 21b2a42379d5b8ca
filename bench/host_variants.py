"""bench/host_variants: image variants on the single host, each beside its peer in one run.

1. First hit of an 800-px WebP of a 4000x3000 JPEG through Nginx -> service (parse, read
   the original, render, fsync + link, answer) against the image core's ``render`` alone on
   the same bytes in this process. Goal: <= 1.5x.
2. Later hits of that variant (Nginx from disk, the role's /variants/ location) against
   plain Nginx static serving of a copy of the same file. Goal: >= 0.9x.

The service's peak RSS is its VmHWM from /proc (it started small, nothing forked from here).

Usage: .venv/bin/python -m bench.host_variants [--runs 15] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from bench.serve import wrk
from stacks.config import CdnConfig
from stacks.edge_config import cloudfront_function_code, host_variant_config
from stowage.images.core import VariantConfig, parse_variant_uri, render
from tests.helpers import free_port
from tests.runtime.conftest import TOKEN
from tests.runtime.nginx import stowage_behind_nginx

CDN = CdnConfig()


def photo() -> bytes:
    """A 4000x3000 JPEG of about a phone photo's size: smooth shapes plus sensor-like noise."""
    size = (4000, 3000)
    shapes = Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 80).convert("RGB")
    noise = Image.merge("RGB", [Image.effect_noise(size, 48) for _ in range(3)])
    image = Image.blend(shapes, noise, 0.25)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    settings = host_variant_config(CDN)
    config = VariantConfig.from_json(settings)
    source = photo()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "variants.json").write_text(json.dumps(settings))
        static_port = free_port()
        static_root = tmp / "static"
        static_root.mkdir()
        site_vars = {
            "nginx_image_variants": True,
            "nginx_img_function": cloudfront_function_code(CDN),
            "nginx_private_prefixes": [],
        }
        # The peer: the same Nginx workers, a plain static server (logging too, as the site
        # does), without the variant location's try_files, symlink checks and headers.
        static = (
            f"    server {{ listen 127.0.0.1:{static_port}; sendfile on; tcp_nopush on;"
            f" aio threads;"
            f" access_log {tmp}/static.access.log; location /static/ {{ alias {static_root}/; }} }}"
        )
        with stowage_behind_nginx(
            tmp,
            site_vars=site_vars,
            extra=static,
            STOWAGE_VARIANTS_CONFIG=str(tmp / "variants.json"),
        ) as stack:
            client = stack.client
            upload = client.post(
                "/api/upload/image",
                files={"file": ("p.jpg", source)},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            upload.raise_for_status()
            key = upload.json()["key"]
            uri = f"/variants/{key}/800x0.webp"
            stored = stack.root / "variants" / key / "800x0.webp"
            request = parse_variant_uri(uri, config)

            render(source, request, config)  # warm both sides alike
            client.get(uri).raise_for_status()
            core, first = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                body = render(source, request, config).body
                core.append(time.perf_counter() - started)
                stored.unlink()
                started = time.perf_counter()
                response = client.get(uri)
                first.append(time.perf_counter() - started)
                response.raise_for_status()
                if not stored.is_file():
                    raise RuntimeError("the first hit stored no variant")
            hwm = vm_hwm_mib(stack.service.pid)

            (static_root / "same.webp").write_bytes(stored.read_bytes())
            hits = wrk(f"{stack.base}{uri}", seconds=args.seconds, connections=args.connections)
            time.sleep(1)
            plain = wrk(
                f"http://127.0.0.1:{static_port}/static/same.webp",
                seconds=args.seconds,
                connections=args.connections,
            )

    core_ms, first_ms = statistics.median(core) * 1000, statistics.median(first) * 1000
    print(f"800-px WebP of a 4000x3000 JPEG ({len(source) / 1e6:.1f} MB), {len(body)} bytes out")
    print("| what | median ms (runs) | requests/s |\n|---|---|---|")
    print(f"| core render() alone, in process | {core_ms:.0f} ({args.runs}) | |")
    print(f"| first hit: Nginx -> service -> render + store | {first_ms:.0f} ({args.runs}) | |")
    print(f"| later hits: Nginx /variants/ from disk | | {hits[0]:,.0f} |")
    print(f"| peer: plain Nginx static, same file | | {plain[0]:,.0f} |")
    print(f"\nfirst hit / core render = {first_ms / core_ms:.2f}x (goal <= 1.5x)")
    print(f"later hits / plain static = {hits[0] / plain[0]:.2f}x (goal >= 0.9x)")
    print(f"service peak RSS (VmHWM) = {hwm:.0f} MiB")


if __name__ == "__main__":
    main()

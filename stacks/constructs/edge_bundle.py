"""The Lambda@Edge bundle, built without Docker: our handler and core, the key validator
they share with the runtime, the deployment's config.json, and Pillow and pillow-heif
installed for the Lambda platform by pip. Cached by a hash of every input, so synth is
fast and the asset hash only changes when an input does."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "edge-bundle"
PILLOW = "Pillow==13.0.0"
# HEIC/HEIF originals; its manylinux wheel carries libheif and its codecs.
PILLOW_HEIF = "pillow-heif==1.8.1"
# Lambda's Python 3.13 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels fit.
PIP_PLATFORM = [
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.13",
    "--implementation",
    "cp",
    "--only-binary=:all:",
]
# The one key validator, shared with the runtime.
KEY_RULES = {
    "stowage/__init__.py": ROOT / "runtime" / "stowage" / "__init__.py",
    "stowage/keys.py": ROOT / "runtime" / "stowage" / "keys.py",
    "stowage/errors.py": ROOT / "runtime" / "stowage" / "errors.py",
}
# The image core is the runtime's own package, so the host renders with the same code.
IMAGE_CORE = {
    f"stowage/images/{path.name}": path
    for path in sorted((ROOT / "runtime" / "stowage" / "images").glob("*.py"))
}
SOURCES = {"handler.py": ROOT / "lambda_edge" / "handler.py", **IMAGE_CORE, **KEY_RULES}
INVALIDATOR_SOURCES = {"invalidate.py": ROOT / "lambda_edge" / "invalidate.py", **KEY_RULES}
MAX_BUNDLE_BYTES = 50 * 1024 * 1024


def build_edge_bundle(config: dict) -> Path:
    """The bundle directory for ``config`` (built once, then reused)."""
    config_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256()
    for name, path in sorted(SOURCES.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(
        config_text.encode()
        + PILLOW.encode()
        + PILLOW_HEIF.encode()
        + " ".join(PIP_PLATFORM).encode()
    )
    target = CACHE / digest.hexdigest()[:24]
    done = target.with_suffix(".size")
    if done.exists() and target.is_dir():
        return target
    work = target.with_suffix(".tmp")
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--target",
            str(work),
            *PIP_PLATFORM,
            PILLOW,
            PILLOW_HEIF,
        ],
        check=True,
    )
    shutil.rmtree(work / "bin", ignore_errors=True)
    for name, path in SOURCES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, work / name)
    (work / "config.json").write_text(config_text)
    size = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    if size > MAX_BUNDLE_BYTES:
        raise RuntimeError(f"edge bundle is {size} bytes unzipped; Lambda@Edge allows 50 MB zipped")
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    done.write_text(f"{size}\n")
    return target


def build_invalidator_bundle() -> Path:
    """The regional invalidation function: its module and the key rules (boto3 is in the
    Lambda runtime)."""
    digest = hashlib.sha256()
    for name, path in sorted(INVALIDATOR_SOURCES.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    target = CACHE / f"invalidator-{digest.hexdigest()[:24]}"
    if not target.is_dir():
        work = target.with_suffix(".tmp")
        shutil.rmtree(work, ignore_errors=True)
        for name, path in INVALIDATOR_SOURCES.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / name)
        work.rename(target)
    return target


def bundle_bytes(bundle: Path) -> int:
    """Unzipped size of a built bundle."""
    return int(bundle.with_suffix(".size").read_text())

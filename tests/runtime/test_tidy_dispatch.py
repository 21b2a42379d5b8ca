"""The runtime asks the backend interface, never the backend's type (where spool files go
and who signs a download come from ``spool_root()``, ``side()``, ``presign_download()``),
and keeps its modules within the house limit."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import httpx
import pytest

from stowage.backends import HybridBackend, LocalBackend, S3Backend
from stowage.catalog import open_catalog
from stowage.errors import BadRequest
from stowage.service import Spooled, Stowage
from stowage.settings import Settings
from stowage.sniff import SNIFF_BYTES
from tests.runtime.conftest import SECRET, image_bytes

RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "stowage"
BACKEND_TYPES = {"Backend", "LocalBackend", "S3Backend", "HybridBackend", "S3Migration"}


def _type_checks(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "isinstance" and len(node.args) == 2:
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            if names & BACKEND_TYPES:
                found.append(f"isinstance(..., {ast.unparse(node.args[1])})")
        elif (
            node.func.id in ("hasattr", "getattr")
            and node.args
            and "backend" in ast.unparse(node.args[0]).lower()
        ):
            found.append(ast.unparse(node))
    return found


def test_no_runtime_module_dispatches_on_a_backend_type():
    offenders = {
        str(path.relative_to(RUNTIME)): checks
        for path in sorted(RUNTIME.rglob("*.py"))
        if (checks := _type_checks(ast.parse(path.read_text())))
    }
    assert offenders == {}


def _settings(root: Path, **extra) -> Settings:
    return Settings(local_root=root, signing_secret=SECRET, **extra)


def _store(service: Stowage, data: bytes):
    path = service.spool.spool_file()
    path.write_bytes(data)
    spooled = Spooled(path, hashlib.sha256(data).hexdigest(), len(data), data[:SNIFF_BYTES])
    return service.store("image", spooled, is_temp=False)


def test_spool_files_live_on_the_filesystem_of_the_backends_own_disk(tmp_path, bucket, moto_url):
    """A hybrid backend whose disk is not ``settings.local_root``: spool files (and the free
    space checked before an upload) are those of its disk, so a local put stays a rename."""
    media = tmp_path / "media"
    backend = HybridBackend(
        LocalBackend(media), S3Backend(bucket, spool_dir=tmp_path / "s3-spool"), s3_percent=0
    )
    settings = _settings(tmp_path / "elsewhere")
    service = Stowage(settings, backend, open_catalog(f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        assert service.spool.spool_file().parent == media / ".stowage-tmp"
        record = _store(service, image_bytes())
        assert (media / record.key).is_file()
        assert not (tmp_path / "elsewhere" / ".stowage-tmp").exists()
    finally:
        service.close()


def test_downloads_are_signed_by_the_side_that_holds_the_object(tmp_path, bucket, moto_url):
    s3 = S3Backend(bucket, prefix="media/", spool_dir=tmp_path / "s3-spool")
    backend = HybridBackend(LocalBackend(tmp_path / "media"), s3, s3_percent=100)
    settings = _settings(tmp_path / "media", public_base_url="https://media.example")
    service = Stowage(settings, backend, open_catalog(f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        data = image_bytes(size=(30, 20))
        record = _store(service, data)
        assert record.backend == "s3"
        fetched = httpx.get(service.download_url(record))
        assert fetched.status_code == 200
        assert fetched.content == data
        local_url = service.sign_key("images/x.png", backend="local")
        assert local_url.startswith("https://media.example/files/images/x.png?expires=")
    finally:
        service.close()


def test_a_service_without_the_side_a_record_names_refuses_to_sign(tmp_path):
    service = Stowage.from_settings(_settings(tmp_path / "media"))
    try:
        with pytest.raises(BadRequest, match="no s3 backend"):
            service.sign_key("images/x.png", backend="s3")
    finally:
        service.close()


def test_every_runtime_module_stays_within_the_house_limit():
    """Modules of at most 400 lines (s3.py had grown to 463)."""
    too_long = {
        str(path.relative_to(RUNTIME)): lines
        for path in sorted(RUNTIME.rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert too_long == {}

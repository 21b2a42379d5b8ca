"""Image variants on the single host: the service's adapter over the image core.

Nginx serves ``/variants/{original_key}/{w}x{h}[-cover].{fmt}`` from
``{local_root}/variants/`` and hands a miss to the service. Here the path is parsed by the
core (``parse_variant_uri``: the allowlist, limits and errors the edge has, from the same
deployment values, written to ``STOWAGE_VARIANTS_CONFIG`` by the runtime role), the original
is read through the backend (local disk, S3 or both), rendered by the core, and stored under
``variants/`` so Nginx serves it from then on.

Storing: the bytes go to a spool file on the media filesystem, are fsynced and hard-linked
into place, then the directory is fsynced. A link fails if the variant exists, so two first
hits (in this process they are serialized per variant; across processes the link decides)
never leave a partial or a second copy, and a reader sees the whole file or none.

Rendering is bounded: at most ``STOWAGE_VARIANT_RENDERS`` decodes at once, at most
``STOWAGE_VARIANT_RENDER_QUEUE`` more waiting; past that a miss is answered 503 with
Retry-After, so a burst of misses costs a bounded amount of memory.

The image core needs the optional ``stowage[images]`` extra (Pillow, pillow-heif), so it is
imported only on a host that has variants configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl

from anyio import to_thread

from stowage.backends import Backend, LocalBackend
from stowage.backends.local import disk_full
from stowage.backends.local_migration import fsync_dir
from stowage.catalog import Record
from stowage.errors import DiskFull, InvalidKey, StowageError
from stowage.keys import url_path
from stowage.settings import Settings, SettingsError
from stowage.signing import secure_link_md5, verify_uri

log = logging.getLogger("stowage.variants")

_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    415: "unsupported_type",
    422: "cannot_encode",
}


class VariantRefused(StowageError):
    """The core's refusal (400/403/404/413/415/422), answered with its own status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = _CODES.get(status, "bad_request")


class Busy(StowageError):
    status = 503
    code = "busy"


# The /img/ query parameters the mapping reads, in the order Nginx's secure_link_md5 for
# /img/ locations spells them: a signature covers the size, fit and format it was given.
IMG_SIGNED_PARAMS = ("w", "h", "fit", "fmt")


def sign_variant_url(base_url: str, uri: str, secret: str, *, ttl: int) -> str:
    """A signed link to ``/variants/...`` or ``/img/...?w=&h=&fit=&fmt=`` of a private
    prefix: Nginx checks it as it checks ``/files/`` links (md5 over expiry, the decoded
    path and the secret; for /img/ also the parameters that choose the variant)."""
    path, _, query = uri.partition("?")
    signed = path
    if path.startswith("/img/"):
        params = dict(parse_qsl(query, keep_blank_values=True))
        if set(params) - set(IMG_SIGNED_PARAMS):
            raise ValueError(f"/img/ links take only {', '.join(IMG_SIGNED_PARAMS)}")
        if not params.get("w"):
            raise ValueError("a signed /img/ link names its width (w)")
        signed += "?" + "&".join(f"{name}={params.get(name, '')}" for name in IMG_SIGNED_PARAMS)
    elif query:
        raise ValueError("/variants/ links take no query")
    expires = int(time.time() + ttl)
    token = secure_link_md5(signed, expires, secret)
    prefix = f"{query}&" if query else ""
    return f"{base_url}{url_path(path)}?{prefix}expires={expires}&md5={token}"


class HostVariants:
    def __init__(
        self,
        config,
        originals: Backend,
        store: LocalBackend,
        *,
        renders: int,
        queue: int,
        private_prefixes: tuple[str, ...] = (),
        signing_secret: str | None = None,
        original_of: Callable[[str], Record | None] = lambda key: None,
    ) -> None:
        self.config = config
        self.original_of = original_of
        # Set when no Nginx checks signatures in front of the service.
        self.private_prefixes = private_prefixes
        self.signing_secret = signing_secret
        self.originals = originals
        self.store = store
        self.renders = renders
        self.queue = queue
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        originals: Backend,
        original_of: Callable[[str], Record | None],
    ) -> HostVariants | None:
        """None when the host has no variants configured (the route then answers 404)."""
        if settings.variants_config is None:
            return None
        try:
            from stowage.images.core import VariantConfig
        except ImportError as exc:
            raise SettingsError(
                "invalid settings: STOWAGE_VARIANTS_CONFIG needs the image extra"
                f" (pip install 'stowage[images]'): {exc}"
            ) from None
        try:
            data = json.loads(settings.variants_config.read_text())
            config = VariantConfig.from_json(data)
            private = () if settings.behind_nginx else tuple(data.get("private_prefixes", ()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SettingsError(
                f"invalid settings: STOWAGE_VARIANTS_CONFIG={settings.variants_config}:"
                f" {type(exc).__name__}: {exc}"
            ) from None
        return cls(
            config,
            originals,
            LocalBackend(settings.local_root),
            renders=settings.variant_renders,
            queue=settings.variant_render_queue,
            private_prefixes=private,
            signing_secret=settings.signing_secret.get_secret_value()
            if settings.signing_secret
            else None,
            original_of=original_of,
        )

    async def get(
        self, uri: str, *, expires: str | None = None, md5: str | None = None
    ) -> tuple[bytes, str]:
        """The variant ``uri`` names: (body, content type), stored on disk once rendered.
        ``expires``/``md5``: the link's signature, checked here for a private prefix when
        no Nginx has checked it."""
        from stowage.images.core import VariantError, parse_variant_uri

        try:
            request = parse_variant_uri(uri, self.config)
        except VariantError as exc:
            raise VariantRefused(exc.status, exc.message) from None
        if self.private_prefixes and request.original_key.startswith(self.private_prefixes):
            verify_uri("/" + request.variant_key, expires, md5, self.signing_secret or "")
        path = self.store.path_for(request.variant_key)  # InvalidKey on a symlink: 400
        async with self._lock(request.variant_key):
            if path.is_file():  # a concurrent first hit stored it meanwhile
                return await to_thread.run_sync(path.read_bytes), request.content_type
            async with self._slot():
                body = await to_thread.run_sync(self._render_and_store, request, path)
        return body, request.content_type

    @asynccontextmanager
    async def _lock(self, variant_key: str):
        lock = self._locks.setdefault(variant_key, asyncio.Lock())
        self._users[variant_key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[variant_key] -= 1
            if not self._users[variant_key]:
                del self._users[variant_key], self._locks[variant_key]

    @asynccontextmanager
    async def _slot(self):
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.renders)
        if self._slots.locked() and self._waiting >= self.queue:
            raise Busy(f"{self.renders} variants are rendering and {self._waiting} waiting")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    def _render_and_store(self, request, path: Path) -> bytes:
        """Render and store, then look at the original again: a delete, move or new focal
        point that landed meanwhile has already retired the variants it could see, so a
        result stored after that is retracted here (and, for a new focal point, rendered
        again). Both sides retire after changing the catalog row, so one of them always
        sees the other."""
        for _ in range(3):
            before = self._state(request)
            body = self._render(request, focal=before[2] if before else None)
            stored = self._store(path, body)
            after = self._state(request)
            if after == before:
                return body
            if stored is not None:
                _unlink_if_same(path, stored)
            if after is None:
                raise VariantRefused(404, f"{request.original_key} was removed while rendering")
        raise Busy(f"the original of {request.variant_key} keeps changing; try again")

    def _state(self, request) -> tuple | None:
        """What the variant depends on besides its URI: which upload holds the original key
        (id, sha256) and, for a cover crop, its focal point. None when nothing does."""
        record = self.original_of(request.original_key)
        if record is None:
            return None
        return (record.id, record.sha256, record.focal_point if request.fit == "cover" else None)

    def _render(self, request, *, focal) -> bytes:
        from stowage.images.core import VariantError, render

        try:
            info = self.originals.head(request.original_key)
        except (FileNotFoundError, InvalidKey):
            raise VariantRefused(404, f"no original at {request.original_key}") from None
        if info.size > self.config.max_source_bytes:
            raise VariantRefused(413, f"original is over {self.config.max_source_bytes} bytes")
        source = self.originals.read_all(request.original_key)
        started = time.perf_counter()
        try:
            rendered = render(source, request, self.config, focal=focal)
        except VariantError as exc:
            raise VariantRefused(exc.status, exc.message) from None
        log.info(
            "variant rendered",
            extra={
                "key": request.variant_key,
                "bytes": len(rendered.body),
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return rendered.body

    def _store(self, path: Path, body: bytes) -> tuple[int, int] | None:
        """Store ``body`` at ``path`` unless a copy is there; the (device, inode) linked,
        or None when another copy was there first."""
        spool = self.store.spool_file()
        try:
            with open(spool, "xb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
                status = os.fstat(out.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(spool, path)  # never replaces: the first stored copy stays
            except FileExistsError:
                return None
            fsync_dir(path.parent)
            return status.st_dev, status.st_ino
        except OSError as exc:
            if disk_full(exc):
                raise DiskFull("no space left on the media filesystem") from None
            raise
        finally:
            spool.unlink(missing_ok=True)


def _unlink_if_same(path: Path, stored: tuple[int, int]) -> None:
    """Remove ``path`` if it is still the file this process linked there."""
    try:
        status = os.lstat(path)
        if (status.st_dev, status.st_ino) == stored:
            path.unlink()
    except FileNotFoundError:
        pass

"""The ``stowage`` command: serve the API and run maintenance.

Exit status (README, "CLI"): 0 success; 1 objects left behind, differences found or a check
alerted; 2 bad usage, settings or key; 3 a missing bucket, directory, object or run;
4 no credentials or access denied; 5 the operation failed; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import urllib.request
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from stowage.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LEFT_BEHIND,
    EXIT_USAGE,
    describe,
)
from stowage.migrate.cli import UsageError, add_commands
from stowage.settings import SettingsError, load_settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Far beyond any expiry or age anyone means, and far inside what datetime arithmetic holds.
MAX_DURATION = timedelta(days=36500)


def duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` (a bare number means seconds)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 24h, 30m or 7d")
    value, unit = match.groups()
    seconds = float(value) * _UNITS[unit or "s"]
    if seconds > MAX_DURATION.total_seconds():
        raise argparse.ArgumentTypeError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def percentage(text: str) -> float:
    """A threshold in percent, 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100")
    return value


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line naming the argument, exit 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _service(settings=None):
    from stowage.service import Stowage

    settings = settings or load_settings()
    settings.require_local_root()
    return Stowage.from_settings(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from stowage.api import logs
    from stowage.api.app import create_app

    settings = load_settings()
    settings.require_service_secrets()
    logs.configure(settings.log_level)
    # Built here, not in the app's lifespan, so a catalog or root that cannot be opened is
    # one line and an exit status, not uvicorn's "Application startup failed" traceback.
    app = create_app(service=_service(settings))
    config = {
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 30,
    }
    if args.uds:
        uvicorn.run(app, uds=args.uds, **config)
    else:
        uvicorn.run(app, host=args.host, port=args.port, **config)
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    service = _service()
    try:
        report = service.cleanup(older_than=args.older_than, dry_run=args.dry_run)
    finally:
        service.close()
    if not args.dry_run:
        from stowage.stats import record_cleanup

        record_cleanup(service.settings.local_root)
    summary = asdict(report)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{verb} {report.counts['deleted_objects']} temp objects"
            f" ({report.deleted_bytes} bytes), {report.counts['orphan_spool_files']} orphaned"
            f" spool files, {report.counts['aborted_multipart']} stale multipart uploads"
        )
    return 0


def cmd_disk_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    root = Path(args.path or settings.local_root)
    usage = shutil.disk_usage(root)
    percent = 100 * usage.used / usage.total
    message = (
        f"{root}: {percent:.1f}% used ({usage.free // 2**20} MiB free of"
        f" {usage.total // 2**20} MiB); threshold {args.threshold}%"
    )
    over = percent >= args.threshold
    print(("ALERT " if over else "OK ") + message)
    webhook = args.webhook or settings.disk_alert_webhook
    if over and webhook:
        body = json.dumps({"text": f"stowage disk alert: {message}"}).encode()
        if not webhook.startswith(("https://", "http://")):
            print("webhook must be an http(s) URL", file=sys.stderr)
            return EXIT_USAGE
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            webhook, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - scheme checked
        except OSError as exc:
            print(f"webhook failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_LEFT_BEHIND if over else 0


def cmd_sign_url(args: argparse.Namespace) -> int:
    service = _service()
    try:
        service.backend.check_location()
        print(service.sign_key(args.key, ttl=int(args.expires.total_seconds())))
    finally:
        service.close()
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    service = _service()
    try:
        counts = service.reindex()
    finally:
        service.close()
    print(
        json.dumps(counts)
        if args.json
        else f"catalog rebuilt: {counts['added']} added, {counts['removed']} removed,"
        f" {counts['objects']} objects in storage"
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from stowage.catalog import open_catalog
    from stowage.stats import collect, on_disk, render_table

    settings = load_settings()
    if args.path:
        settings = settings.model_copy(update={"local_root": Path(args.path)})
    # A missing root is one line here, before opening the catalog would create it there.
    shutil.disk_usage(settings.local_root)
    catalog = open_catalog(settings.resolved_catalog_url) if on_disk(settings) else None
    try:
        stats = collect(
            settings.local_root,
            temp_max_age_hours=settings.temp_max_age_hours,
            catalog=catalog,
        )
    finally:
        if catalog:
            catalog.close()
    print(json.dumps(stats.as_json(), indent=2) if args.json else render_table(stats))
    return 0


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="stowage", description=__doc__.splitlines()[0])
    root.add_argument("--version", action="version", version=f"stowage {_version()}")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--uds", help="listen on this unix socket instead of TCP")
    serve.set_defaults(run=cmd_serve)

    cleanup = commands.add_parser("cleanup", help="delete expired temp objects and orphans")
    cleanup.add_argument("--older-than", type=duration, default=timedelta(hours=24))
    cleanup.add_argument("--dry-run", action="store_true", help="list, change nothing")
    cleanup.add_argument("--json", action="store_true", help="print the report as JSON")
    cleanup.set_defaults(run=cmd_cleanup)

    disk = commands.add_parser("disk-check", help="exit 1 when the media disk is too full")
    disk.add_argument("--threshold", type=percentage, default=80, help="percent used that alerts")
    disk.add_argument("--path", help="filesystem to check (default: STOWAGE_LOCAL_ROOT)")
    disk.add_argument(
        "--webhook", help="POST a JSON alert here (default: STOWAGE_DISK_ALERT_WEBHOOK)"
    )
    disk.set_defaults(run=cmd_disk_check)

    sign = commands.add_parser("sign-url", help="print a signed, expiring URL for a key")
    sign.add_argument("key")
    sign.add_argument("--expires", type=duration, default=timedelta(hours=1))
    sign.set_defaults(run=cmd_sign_url)

    reindex = commands.add_parser("reindex", help="rebuild the catalog from the storage")
    reindex.add_argument("--json", action="store_true")
    reindex.set_defaults(run=cmd_reindex)

    stats = commands.add_parser("stats", help="disk use, objects by prefix, temp backlog")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON")
    stats.add_argument("--path", help="media root (default: STOWAGE_LOCAL_ROOT)")
    stats.set_defaults(run=cmd_stats)

    add_commands(commands)
    return root


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stowage")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, UsageError) as exc:
        print(f"stowage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # an operator's error is one line; anything else is a bug
        described = describe(exc)
        if described is None:
            raise
        status, message = described
        print(f"stowage: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())

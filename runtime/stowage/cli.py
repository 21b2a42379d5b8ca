"""The ``stowage`` command: serve the API and run maintenance.

Exit status: 0 success; 1 the check found a problem (``disk-check`` over threshold);
2 bad usage or settings; 3 an operation failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import urllib.request
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from stowage.errors import StowageError
from stowage.settings import SettingsError, load_settings

EXIT_PROBLEM, EXIT_USAGE, EXIT_FAILED = 1, 2, 3

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` (a bare number means seconds)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 24h, 30m or 7d")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNITS[unit or "s"])


def _service():
    from stowage.service import Stowage

    return Stowage.from_settings(load_settings())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from stowage.api import logs
    from stowage.api.app import create_app

    settings = load_settings()
    settings.require_service_secrets()
    logs.configure(settings.log_level)
    app = create_app(settings=settings)
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
    summary = asdict(report)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{verb} {len(report.deleted_objects)} temp objects ({report.deleted_bytes} bytes),"
            f" {len(report.orphan_spool_files)} orphaned spool files,"
            f" {len(report.aborted_multipart)} stale multipart uploads"
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
    return EXIT_PROBLEM if over else 0


def cmd_sign_url(args: argparse.Namespace) -> int:
    service = _service()
    try:
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


# --- migration ---------------------------------------------------------------------------


def size(text: str) -> int:
    """``50M``, ``1.5G``, ``800K`` or bytes: a bandwidth in bytes per second."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 50M or 1G")
    value, unit = match.groups()
    return int(float(value) * 1024 ** "_KMG".index(unit.upper() or "_"))


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("STOWAGE_MIGRATION_DIR", "stowage-migrations"))


def _options(args: argparse.Namespace):
    from stowage.migrate.engine import Options

    return Options(
        include=args.include or [],
        exclude=args.exclude or [],
        workers=args.workers,
        bwlimit=getattr(args, "bwlimit", None),
        overwrite=getattr(args, "overwrite", False),
        checksum=getattr(args, "checksum", False),
        delete_source=getattr(args, "delete_source", False),
        catalog_url=getattr(args, "catalog", None),
        quiet=args.quiet,
    )


class UsageError(Exception):
    """Bad arguments: the message is printed and the exit status is 2."""


def _existing_manifest(args: argparse.Namespace, run_id: str):
    from stowage.migrate.manifest import Manifest

    path = _state_dir(args) / f"{run_id}.sqlite"
    if not path.exists():
        raise UsageError(f"no run {run_id} in {_state_dir(args)}")
    return Manifest(path)


def _write_report(args: argparse.Namespace, report: dict, run_id: str | None = None) -> None:
    text = json.dumps(report, indent=2, default=str)
    if run_id:
        (_state_dir(args) / f"{run_id}.json").write_text(text)
    if args.report:
        Path(args.report).write_text(text)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def cmd_migrate(args: argparse.Namespace) -> int:
    from stowage.migrate.engine import Interrupted, Migration, Options, new_run_id, open_location
    from stowage.migrate.manifest import CONFLICT, FAILED, PLANNED, Manifest

    source, destination = open_location(args.source), open_location(args.destination)
    if args.resume:
        manifest = _existing_manifest(args, args.resume)
        run = manifest.run()
        if (run.source, run.destination) != (args.source, args.destination):
            raise UsageError(f"run {args.resume} moved {run.source} -> {run.destination}")
        options = Options(**run.options, quiet=args.quiet)
        migration = Migration(manifest, source, destination, options)
        entries = manifest.entries(PLANNED, FAILED)
        _say(args, f"resuming {args.resume}: {len(entries)} objects left")
    else:
        options = _options(args)
        migration = Migration(None, source, destination, options)
        entries = migration.plan()
        totals: dict[str, list[int]] = {}
        for entry in entries:
            count = totals.setdefault(entry.action, [0, 0])
            count[0] += 1
            count[1] += entry.size
        if args.dry_run:
            for entry in entries:
                reason = f"  ({entry.reason})" if entry.reason else ""
                print(f"{entry.action:15} {entry.size:>14} {entry.key}{reason}")
            for action, (objects, size_) in sorted(totals.items()):
                print(f"total {action}: {objects} objects, {size_} bytes")
            return 0
        run_id = new_run_id()
        manifest = Manifest(_state_dir(args) / f"{run_id}.sqlite")
        manifest.create_run(args.source, args.destination, options.to_json())
        manifest.add(entries)
        migration.manifest = manifest
        plan_text = ", ".join(f"{a} {n}" for a, (n, _) in sorted(totals.items())) or "nothing"
        _say(args, f"run {run_id}: {plan_text}")
    try:
        migration.run(entries)
    except Interrupted:
        _say(
            args,
            f"interrupted; resume with: stowage migrate {args.source} {args.destination}"
            f" --resume {manifest.run_id}",
        )
        return 130
    failed = manifest.entries(FAILED)
    conflicts = [e for e in manifest.entries() if e.action == CONFLICT]
    report = {
        "run_id": manifest.run_id,
        "source": args.source,
        "destination": args.destination,
        "status": manifest.run().status,
        "counts": manifest.counts(),
        "failed": [{"key": e.key, "error": e.error} for e in failed],
        "conflicts": [e.key for e in conflicts],
    }
    _write_report(args, report, manifest.run_id)
    manifest.close()
    _say(
        args,
        f"run {report['run_id']}: {report['status']}, {len(failed)} failed,"
        f" {len(conflicts)} conflicts",
    )
    return EXIT_PROBLEM if failed or conflicts else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from stowage.migrate.engine import open_location, verify

    differences, compared = verify(
        open_location(args.source), open_location(args.destination), _options(args)
    )
    for difference in differences:
        detail = f" ({difference.source} != {difference.destination})" if difference.source else ""
        print(f"{difference.problem:8} {difference.key}{detail}")
    report = {
        "source": args.source,
        "destination": args.destination,
        "compared": compared,
        "differences": [d.__dict__ for d in differences],
    }
    _write_report(args, report)
    _say(args, f"{compared} objects compared, {len(differences)} differences")
    return EXIT_PROBLEM if differences else 0


def cmd_status(args: argparse.Namespace) -> int:
    manifest = _existing_manifest(args, args.run_id)
    run = manifest.run()
    summary = {**run.__dict__, "counts": manifest.counts()}
    manifest.close()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{run.id}: {run.source} -> {run.destination}, {run.status} (updated {run.updated})")
        for name, count in sorted(summary["counts"].items()):
            print(f"  {name:30} {count['objects']:>8} objects {count['bytes']:>16} bytes")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from stowage.migrate.engine import Migration, Options, open_location

    manifest = _existing_manifest(args, args.run_id)
    run = manifest.run()
    migration = Migration(
        manifest,
        open_location(run.source),
        open_location(run.destination),
        Options(**run.options, quiet=args.quiet),
    )
    counts = migration.rollback()
    migration.cleanup_backups()
    report = {"run_id": run.id, "rolled_back": counts}
    _write_report(args, report)
    manifest.close()
    print(
        f"run {run.id} rolled back: {counts['deleted']} copies deleted, {counts['restored']}"
        f" overwritten objects restored, {counts['sources_restored']} sources restored,"
        f" {counts['catalog_restored']} catalog entries restored"
    )
    return 0


def _add_selection(command: argparse.ArgumentParser) -> None:
    command.add_argument("source", help="s3://bucket/prefix or a local directory")
    command.add_argument("destination", help="s3://bucket/prefix or a local directory")
    command.add_argument("--include", action="append", metavar="GLOB", help="keys to take")
    command.add_argument("--exclude", action="append", metavar="GLOB", help="keys to leave")
    command.add_argument("--workers", type=int, default=8, help="parallel transfers (8)")


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--state-dir",
        help="where run manifests live (STOWAGE_MIGRATION_DIR, default ./stowage-migrations)",
    )
    command.add_argument("--report", help="also write the JSON report here")
    command.add_argument("--quiet", action="store_true", help="no progress or summary")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="stowage", description=__doc__.splitlines()[0])
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
    disk.add_argument("--threshold", type=float, default=80, help="percent used that alerts")
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

    migrate = commands.add_parser("migrate", help="copy objects between locations, verified")
    _add_selection(migrate)
    _add_common(migrate)
    migrate.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    migrate.add_argument("--bwlimit", type=size, help="bytes per second overall, e.g. 50M")
    migrate.add_argument("--overwrite", action="store_true", help="replace differing objects")
    migrate.add_argument(
        "--checksum",
        action="store_true",
        help="compare existing objects by reading them, not by recorded hashes",
    )
    migrate.add_argument(
        "--delete-source",
        action="store_true",
        help="delete each source object once its copy is verified",
    )
    migrate.add_argument(
        "--catalog",
        metavar="URL",
        help="update this catalog's locations (sqlite:///... or dynamodb://...)",
    )
    migrate.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    migrate.set_defaults(run=cmd_migrate)

    verify = commands.add_parser("verify", help="compare two locations byte for byte")
    _add_selection(verify)
    _add_common(verify)
    verify.set_defaults(run=cmd_verify)

    status = commands.add_parser("status", help="show a migration run")
    status.add_argument("run_id")
    status.add_argument("--state-dir")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    rollback = commands.add_parser("rollback", help="undo what a migration run changed")
    rollback.add_argument("run_id")
    _add_common(rollback)
    rollback.set_defaults(run=cmd_rollback)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, UsageError) as exc:
        print(f"stowage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StowageError as exc:
        print(f"stowage: {exc.detail}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

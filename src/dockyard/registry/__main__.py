"""`python -m dockyard.registry serve|gc`: the registry server and its garbage collector.

    serve --root DIR [--addr 127.0.0.1:5000] [--tls-cert F --tls-key F]
          [--htpasswd F] [--realm R] [--token-key-file F] [--read-only] [--config FILE]
          [--proxy URL [--proxy-username U --proxy-password P]]
          [--upload-purge-age D] [--upload-purge-interval D] [--upload-purge-dry-run]
          [--no-upload-purge]
    gc --root DIR [--dry-run] [--delete-untagged] [--upload-purge-age D] [--config FILE]

`gc` removes unreferenced blobs and upload sessions idle for longer than the
upload purge age (168h unless configured); with `--delete-untagged` (`-m`, as
distribution's `garbage-collect`), untagged manifests as well (gc.py).

Both take `--s3-bucket B [--s3-endpoint URL] [--s3-region R] [--s3-prefix P]`
instead of `--root` to keep the registry in S3; credentials come from the
usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) or the
configuration file.

`main(argv)` is what the dockyard CLI can call as well; it returns the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

from dockyard.registry import gc as gcmod
from dockyard.registry.proxy import ProxySettings
from dockyard.registry.s3 import S3Settings
from dockyard.registry.server import (Config, InvalidDuration, TokenSettings, UploadPurging,
                                      load_config, open_driver, parse_duration, serve)


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="JSON configuration file (flags override it)")
    parser.add_argument("--root", help="storage directory")
    parser.add_argument("--s3-bucket", help="keep the registry in this S3 bucket")
    parser.add_argument("--s3-endpoint", help="URL of an S3-compatible service")
    parser.add_argument("--s3-region", help="the bucket's region (default us-east-1)")
    parser.add_argument("--s3-prefix", help="root directory inside the bucket")
    parser.add_argument("--upload-purge-age", metavar="DURATION",
                        help="upload sessions idle this long are purged (default 168h)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dockyard.registry",
                                     description="An OCI distribution registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry API")
    _storage_flags(s)
    s.add_argument("--addr", help="host:port to listen on (default 127.0.0.1:5000)")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--htpasswd", help="htpasswd file (bcrypt or {SHA} entries)")
    s.add_argument("--realm", help="basic auth realm")
    s.add_argument("--token-key-file", help="HMAC key: enables the bearer token flow")
    s.add_argument("--read-only", action="store_true", default=None,
                   help="refuse every write with 405 UNSUPPORTED")
    s.add_argument("--proxy", metavar="URL",
                   help="be a pull-through cache of the registry at URL (pushes refused)")
    s.add_argument("--proxy-username")
    s.add_argument("--proxy-password")
    s.add_argument("--upload-purge-interval", metavar="DURATION",
                   help="how often stale upload sessions are purged (default 24h)")
    s.add_argument("--upload-purge-dry-run", action="store_true", default=None,
                   help="only log the upload sessions a purge would delete")
    s.add_argument("--no-upload-purge", action="store_true",
                   help="never purge upload sessions while serving")
    s.add_argument("--log-level", default="info")
    g = sub.add_parser("gc", help="delete unreferenced blobs and stale uploads (server stopped)")
    _storage_flags(g)
    g.add_argument("-d", "--dry-run", action="store_true")
    g.add_argument("-m", "--delete-untagged", action="store_true",
                   help="delete manifests no tag references, and then their blobs")
    return parser


def _upload_purging(args: argparse.Namespace, base: UploadPurging) -> UploadPurging:
    """The configuration file's upload purging with the flags on top."""
    changes: dict = {}
    try:
        for flag in ("upload_purge_age", "upload_purge_interval"):
            if getattr(args, flag, None) is not None:
                changes[flag.rsplit("_", 1)[1]] = parse_duration(getattr(args, flag))
    except InvalidDuration as e:
        raise SystemExit(f"registry: {e}") from None
    if getattr(args, "upload_purge_dry_run", None):
        changes["dry_run"] = True
    if getattr(args, "no_upload_purge", False):
        changes["enabled"] = False
    return dataclasses.replace(base, **changes)


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        fields = load_config(args.config) if args.config else {}
    except InvalidDuration as e:
        raise SystemExit(f"registry: {args.config}: {e}") from None
    fields["upload_purging"] = _upload_purging(
        args, fields.get("upload_purging") or UploadPurging())
    for key in ("addr", "root", "tls_cert", "tls_key", "htpasswd", "realm", "read_only"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    if getattr(args, "token_key_file", None):
        token = fields.get("token") or TokenSettings(key_file=args.token_key_file)
        fields["token"] = dataclasses.replace(token, key_file=args.token_key_file)
    s3 = {k: v for k, v in (("bucket", args.s3_bucket), ("endpoint", args.s3_endpoint),
                            ("region", args.s3_region), ("prefix", args.s3_prefix)) if v}
    if s3:
        base = fields.get("s3") or S3Settings(bucket=s3.get("bucket", ""))
        fields["s3"] = dataclasses.replace(base, **s3)
        if not fields["s3"].bucket:
            raise SystemExit("registry: --s3-bucket (or \"bucket\" in --config) is required")
    proxy = {k: v for k, v in (("remoteurl", getattr(args, "proxy", None)),
                               ("username", getattr(args, "proxy_username", None)),
                               ("password", getattr(args, "proxy_password", None))) if v}
    if proxy.get("remoteurl") or (proxy and fields.get("proxy")):
        base = fields.get("proxy") or ProxySettings(remoteurl=proxy["remoteurl"])
        fields["proxy"] = dataclasses.replace(base, **proxy)
    if not fields.get("root") and not fields.get("s3"):
        raise SystemExit("registry: --root or --s3-bucket (or \"root\" or \"s3\" in "
                         "--config) is required")
    fields.setdefault("root", "")
    return Config(**fields)


def run_gc(config: Config, dry_run: bool, delete_untagged: bool = False,
           out=sys.stdout) -> int:
    report = gcmod.collect(open_driver(config), dry_run=dry_run,
                           delete_untagged=delete_untagged,
                           uploads_older_than=time.time() - config.upload_purging.age)
    verb = "would remove" if dry_run else "removed"
    for name, digest in report.manifests_removed:
        print(f"{verb} manifest {name}@{digest}", file=out)
    for digest, size in report.removed:
        print(f"{verb} {digest} ({size} bytes)", file=out)
    for info in report.uploads_removed:
        print(f"{verb} upload {info.uuid} of {info.repository or '?'}", file=out)
    for name, digest in report.unreadable:
        print(f"warning: manifest {digest} of {name} cannot be read", file=out)
    manifests = (f"; untagged manifests: {len(report.manifests_removed)} {verb}"
                 if delete_untagged else "")
    print(f"{len(report.marked)} blobs referenced, {len(report.removed)} {verb} "
          f"({report.bytes_removed} bytes){manifests}; "
          f"stale uploads: {len(report.uploads_removed)} {verb}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "gc":
        return run_gc(config_from_args(args), args.dry_run, args.delete_untagged)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(config_from_args(args))
    except (OSError, ValueError) as e:
        print(f"registry: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

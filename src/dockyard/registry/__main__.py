"""`python -m dockyard.registry serve|gc`: the registry server and its garbage collector.

    serve --root DIR [--addr 127.0.0.1:5000] [--tls-cert F --tls-key F]
          [--htpasswd F] [--realm R] [--token-key-file F] [--read-only] [--config FILE]
    gc --root DIR [--dry-run]

`main(argv)` is what the dockyard CLI can call as well; it returns the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from dockyard.registry import gc as gcmod
from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.server import Config, TokenSettings, load_config, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dockyard.registry",
                                     description="An OCI distribution registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry API")
    s.add_argument("--config", help="JSON configuration file (flags override it)")
    s.add_argument("--addr", help="host:port to listen on (default 127.0.0.1:5000)")
    s.add_argument("--root", help="storage directory")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--htpasswd", help="htpasswd file (bcrypt or {SHA} entries)")
    s.add_argument("--realm", help="basic auth realm")
    s.add_argument("--token-key-file", help="HMAC key: enables the bearer token flow")
    s.add_argument("--read-only", action="store_true", default=None,
                   help="refuse every write with 405 UNSUPPORTED")
    s.add_argument("--log-level", default="info")
    g = sub.add_parser("gc", help="delete blobs no manifest references (server stopped)")
    g.add_argument("--root", required=True)
    g.add_argument("--dry-run", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    fields = load_config(args.config) if args.config else {}
    for key in ("addr", "root", "tls_cert", "tls_key", "htpasswd", "realm", "read_only"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = value
    if args.token_key_file:
        token = fields.get("token") or TokenSettings(key_file=args.token_key_file)
        fields["token"] = dataclasses.replace(token, key_file=args.token_key_file)
    if not fields.get("root"):
        raise SystemExit("registry: --root (or \"root\" in --config) is required")
    return Config(**fields)


def run_gc(root: str, dry_run: bool, out=sys.stdout) -> int:
    report = gcmod.collect(FilesystemDriver(root), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for digest, size in report.removed:
        print(f"{verb} {digest} ({size} bytes)", file=out)
    for name, digest in report.unreadable:
        print(f"warning: manifest {digest} of {name} cannot be read", file=out)
    print(f"{len(report.marked)} blobs referenced, {len(report.removed)} {verb} "
          f"({report.bytes_removed} bytes)", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "gc":
        return run_gc(args.root, args.dry_run)
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

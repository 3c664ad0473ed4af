"""`dockyard diff` and `dockyard export`: a container's filesystem seen from
outside (docker/cli cli/command/container/diff.go, export.go)."""

from __future__ import annotations

import sys

from dockyard.cli.command import PROG, Cli, StatusError, stream_is_terminal
from dockyard.cli.pflag import FlagSet

KINDS = {0: "C", 1: "A", 2: "D"}


def diff(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER",
                 "Inspect changes to files or directories on a container's filesystem",
                 aliases=f"{PROG} container diff, {PROG} diff", args=(1, 1))
    o = fs.parse(argv)
    from dockyard.cli.containers import _trim_id
    changes = cli.client.get(f"/containers/{_trim_id(o.args[0])}/changes") or []
    cli.out.write("".join(f"{KINDS.get(c.get('Kind'), '?')} {c.get('Path', '')}\n"
                          for c in changes))
    return 0


def export(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive",
                 aliases=f"{PROG} container export, {PROG} export", args=(1, 1))
    fs.string("output", "o", help="Write to a file, instead of STDOUT")
    o = fs.parse(argv)
    if not o.output and stream_is_terminal(cli.out):
        raise StatusError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    from dockyard.cli.containers import _trim_id
    container = _trim_id(o.args[0])
    if o.output:
        from dockyard.cli.images import check_destination, write_atomically
        check_destination(o.output, "failed to export container")
        write_atomically(o.output, lambda: cli.client.request(
            "GET", f"/containers/{container}/export"), "failed to export container")
        return 0
    response = cli.client.request("GET", f"/containers/{container}/export")
    cli.out.flush()
    out = getattr(cli.out, "buffer", None) or sys.stdout.buffer
    try:
        while chunk := response.read1(1 << 20):
            out.write(chunk)
        out.flush()
    finally:
        response.close()
    return 0

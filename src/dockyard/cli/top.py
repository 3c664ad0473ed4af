"""`top` (`container top`): a container's processes, as the host's `ps` shows
them (docker/cli cli/command/container/top.go).

    dockyard top CONTAINER [ps OPTIONS]

Everything after the container goes to `ps` on the daemon's host, joined by
spaces (flags stop at the container: `top c -o pid,comm` is ps's -o). The
answer is printed through the tabwriter with minwidth 20, as docker does.
"""

from __future__ import annotations

from dockyard.cli.command import PROG, Cli
from dockyard.cli.pflag import FlagSet


def top(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
                 aliases=f"{PROG} container top, {PROG} top", args=(1, None),
                 interspersed=False)
    o = fs.parse(argv)
    name, ps_args = o.args[0], o.args[1:]
    query = {"ps_args": " ".join(ps_args)} if ps_args else None
    result = cli.client.get(f"/containers/{name}/top", query=query) or {}
    from dockyard.cli.tabwriter import tabwrite
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(process) for process in result.get("Processes") or []]
    cli.out.write(tabwrite("".join(line + "\n" for line in lines), minwidth=20))
    return 0

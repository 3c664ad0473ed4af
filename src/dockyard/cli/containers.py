"""Container commands other than create/run/start (cli/run.py) and ps (cli/ps.py):
stop, kill, restart, rm, pause, unpause, wait, rename, logs, container prune,
container inspect — docker's flags, output and exit codes
(docker/cli cli/command/container/*.go).

The commands that take several containers act on all of them (in parallel,
as docker does), print each name that worked in the order given, and then
every error, one per line, with status 1.
"""

from __future__ import annotations

from dockyard.cli import formatting
from dockyard.cli.command import INSPECT_FORMAT_HELP, PROG, Cli, StatusError
from dockyard.cli.pflag import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


def _error_text(e: Exception) -> str:
    from dockyard.client.api import APIError
    if isinstance(e, APIError):
        return f"Error response from daemon: {e.message}"
    return str(e)


def _trim_id(name: str) -> str:
    """The engine client's trimID: an empty name is refused before any request."""
    name = name.strip()
    if not name:
        raise ValueError("invalid container name or ID: value is empty")
    return name


def parallel(names: list[str], op: Callable[[str], None]) -> list[Exception | None]:
    """parallelOperation: run `op` for every name (at most 50 at a time);
    the outcomes in the order of `names`."""
    def one(name: str) -> Exception | None:
        try:
            op(name)
        except Exception as e:  # noqa: BLE001 - reported per container
            return e
        return None

    if len(names) <= 1:
        return [one(n) for n in names]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(50, len(names))) as pool:
        return list(pool.map(one, names))


def _report(cli: Cli, names: list[str], outcomes: list[Exception | None]) -> int:
    errors = []
    for name, error in zip(names, outcomes):
        if error is None:
            cli.out.write(name + "\n")
        else:
            errors.append(_error_text(error))
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def _post(cli: Cli, path: str, query: dict | None = None) -> None:
    cli.client.request("POST", path, query=query).read()


# --- stop, restart, kill ------------------------------------------------------------------


def _stop_flags(path: str, short: str, aliases: str) -> FlagSet:
    from dockyard.cli.optvalues import int64
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]", short, aliases=aliases,
                 args=(1, None))
    fs.string("signal", "s", help="Signal to send to the container")
    fs.add("timeout", "t", metavar="int", default=0, convert=int64,
           help="Seconds to wait before killing the container")
    fs.add("time", metavar="int", default=0, convert=int64, dest="timeout",
           help="Seconds to wait before killing the container (deprecated: use --timeout)",
           deprecated="use --timeout instead")
    return fs


def _stop_query(fs: FlagSet, argv: list[str]):
    o = fs.parse(argv)
    if "time" in o.changed and "timeout" in o.changed:
        raise StatusError("conflicting options: cannot specify both --timeout and --time")
    query = {}
    if o.signal:
        query["signal"] = o.signal
    if "time" in o.changed or "timeout" in o.changed:
        query["t"] = str(o.timeout)
    return o, query or None


def stop(cli: Cli, argv: list[str], path: str) -> int:
    fs = _stop_flags(path, "Stop one or more running containers",
                     f"{PROG} container stop, {PROG} stop")
    o, query = _stop_query(fs, argv)
    outcomes = parallel(o.args, lambda n: _post(cli, f"/containers/{_trim_id(n)}/stop", query))
    return _report(cli, o.args, outcomes)


def restart(cli: Cli, argv: list[str], path: str) -> int:
    fs = _stop_flags(path, "Restart one or more containers",
                     f"{PROG} container restart, {PROG} restart")
    o, query = _stop_query(fs, argv)
    # one after the other, as docker restarts them
    outcomes = [parallel([name], lambda n: _post(cli, f"/containers/{_trim_id(n)}/restart",
                                                 query))[0] for name in o.args]
    return _report(cli, o.args, outcomes)


def kill(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
                 aliases=f"{PROG} container kill, {PROG} kill", args=(1, None))
    fs.string("signal", "s", help="Signal to send to the container")
    o = fs.parse(argv)
    query = {"signal": o.signal} if o.signal else None
    outcomes = parallel(o.args, lambda n: _post(cli, f"/containers/{_trim_id(n)}/kill", query))
    return _report(cli, o.args, outcomes)


# --- pause, unpause --------------------------------------------------------------------------


def pause(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER [CONTAINER...]",
                 "Pause all processes within one or more containers",
                 aliases=f"{PROG} container pause, {PROG} pause", args=(1, None))
    o = fs.parse(argv)
    outcomes = parallel(o.args, lambda n: _post(cli, f"/containers/{_trim_id(n)}/pause"))
    return _report(cli, o.args, outcomes)


def unpause(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER [CONTAINER...]",
                 "Unpause all processes within one or more containers",
                 aliases=f"{PROG} container unpause, {PROG} unpause", args=(1, None))
    o = fs.parse(argv)
    outcomes = parallel(o.args, lambda n: _post(cli, f"/containers/{_trim_id(n)}/unpause"))
    return _report(cli, o.args, outcomes)


# --- rm --------------------------------------------------------------------------------------


def remove(cli: Cli, argv: list[str], path: str) -> int:
    if path != f"{PROG} rm":   # cobra names the command, not the alias it was called by
        path = f"{PROG} container rm"
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
                 aliases=f"{PROG} container rm, {PROG} container remove, {PROG} rm",
                 args=(1, None))
    fs.bool("volumes", "v", help="Remove anonymous volumes associated with the container")
    fs.bool("link", "l", help="Remove the specified link")
    fs.bool("force", "f", help="Force the removal of a running container (uses SIGKILL)")
    o = fs.parse(argv)
    query = {}
    if o.volumes:
        query["v"] = "1"
    if o.link:
        query["link"] = "1"
    if o.force:
        query["force"] = "1"

    def rm(name: str) -> None:
        name = name.strip("/")
        if not name:
            raise ValueError("container name cannot be empty")
        cli.client.request("DELETE", f"/containers/{_trim_id(name)}",
                           query=query or None).read()

    from dockyard.client.api import APIError
    errors = []
    for name, error in zip(o.args, parallel(o.args, rm)):
        if error is None:
            cli.out.write(name + "\n")
        elif o.force and isinstance(error, APIError) and error.status == 404:
            cli.err.write(_error_text(error) + "\n")
        else:
            errors.append(_error_text(error))
    if errors:
        raise StatusError("\n".join(errors))
    return 0


# --- wait, rename ------------------------------------------------------------------------------


def wait(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER [CONTAINER...]",
                 "Block until one or more containers stop, then print their exit codes",
                 aliases=f"{PROG} container wait, {PROG} wait", args=(1, None))
    o = fs.parse(argv)
    from dockyard.client.api import APIError
    errors = []
    for name in o.args:
        try:
            result = cli.client.post(f"/containers/{_trim_id(name)}/wait") or {}
        except (APIError, ValueError) as e:
            errors.append(_error_text(e))
            continue
        cli.out.write(f"{result.get('StatusCode', 0)}\n")
        cli.out.flush()
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def rename(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "CONTAINER NEW_NAME", "Rename a container",
                 aliases=f"{PROG} container rename, {PROG} rename", args=(2, 2))
    o = fs.parse(argv)
    old, new = o.args[0].strip(), o.args[1].strip()
    if not old or not new:
        raise StatusError("Error: Neither old nor new names may be empty")
    from dockyard.client.api import APIError
    try:
        _post(cli, f"/containers/{old}/rename", {"name": new})
    except APIError as e:
        cli.err.write(_error_text(e) + "\n")
        raise StatusError(f"Error: failed to rename container named {old}") from None
    return 0


# --- logs ----------------------------------------------------------------------------------------


def logs(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER", "Fetch the logs of a container",
                 aliases=f"{PROG} container logs, {PROG} logs", args=(1, 1))
    fs.bool("follow", "f", help="Follow log output")
    fs.string("since", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or '
              'relative (e.g. "42m" for 42 minutes)')
    fs.string("until", help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or '
              'relative (e.g. "42m" for 42 minutes)')
    fs.bool("timestamps", "t", help="Show timestamps")
    fs.bool("details", help="Show extra details provided to logs")
    fs.string("tail", "n", default="all",
              help="Number of lines to show from the end of the logs")
    o = fs.parse(argv)
    c = cli.client.get(f"/containers/{o.args[0]}/json")
    from dockyard.cli import govalues
    query = {"stdout": "1", "stderr": "1"}
    for name in ("since", "until"):
        value = getattr(o, name)
        if value:
            try:
                query[name] = govalues.get_timestamp(value)
            except ValueError as e:
                raise StatusError(f'invalid value for "{name}": {e}') from None
    if o.timestamps:
        query["timestamps"] = "1"
    if o.details:
        query["details"] = "1"
    if o.follow:
        query["follow"] = "1"
    query["tail"] = o.tail
    response = cli.client.request("GET", f"/containers/{c['Id']}/logs",
                                  query=sorted(query.items()))
    from dockyard.cli.attach import binary
    from dockyard.client import hijack
    out = binary(cli.out)
    try:
        if (c.get("Config") or {}).get("Tty"):
            hijack.copy_raw(response.read1, out)
        else:
            hijack.demultiplex(response.read1, out, binary(cli.err))
    except hijack.StreamError as e:
        raise StatusError(str(e)) from None
    finally:
        response.close()
    return 0


# --- container prune, container inspect ------------------------------------------------------------

PRUNE_WARNING = ("WARNING! This will remove all stopped containers.\n"
                 "Are you sure you want to continue?")


def prune_containers(cli: Cli, filters: str | None) -> tuple[int, str]:
    """runPrune's work after the question: (space reclaimed, the list of what went)."""
    report = cli.client.post("/containers/prune",
                             query={"filters": filters} if filters else None) or {}
    return formatting.prune_report(report, "ContainersDeleted", "Deleted Containers:")


def prune(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS]", "Remove all stopped containers", args=(0, 0))
    fs.bool("force", "f", help="Do not prompt for confirmation")
    from dockyard.cli.ps import add_filter_flag, filters_json
    add_filter_flag(fs, short="", help='Provide filter values (e.g. "until=<timestamp>")')
    o = fs.parse(argv)
    if not o.force:
        from dockyard.cli.images import confirm
        if not confirm(cli, PRUNE_WARNING):
            return 0
    reclaimed, output = prune_containers(cli, filters_json(o.filter or []))
    if output:
        cli.out.write(output + "\n")
    cli.out.write(f"Total reclaimed space: {formatting.human_size(reclaimed)}\n")
    return 0


def inspect(cli: Cli, argv: list[str], path: str) -> int:
    fs = FlagSet(path, "[OPTIONS] CONTAINER [CONTAINER...]",
                 "Display detailed information on one or more containers", args=(1, None))
    fs.string("format", "f", help=INSPECT_FORMAT_HELP)
    fs.bool("size", "s", help="Display total file sizes")
    o = fs.parse(argv)
    from dockyard.cli import inspect as inspector
    return inspector.run_inspect(cli, o.args, o.format, [inspector.TYPES["container"]],
                                 size=o.size)

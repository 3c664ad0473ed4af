"""`dockyard`: global flags, then one command, imported only when it runs.

    dockyard [OPTIONS] COMMAND [ARG...]

The global flags come before the command, as with docker. The command table
below names each command's module and function, so `dockyard --help` and
`dockyard images` import nothing they do not use (no aiohttp, no daemon code;
`python -X importtime` shows what a command costs).

Exit codes are docker's: 0; 1 for an error (the daemon's "Error response from
daemon: ..." or our own message); 125 for a bad flag; 64 for a template that
does not parse where docker says so; 130 after Ctrl-C.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import (
    PROG,
    Cli,
    HelpShown,
    StatusError,
    flag_usages,
    go_path_error,
    group_help,
)

Entry = tuple[str, str, str]  # module (under dockyard.cli), function, short description

COMMANDS: dict[str, Entry] = {
    "attach": ("attach", "attach",
               "Attach local standard input, output, and error streams to a running container"),
    "build": ("build", "build", "Build an image from a Dockerfile"),
    "commit": ("commit", "commit", "Create a new image from a container's changes"),
    "cp": ("cp", "cp", "Copy files/folders between a container and the local filesystem"),
    "create": ("run", "create", "Create a new container"),
    "diff": ("containerfs", "diff",
             "Inspect changes to files or directories on a container's filesystem"),
    "events": ("events", "events", "Get real time events from the server"),
    "export": ("containerfs", "export", "Export a container's filesystem as a tar archive"),
    "exec": ("exec", "exec_", "Execute a command in a running container"),
    "kill": ("containers", "kill", "Kill one or more running containers"),
    "logs": ("containers", "logs", "Fetch the logs of a container"),
    "pause": ("containers", "pause", "Pause all processes within one or more containers"),
    "port": ("port", "port", "List port mappings or a specific mapping for the container"),
    "ps": ("ps", "ps", "List containers"),
    "rename": ("containers", "rename", "Rename a container"),
    "restart": ("containers", "restart", "Restart one or more containers"),
    "rm": ("containers", "remove", "Remove one or more containers"),
    "run": ("run", "run", "Create and run a new container from an image"),
    "start": ("run", "start", "Start one or more stopped containers"),
    "stats": ("stats", "stats",
              "Display a live stream of container(s) resource usage statistics"),
    "stop": ("containers", "stop", "Stop one or more running containers"),
    "top": ("top", "top", "Display the running processes of a container"),
    "unpause": ("containers", "unpause", "Unpause all processes within one or more containers"),
    "update": ("update", "update", "Update configuration of one or more containers"),
    "wait": ("containers", "wait",
             "Block until one or more containers stop, then print their exit codes"),
    "history": ("images", "history", "Show the history of an image"),
    "images": ("images", "list_images", "List images"),
    "import": ("images", "import_image",
               "Import the contents from a tarball to create a filesystem image"),
    "info": ("system", "info", "Display system-wide information"),
    "inspect": ("inspect", "inspect", "Return low-level information on Docker objects"),
    "load": ("images", "load", "Load an image from a tar archive or STDIN"),
    "login": ("distribution", "login", "Authenticate to a registry"),
    "logout": ("distribution", "logout", "Log out from a registry"),
    "pull": ("distribution", "pull", "Download an image from a registry"),
    "push": ("distribution", "push", "Upload an image to a registry"),
    "rmi": ("images", "remove", "Remove one or more images"),
    "save": ("images", "save",
             "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "tag": ("images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "version": ("system", "version", "Show the Docker version information"),
}

# Management commands: description, subcommands, aliases of subcommands.
GROUPS: dict[str, tuple[str, dict[str, Entry], dict[str, str]]] = {
    "container": ("Manage containers", {
        "attach": COMMANDS["attach"],
        "commit": COMMANDS["commit"],
        "cp": COMMANDS["cp"],
        "create": COMMANDS["create"],
        "diff": COMMANDS["diff"],
        "export": COMMANDS["export"],
        "exec": COMMANDS["exec"],
        "inspect": ("containers", "inspect",
                    "Display detailed information on one or more containers"),
        "kill": COMMANDS["kill"],
        "logs": COMMANDS["logs"],
        "ls": ("ps", "ps", "List containers"),
        "pause": COMMANDS["pause"],
        "port": COMMANDS["port"],
        "prune": ("containers", "prune", "Remove all stopped containers"),
        "rename": COMMANDS["rename"],
        "restart": COMMANDS["restart"],
        "rm": ("containers", "remove", "Remove one or more containers"),
        "run": ("run", "run", "Create and run a new container from an image"),
        "start": COMMANDS["start"],
        "stats": COMMANDS["stats"],
        "stop": COMMANDS["stop"],
        "top": COMMANDS["top"],
        "unpause": COMMANDS["unpause"],
        "update": COMMANDS["update"],
        "wait": COMMANDS["wait"],
    }, {"list": "ls", "ps": "ls", "remove": "rm"}),
    "builder": ("Manage builds", {
        "build": COMMANDS["build"],
        "prune": ("build", "prune", "Remove build cache"),
    }, {}),
    "image": ("Manage images", {
        "build": COMMANDS["build"],
        "history": COMMANDS["history"],
        "import": COMMANDS["import"],
        "inspect": ("images", "inspect_images",
                    "Display detailed information on one or more images"),
        "load": COMMANDS["load"],
        "ls": ("images", "list_images", "List images"),
        "prune": ("images", "prune", "Remove unused images"),
        "pull": COMMANDS["pull"],
        "push": COMMANDS["push"],
        "rm": ("images", "remove", "Remove one or more images"),
        "save": COMMANDS["save"],
        "tag": COMMANDS["tag"],
    }, {"list": "ls", "remove": "rm", "rmi": "rm"}),
    "network": ("Manage networks", {
        "connect": ("network", "connect", "Connect a container to a network"),
        "create": ("network", "create", "Create a network"),
        "disconnect": ("network", "disconnect", "Disconnect a container from a network"),
        "inspect": ("network", "inspect", "Display detailed information on one or more networks"),
        "ls": ("network", "list_networks", "List networks"),
        "prune": ("network", "prune", "Remove all unused networks"),
        "rm": ("network", "remove", "Remove one or more networks"),
    }, {"list": "ls", "remove": "rm"}),
    "volume": ("Manage volumes", {
        "create": ("volume", "create", "Create a volume"),
        "inspect": ("volume", "inspect", "Display detailed information on one or more volumes"),
        "ls": ("volume", "list_volumes", "List volumes"),
        "prune": ("volume", "prune", "Remove unused local volumes"),
        "rm": ("volume", "remove", "Remove one or more volumes"),
        "update": ("volume", "update", "Update a volume (cluster volumes only)"),
    }, {"list": "ls", "remove": "rm"}),
    "registry": ("Run an OCI registry", {
        "gc": ("registry", "gc", "Remove the blobs no manifest references (registry stopped)"),
        "serve": ("registry", "serve", "Serve the OCI distribution API"),
    }, {}),
    "system": ("Manage Docker", {
        "df": ("usage", "df", "Show docker disk usage"),
        "events": ("events", "events", "Get real time events from the server"),
        "info": COMMANDS["info"],
        "prune": ("usage", "prune", "Remove unused data"),
    }, {}),
}

# Groups whose cobra Use line is "NAME COMMAND", which their unknown-command error shows.
USE_COMMAND = {"volume"}

COMMON = ("run", "exec", "ps", "build", "pull", "push", "images", "login", "logout",
          "version", "info")

GLOBAL_FLAGS = [
    ("-D", "--debug", "", "Enable debug mode"),
    ("-H", "--host", "list", "Daemon socket to connect to"),
    ("-l", "--log-level", "string",
     'Set the logging level ("debug", "info", "warn", "error", "fatal") (default "info")'),
    ("-v", "--version", "", "Print version information and quit"),
]


class GlobalOptions:
    def __init__(self) -> None:
        self.host: str | None = None
        self.debug = False
        self.log_level = "info"
        self.version = False
        self.help = False


_LOG_LEVELS = {"panic", "fatal", "error", "warn", "warning", "info", "debug", "trace"}
_VALUE_FLAGS = {"-H": "host", "--host": "host", "-l": "log_level", "--log-level": "log_level",
                "--config": "config", "-c": "context", "--context": "context"}
_BOOL_FLAGS = {"-D": "debug", "--debug": "debug", "-v": "version", "--version": "version",
               "-h": "help", "--help": "help"}


def _global_usage_error(message: str) -> StatusError:
    return StatusError(f"{message}\n\nUsage:  {PROG} [OPTIONS] COMMAND [ARG...]\n\n"
                       f"Run '{PROG} --help' for more information", 125)


def parse_globals(argv: list[str]) -> tuple[GlobalOptions, list[str]]:
    """The flags before the command, pflag style; returns them and the rest."""
    from dockyard.cli.command import parse_go_bool
    opts = GlobalOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if not arg.startswith("--") and len(arg) > 2 and not eq:
            name, value, eq = arg[:2], arg[2:], "="   # -Hunix:///x
        if name in _VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    shown = name if name.startswith("--") else f"'{name[1]}' in {name}"
                    raise _global_usage_error(f"flag needs an argument: {shown}")
                value = argv[i]
            setattr(opts, _VALUE_FLAGS[name], value)
        elif name in _BOOL_FLAGS:
            on = True
            if eq:
                try:
                    on = parse_go_bool(value)
                except ValueError as e:
                    raise _global_usage_error(
                        f'invalid argument "{value}" for "{name}" flag: {e}') from None
            setattr(opts, _BOOL_FLAGS[name], on)
        elif arg.startswith("--"):
            raise _global_usage_error(f"unknown flag: {name}")
        else:
            raise _global_usage_error(f"unknown shorthand flag: '{arg[1]}' in {arg}")
        i += 1
    return opts, argv[i:]


def top_help() -> str:
    def rows(names):
        return "\n".join(f"  {n.ljust(10)}  {COMMANDS[n][2] if n in COMMANDS else GROUPS[n][0]}"
                         for n in names)
    others = [n for n in sorted(COMMANDS) if n not in COMMON]
    return (f"Usage:  {PROG} [OPTIONS] COMMAND\n\n"
            "A Docker-compatible container engine\n\n"
            f"Common Commands:\n{rows(COMMON)}\n\n"
            f"Management Commands:\n{rows(sorted(GROUPS))}\n\n"
            f"Commands:\n{rows(others)}\n\n"
            f"Global Options:\n{flag_usages(GLOBAL_FLAGS)}\n\n"
            f"Run '{PROG} COMMAND --help' for more information on a command.\n")


def resolve(args: list[str]) -> tuple[Entry, str, list[str]]:
    """The command to run, the path it was called as, and its arguments."""
    name, rest = args[0], args[1:]
    if name in COMMANDS:
        return COMMANDS[name], f"{PROG} {name}", rest
    if name in GROUPS:
        short, subcommands, aliases = GROUPS[name]
        path = f"{PROG} {name}"
        listing = [(n, e[2]) for n, e in sorted(subcommands.items())]
        if not rest:  # docker shows the group's help on stderr, and succeeds
            raise StatusError(group_help(path, short, listing), 0)
        if rest[0] in ("-h", "--help"):
            raise HelpShown(group_help(path, short, listing))
        sub = aliases.get(rest[0], rest[0])
        if sub not in subcommands:
            if rest[0].startswith("-"):
                raise StatusError(f"unknown flag: {rest[0]}\n\nUsage:  {path} COMMAND\n\n"
                                  f"Run '{path} --help' for more information", 125)
            use = f"{path} COMMAND" if name in USE_COMMAND else path
            raise StatusError(f"{PROG}: unknown command: {path} {rest[0]}\n\n"
                              f"Usage:  {use}\n\nRun '{path} --help' for more information")
        return subcommands[sub], f"{path} {rest[0]}", rest[1:]
    raise StatusError(f"{PROG}: unknown command: {PROG} {name}\n\n"
                      f"Run '{PROG} --help' for more information")


def run(argv: list[str], cli: Cli | None = None) -> int:
    """Run one command line; return the exit status. Errors are printed here."""
    err = cli.err if cli else sys.stderr
    try:
        opts, args = parse_globals(argv)
        if opts.version:
            from dockyard import __version__
            (cli.out if cli else sys.stdout).write(f"Dockyard version {__version__}\n")
            return 0
        if opts.help or not args:
            (cli.out if cli else sys.stdout).write(top_help())
            return 0
        if opts.log_level not in _LOG_LEVELS:
            raise StatusError(f"Unable to parse logging level: {opts.log_level}")
        if cli is None:
            cli = Cli(host=opts.host, debug=opts.debug)
        else:
            cli.host, cli.debug = opts.host or cli.host, opts.debug
        (module, function, _), path, rest = resolve(args)
        import importlib
        command = getattr(importlib.import_module(f"dockyard.cli.{module}"), function)
        return command(cli, rest, path) or 0
    except HelpShown as e:
        (cli.out if cli else sys.stdout).write(str(e))
        return 0
    except StatusError as e:
        if e.message:
            err.write(e.message.rstrip("\n") + "\n")
        return e.status
    except Exception as e:  # noqa: BLE001 - every error ends as a message and a status
        return _report(e, err, cli)
    except KeyboardInterrupt:
        return 130


def _report(e: Exception, err, cli: Cli | None) -> int:
    from dockyard.client.api import APIError
    if isinstance(e, APIError):
        err.write(f"Error response from daemon: {e.message}\n")
    elif isinstance(e, BrokenPipeError):
        pass
    elif isinstance(e, ConnectionError):
        err.write(f"{e}\n")
    elif isinstance(e, PermissionError) and e.filename is None and cli is not None:
        host = cli.host_url
        err.write(f"permission denied while trying to connect to the Docker daemon socket at "
                  f"{host}: dial unix {host.removeprefix('unix://')}: connect: permission denied\n")
    elif isinstance(e, OSError) and e.filename is not None:
        err.write(f"{go_path_error(e)}\n")
    else:
        if (cli is not None and cli.debug) or os.environ.get("DOCKYARD_TRACEBACK"):
            import traceback
            traceback.print_exception(e, file=err)
        err.write(f"{e}\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    status = run(sys.argv[1:] if argv is None else argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Output went to a closed pipe (`dockyard images | head -1`): say nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


if __name__ == "__main__":
    sys.exit(main())

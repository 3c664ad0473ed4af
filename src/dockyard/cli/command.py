"""What every command needs: the CLI context, errors with exit codes, and a
command-line parser with docker's (pflag's and cobra's) conventions.

argparse does the parsing; this module bends it to pflag where users can tell
the difference:

- boolean flags take an optional value only with "=" (`--no-trunc=false`,
  `-H=false`), never from the next word;
- flags and arguments mix in any order (`rmi a -f b`);
- errors say what docker says and exit 125 for a bad flag ("unknown flag:
  --x", "flag needs an argument: --format") and 1 for a wrong number of
  arguments ("'dockyard tag' requires 2 arguments");
- `--help` prints docker's help layout.
"""

from __future__ import annotations

import argparse
import os
import sys
from dockyard.strconv import parse_bool as parse_go_bool

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import IO, Any, NoReturn

PROG = "dockyard"

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about "
    "formatting output with templates"
)
INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about "
    "formatting output with templates"
)


class StatusError(Exception):
    """End the command: print `message` (if any) to stderr and exit with `status`."""

    def __init__(self, message: str = "", status: int = 1):
        super().__init__(message)
        self.message = message
        self.status = status


class UsageError(StatusError):
    """A bad flag: docker exits 125 and shows the usage line."""

    def __init__(self, message: str):
        super().__init__(message, 125)


class HelpShown(Exception):
    """--help was given; the help text has been printed."""


class Cli:
    """The context a command runs in: where the daemon is and where output goes."""

    def __init__(self, host: str | None = None, debug: bool = False,
                 out: IO[str] | None = None, err: IO[str] | None = None,
                 stdin: IO[str] | None = None):
        self.host = host
        self.debug = debug
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.stdin = stdin or sys.stdin
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from dockyard.client.api import Client
            self._client = Client(self.host)
        return self._client

    @property
    def host_url(self) -> str:
        return self.client.host


def write_listing(cli: Cli, fmt: str, rows: list, header: dict[str, str]) -> None:
    """formatting.render's listing to stdout; a bad --format is the command's error."""
    from dockyard.cli import formatting
    try:
        cli.out.write(formatting.render(fmt, rows, header))
    except formatting.FormatError as e:
        raise StatusError(str(e)) from None


# --- pflag's booleans --------------------------------------------------------

_FALSE_SUFFIX = "\x00false"


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


class _Formatter(argparse.HelpFormatter):
    """argparse asks a formatter to check every flag it adds; the default one
    measures the terminal first, importing shutil (and bz2, lzma) to do it.
    Our help is made by format_help below, so any width will do."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=80)


class Parser(argparse.ArgumentParser):
    """One command's flags and arguments.

    `path` is the command as typed ("dockyard image ls"), `use` the rest of
    cobra's Use line ("[OPTIONS] [REPOSITORY[:TAG]]").
    """

    def __init__(self, path: str, use: str, short: str, aliases: str = "",
                 args: tuple[int, int | None] = (0, None), interspersed: bool = True):
        super().__init__(prog=path, add_help=False, allow_abbrev=False,
                         formatter_class=_Formatter)
        self.path = path
        self.use_line = f"{path} {use}".rstrip()
        self.short = short
        self.aliases = aliases
        self.nargs = args
        self.interspersed = interspersed
        self._bools: dict[str, str] = {}     # option string -> canonical long option
        self._flag_docs: list[tuple[str, str, str, str]] = []  # short, long, varname, help
        self._argv: list[str] = []
        self.add_argument("-h", "--help", action="store_true", dest="_help")
        self.add_argument("args", nargs="*")

    # -- declaring flags --

    def flag(self, *names: str, help: str = "", default: bool = False,
             dest: str | None = None, hidden: bool = False) -> None:
        """A boolean flag: `--name`, `--name=true|false`, `-n`, `-n=false`."""
        long = next(n for n in names if n.startswith("--"))
        dest = dest or long[2:].replace("-", "_")
        self.add_argument(*names, action="store_true", dest=dest, default=default)
        self.add_argument(long + _FALSE_SUFFIX, action="store_false", dest=dest,
                          help=argparse.SUPPRESS)
        for n in names:
            self._bools[n] = long
        if not hidden:
            doc = help + (" (default true)" if default else "")
            self._flag_docs.append((self._short(names), long, "", doc))

    def option(self, *names: str, metavar: str = "string", help: str = "",
               default: Any = None, dest: str | None = None, action: str | None = None,
               hidden: bool = False) -> None:
        """A flag with a value; `action="append"` for repeatable ones (list, filter)."""
        long = next(n for n in names if n.startswith("--"))
        dest = dest or long[2:].replace("-", "_")
        kw: dict[str, Any] = {"dest": dest, "default": default}
        if action:
            kw["action"] = action
        self.add_argument(*names, **kw)
        if not hidden:
            self._flag_docs.append((self._short(names), long, metavar, help))

    @staticmethod
    def _short(names: tuple[str, ...]) -> str:
        return next((n for n in names if not n.startswith("--")), "")

    # -- parsing --

    def parse(self, argv: list[str]) -> argparse.Namespace:
        self._argv = list(argv)
        argv = self._rewrite_bools(argv)
        if self.interspersed:
            ns = self.parse_intermixed_args(argv)
        else:
            ns = self.parse_args(self._stop_at_first_argument(argv))
        if ns._help:
            raise HelpShown(self.format_help())
        self._check_nargs(ns.args)
        return ns

    def _stop_at_first_argument(self, argv: list[str]) -> list[str]:
        """flags.SetInterspersed(false): everything after the first argument is an argument."""
        for i, arg in enumerate(argv):
            if arg == "--":
                return argv
            if not arg.startswith("-") or arg == "-":
                return argv[:i] + ["--"] + argv[i:]
        return argv

    def _rewrite_bools(self, argv: list[str]) -> list[str]:
        out = []
        for i, arg in enumerate(argv):
            if arg == "--":
                out.extend(argv[i:])
                break
            name, eq, value = arg.partition("=")
            if eq and name in self._bools and (name.startswith("--") or len(name) == 2):
                try:
                    on = parse_go_bool(value)
                except ValueError as e:
                    shown = self._flag_display(self._bools[name])
                    raise UsageError(self._usage_message(
                        f'invalid argument "{value}" for "{shown}" flag: {e}')) from None
                out.append(name if on else self._bools[name] + _FALSE_SUFFIX)
            else:
                out.append(arg)
        return out

    def _flag_display(self, long: str) -> str:
        for short, lng, _, _ in self._flag_docs:
            if lng == long:
                return f"{short}, {long}" if short else long
        return long

    def _check_nargs(self, args: list[str]) -> None:
        lo, hi = self.nargs
        n = len(args)
        if lo <= n and (hi is None or n <= hi):
            return
        head = f"{PROG}: '{self.path}'"
        tail = f"\n\nUsage:  {self.use_line}\n\n"
        if hi == 0:
            msg = f"{head} accepts no arguments{tail}Run '{self.path} --help' for more information"
        elif lo == hi:
            msg = (f"{head} requires {lo} {_plural('argument', lo)}{tail}"
                   f"Run '{self.path} --help' for more information")
        elif hi is None:
            msg = (f"{head} requires at least {lo} {_plural('argument', lo)}{tail}"
                   f"See '{self.path} --help' for more information")
        elif lo == 0:
            msg = (f"{head} requires at most {hi} {_plural('argument', hi)}{tail}"
                   f"Run '{self.path} --help' for more information")
        else:
            msg = (f"{head} requires at least {lo} and at most {hi} {_plural('argument', hi)}"
                   f"{tail}Run '{self.path} --help' for more information")
        raise StatusError(msg, 1)

    def _usage_message(self, message: str) -> str:
        return (f"{message}\n\nUsage:  {self.use_line}\n\n"
                f"Run '{self.path} --help' for more information")

    def usage_error(self, message: str) -> UsageError:
        """A bad flag value found after parsing, reported as pflag would."""
        return UsageError(self._usage_message(message))

    def error(self, message: str) -> NoReturn:
        raise UsageError(self._usage_message(self._pflag_message(message)))

    def _pflag_message(self, message: str) -> str:
        """Translate argparse's complaint into pflag's words."""
        if message.startswith("unrecognized arguments: "):
            bad = message[len("unrecognized arguments: "):].split(" ")[0]
            if bad.startswith("--"):
                return f"unknown flag: {bad.split('=', 1)[0]}"
            if bad.startswith("-") and len(bad) > 1:
                return f"unknown shorthand flag: '{bad[1]}' in {bad}"
            return message
        if message.startswith("argument ") and message.endswith("expected one argument"):
            names = message[len("argument "):].split(":", 1)[0].split("/")
            used = next((a for a in reversed(self._argv) if a in names), names[-1])
            if used.startswith("--"):
                return f"flag needs an argument: {used}"
            return f"flag needs an argument: '{used[1:]}' in {used}"
        return message

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise StatusError(message or "", status)

    # -- help --

    def format_help(self) -> str:
        parts = [f"Usage:  {self.use_line}", "", self.short]
        if self.aliases:
            parts += ["", "Aliases:", f"  {self.aliases}"]
        if self._flag_docs:
            parts += ["", "Options:", flag_usages(self._flag_docs)]
        return "\n".join(parts) + "\n"


def flag_usages(docs: list[tuple[str, str, str, str]], width: int | None = None) -> str:
    """pflag's FlagUsagesWrapped: flags in name order, help in one column,
    wrapped to the terminal (80 columns when there is none) as docker does."""
    if width is None:
        try:
            width = os.get_terminal_size(0).columns
        except OSError:
            width = 80
    lines = []
    for short, long, varname, help in sorted(docs, key=lambda d: d[1]):
        line = f"  {short}, {long}" if short else f"      {long}"
        if varname:
            line += " " + varname
        lines.append((line, help))
    maxlen = max(len(line) for line, _ in lines) + 1
    return "\n".join(f"{line}{' ' * (maxlen - len(line) + 1)} {_wrap(maxlen + 2, width - 1, help)}"
                     for line, help in lines)


def _wrap(indent: int, width: int, s: str) -> str:
    """pflag's wrap: the first line is already indented by the caller."""
    if width == 0:
        return s.replace("\n", "\n" + " " * indent)
    room = width - indent
    out = ""
    if room < 24:
        indent = 16
        room = width - indent
        out += "\n" + " " * indent
    if room < 24:
        return s.replace("\n", out)
    slop = 5
    room -= slop
    pad = "\n" + " " * indent
    line, s = _wrap_n(room, slop, s)
    out += line.replace("\n", pad)
    while s:
        line, s = _wrap_n(room, slop, s)
        out += pad + line.replace("\n", pad)
    return out


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(c, 0, i) for c in " \t\n")
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def group_help(path: str, short: str, commands: list[tuple[str, str]]) -> str:
    """The help of a management command ("dockyard image")."""
    width = max(len(name) for name, _ in commands)
    width = max(width, 10)
    rows = "\n".join(f"  {name.ljust(width)}  {desc}" for name, desc in commands)
    return (f"Usage:  {path} COMMAND\n\n{short}\n\nCommands:\n{rows}\n\n"
            f"Run '{path} COMMAND --help' for more information on a command.\n")


def api_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def api_version(cli: Cli) -> str:
    """The API version the daemon announces on /_ping ("" if it does not say,
    which docker takes as its own, current version)."""
    response = cli.client.request("GET", "/_ping")
    version = response.getheader("Api-Version") or ""
    response.read()
    return version


def api_older_than(version: str, minimum: str) -> bool:
    return bool(version) and api_tuple(version) < api_tuple(minimum)


def require_api(cli: Cli, flag: str | list[str], minimum: str) -> None:
    """Flags the daemon's API version must know, checked as docker checks them
    (areFlagsSupported): one line for each flag that was given; none, no ping."""
    flags = [flag] if isinstance(flag, str) else flag
    if not flags:
        return
    version = api_version(cli)
    if api_older_than(version, minimum):
        raise StatusError("\n".join(f'"{f}" requires API version {minimum}, '
                                    f"but the Docker daemon API version is {version}"
                                    for f in flags))


def require_command_api(cli: Cli, path: str, minimum: str) -> None:
    """A command the daemon's API version must know (areSubcommandsSupported)."""
    version = api_version(cli)
    if api_older_than(version, minimum):
        raise StatusError(f"{path} requires API version {minimum}, "
                          f"but the Docker daemon API version is {version}")


def go_path_error(e: OSError, op: str = "open") -> str:
    """Go's *PathError text: "open x.tar: no such file or directory"."""
    reason = os.strerror(e.errno).lower() if e.errno else str(e)
    return f"{op} {e.filename}: {reason}"


def stream_is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def binary_stdin(cli: Cli):
    """The CLI's stdin as bytes (a test's stream may already be binary)."""
    return getattr(cli.stdin, "buffer", cli.stdin)

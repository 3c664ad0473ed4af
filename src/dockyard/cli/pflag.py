"""A command-line parser that reads flags exactly as spf13/pflag does.

command.Parser bends argparse towards pflag, which is enough for commands
with a few flags. `run` and `create` need pflag itself: about a hundred
flags, each a Go value type that validates as it is set (so a bad `-m 64x`
fails with go-units' message, in command-line order), `-h` meaning
--hostname rather than help, flags that stop at the first argument (the
image) so that the container's own `-c` is left alone, and "Changed()" for
the flags whose mere presence matters (`--entrypoint=`, `--stop-timeout`,
`--init`). FlagSet does that, and keeps command.Parser's help layout and
error texts, so the commands read alike.

pflag's rules, as implemented here:

- `--name value`, `--name=value`; `-n value`, `-nvalue`, `-n=value`;
  the next word is taken as the value even when it starts with "-";
- boolean flags take a value only with "=" and can be grouped: `-it`;
- "--" ends the flags; with interspersed=False so does the first argument;
- errors: "unknown flag: --x", "unknown shorthand flag: 'x' in -x",
  "flag needs an argument: --x" / "'x' in -x", and
  `invalid argument "v" for "-x, --xx" flag: <the value type's error>`,
  each followed by the usage line, with status 125.
"""

from __future__ import annotations

from dockyard.cli.command import HelpShown, Parser, UsageError, parse_go_bool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


class Flag:
    """One flag: its names, the Go type name shown in help, how a value is set."""

    def __init__(self, long: str, short: str, metavar: str, help: str, default: Any,
                 convert: Callable[[str], Any] | None, append: bool, dest: str,
                 hidden: bool, deprecated: str, merge: Callable[[Any, Any], Any] | None):
        self.long = long
        self.short = short
        self.metavar = metavar
        self.help = help
        self.default = default
        self.convert = convert
        self.append = append
        self.dest = dest
        self.hidden = hidden
        self.deprecated = deprecated
        self.merge = merge

    @property
    def is_bool(self) -> bool:
        return self.metavar == ""

    @property
    def display(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


class Values:
    """The parsed flags, as attributes named after the flags (dashes as
    underscores), plus `args` and the set of flags that were given."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.changed: set[str] = set()


class FlagSet(Parser):
    """pflag's FlagSet, with command.Parser's help and usage errors."""

    def __init__(self, path: str, use: str, short: str, aliases: str = "",
                 args: tuple[int, int | None] = (0, None), interspersed: bool = True,
                 help_shorthand: bool = True):
        super().__init__(path, use, short, aliases=aliases, args=args, interspersed=interspersed)
        self.flags: dict[str, Flag] = {}
        self.shorts: dict[str, Flag] = {}
        self.help_shorthand = help_shorthand
        if not help_shorthand:   # run/create: -h is --hostname; only --help asks for help
            self._flag_docs.append(("", "--help", "", "Print usage"))

    # -- declaring flags --

    def add(self, long: str, short: str = "", metavar: str = "string", help: str = "",
            default: Any = None, convert: Callable[[str], Any] | None = None,
            append: bool = False, dest: str | None = None, hidden: bool = False,
            deprecated: str = "", merge: Callable[[Any, Any], Any] | None = None,
            show_default: str = "") -> None:
        flag = Flag(long, short, metavar, help, default, convert, append,
                    dest or long.replace("-", "_"), hidden, deprecated, merge)
        self.flags[long] = flag
        if short:
            self.shorts[short] = flag
        if not hidden and not deprecated:
            doc = help + (f" (default {show_default})" if show_default else "")
            self._flag_docs.append((f"-{short}" if short else "", f"--{long}", metavar, doc))

    def bool(self, long: str, short: str = "", help: str = "", default: bool = False,
             **kw: Any) -> None:
        self.add(long, short, "", help, default, parse_go_bool,
                 show_default="true" if default else "", **kw)

    def string(self, long: str, short: str = "", help: str = "", default: str = "",
               **kw: Any) -> None:
        show = kw.pop("show_default", f'"{default}"' if default else "")
        self.add(long, short, "string", help, default, show_default=show, **kw)

    def list(self, long: str, short: str = "", help: str = "", validate=None,
             metavar: str = "list", **kw: Any) -> None:
        self.add(long, short, metavar, help, None, validate, append=True, **kw)

    def map(self, long: str, short: str = "", help: str = "", **kw: Any) -> None:
        """opts.MapOpts: repeatable `key=value` (a bare `key` maps to ""), the
        last value of a key wins; its help shows "(default map[])"."""
        from dockyard.cli.optvalues import merge_map
        self.add(long, short, "map", help, {}, lambda v: v, merge=merge_map,
                 show_default="map[]", **kw)

    # -- parsing --

    def parse(self, argv: list[str]) -> Values:  # type: ignore[override]
        self._argv = list(argv)
        values = Values()
        for flag in self.flags.values():
            if not hasattr(values, flag.dest):
                default = flag.default
                setattr(values, flag.dest, list(default) if isinstance(default, list) else
                        dict(default) if isinstance(default, dict) else default)
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                values.args.extend(argv[i:])
                break
            if not arg.startswith("-") or arg == "-":
                values.args.append(arg)
                if not self.interspersed:
                    values.args.extend(argv[i:])
                    break
                continue
            if arg.startswith("--"):
                i = self._long(arg, argv, i, values)
            else:
                i = self._shorts(arg, argv, i, values)
        self._check_nargs(values.args)
        return values

    def _long(self, arg: str, argv: list[str], i: int, values: Values) -> int:
        name, eq, value = arg[2:].partition("=")
        if name == "help" and not eq:
            raise HelpShown(self.format_help())
        flag = self.flags.get(name)
        if flag is None or not name:
            raise self.usage_error(f"unknown flag: --{name}")
        if not eq and not flag.is_bool:
            if i >= len(argv):
                raise self.usage_error(f"flag needs an argument: {arg}")
            value, i = argv[i], i + 1
        self._set(flag, value if eq or not flag.is_bool else "true", values)
        return i

    def _shorts(self, arg: str, argv: list[str], i: int, values: Values) -> int:
        shorts = arg[1:]
        while shorts:
            c = shorts[0]
            flag = self.shorts.get(c)
            if flag is None:
                if c == "h" and self.help_shorthand:
                    raise HelpShown("Flag shorthand -h has been deprecated, use --help\n"
                                    + self.format_help())
                raise self.usage_error(f"unknown shorthand flag: '{c}' in {arg}")
            if len(shorts) > 2 and shorts[1] == "=":
                self._set(flag, shorts[2:], values)
                return i
            if flag.is_bool:
                self._set(flag, "true", values)
                shorts = shorts[1:]
                continue
            if len(shorts) > 1:
                self._set(flag, shorts[1:], values)
                return i
            if i >= len(argv):
                raise self.usage_error(f"flag needs an argument: '{c}' in -{c}")
            self._set(flag, argv[i], values)
            return i + 1
        return i

    def _set(self, flag: Flag, raw: str, values: Values) -> None:
        try:
            value = flag.convert(raw) if flag.convert else raw
        except ValueError as e:
            raise self.usage_error(
                f'invalid argument "{raw}" for "{flag.display}" flag: {e}') from None
        if flag.append:
            current = getattr(values, flag.dest) or []
            current.append(value)
            value = current
        elif flag.merge is not None:
            value = flag.merge(getattr(values, flag.dest), value)
        setattr(values, flag.dest, value)
        values.changed.add(flag.long)
        if flag.deprecated:
            import sys
            sys.stdout.write(f"Flag --{flag.long} has been deprecated, {flag.deprecated}\n")

    def usage_error(self, message: str) -> UsageError:
        return UsageError(self._usage_message(message))

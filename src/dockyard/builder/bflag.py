"""An instruction's `--flags`: which it accepts, their values, docker's errors.

The parser hands each instruction the words that began with `--`
(`["--from=build", "--link"]`). The instruction declares the flags it knows,
then reads them (buildkit's BFlags):

    flags = BFlags(node.flags)
    chown = flags.add_string("chown")
    link = flags.add_bool("link")
    flags.parse()            # errors: unknown flag, missing value, ...
    chown.value, link.is_true

A lone `--` ends the flags. An unknown flag is refused with a suggestion
when a known one is close: "unknown flag: --chwon (did you mean chown?)".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.builder.gostrings import lower, upper


class FlagError(ValueError):
    """A flag an instruction cannot take; the message is docker's."""


_BOOL, _STRING, _STRINGS = "bool", "string", "strings"


@dataclass
class Flag:
    name: str
    kind: str
    value: str = ""
    values: list[str] = field(default_factory=list)   # of a repeatable flag
    used: bool = False

    @property
    def is_true(self) -> bool:
        return self.value == "true"


class BFlags:
    def __init__(self, args: list[str]):
        self.args = list(args)
        self.flags: dict[str, Flag] = {}
        self.used: list[str] = []   # names of the flags given, in order

    def add_bool(self, name: str, default: bool = False) -> Flag:
        return self._add(Flag(name, _BOOL, "true" if default else "false"))

    def add_string(self, name: str, default: str = "") -> Flag:
        return self._add(Flag(name, _STRING, default))

    def add_strings(self, name: str) -> Flag:
        """A flag that may be given several times (`--mount`, `--exclude`)."""
        return self._add(Flag(name, _STRINGS))

    def _add(self, flag: Flag) -> Flag:
        self.flags[flag.name] = flag
        return flag

    def parse(self) -> None:
        for arg in self.args:
            if arg == "--":
                return  # the POSIX end of options: what follows is not a flag
            if not arg.startswith("--"):
                raise FlagError(f"arg should start with -- : {arg}")
            flag_name, has_value, value = arg.partition("=")
            flag = self.flags.get(flag_name[2:])
            if flag is None:
                raise FlagError(with_suggestion(f"unknown flag: {flag_name}", flag_name[2:],
                                                list(self.flags), case_sensitive=True))
            if flag.used and flag.kind != _STRINGS:
                raise FlagError(f"duplicate flag specified: {flag_name}")
            if not flag.used:
                flag.used = True
                self.used.append(flag.name)
            self._set(flag, flag_name, has_value, value)

    @staticmethod
    def _set(flag: Flag, flag_name: str, has_value: str, value: str) -> None:
        if flag.kind == _BOOL:
            # `--link` alone means true, but `--link=` is a missing value.
            if has_value and not value:
                raise FlagError(f"missing a value on flag: {flag_name}")
            if value.lower() in ("true", ""):
                flag.value = "true"
            elif value.lower() == "false":
                flag.value = "false"
            else:
                raise FlagError(f"expecting boolean value for flag {flag_name}, not: {value}")
            return
        if not has_value:
            raise FlagError(f"missing a value on flag: {flag_name}")
        if flag.kind == _STRINGS:
            flag.values.append(value)
        else:
            flag.value = value


def with_suggestion(message: str, value: str, options: list[str], case_sensitive: bool) -> str:
    """message, with " (did you mean x?)" when one of options is within two
    edits of value (buildkit's suggest.WrapError)."""
    match = _closest(value, options, case_sensitive)
    return f"{message} (did you mean {match}?)" if match else message


def _closest(value: str, options: list[str], case_sensitive: bool) -> str:
    wanted = value if case_sensitive else lower(value)
    match, best = "", 3
    for option in options:
        candidate = option if case_sensitive else lower(option)
        if candidate == wanted:
            return ""  # the value is known: the error is about something else
        distance = _levenshtein(wanted, candidate)
        if distance < best:
            match, best = candidate if case_sensitive else _match_case(candidate, value), distance
    return match


def _match_case(option: str, original: str) -> str:
    if original == lower(original):
        return lower(option)
    if original == upper(original):
        return upper(option)
    return option


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]

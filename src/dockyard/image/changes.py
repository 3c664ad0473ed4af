"""`--change` / `changes=`: Dockerfile instructions applied to an image config.

dockerd (builder/dockerfile `BuildFromConfig`) joins the changes into one
Dockerfile, parses it, refuses any instruction outside `validCommitCommands`,
and only then applies them in order. The set is dockerd 20.10's, the engine
API 1.41 describes: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
USER, VOLUME, WORKDIR. (STOPSIGNAL joined the set in moby 22.06, with API 1.42.)
The parser lowercases instruction names, so errors name them in lowercase:
`run is not a valid change command`.

As in a Dockerfile, words that start an instruction's arguments with `--` are
flags; only HEALTHCHECK has any (--interval, --timeout, --start-period,
--retries), and its durations are Go durations, kept in nanoseconds.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import Any

from dockyard import errdefs
from dockyard.timefilter import DurationError, go_quote, parse_duration

ALLOWED = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "user",
           "volume", "workdir")

MINIMUM_DURATION = 1_000_000  # container.MinimumDuration: 1ms
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _lines(changes: list[str]) -> list[str]:
    """The instructions of the Dockerfile the changes make: one per line, with
    `\\` continuations joined and comments and blank lines dropped."""
    out, pending = [], ""
    for line in "\n".join(changes).split("\n"):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        out.append(pending + line)
        pending = ""
    if pending.strip():
        out.append(pending)
    return out


def _extract_flags(line: str) -> tuple[list[str], str]:
    """The leading `--words` of an instruction's arguments (the parser's
    extractBuilderFlags), and the rest. Quotes and `\\` work inside a flag."""
    words: list[str] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if not line.startswith("--", pos):
            return words, line[pos:]
        word, quote = "", ""
        while pos < len(line):
            ch = line[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < len(line):
                    pos += 1
                    word += line[pos]
                elif ch != "\\":
                    word += ch
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote = ch
            elif ch == "\\":
                if pos + 1 < len(line):
                    pos += 1
                    word += line[pos]
            else:
                word += ch
            pos += 1
        if word == "--":
            return words, line[pos:]
        words.append(word)


def _parse_flags(flags: list[str], known: tuple[str, ...] = ()) -> dict[str, str]:
    """BFlags.Parse for string flags: `--name=value` only."""
    values: dict[str, str] = {}
    for arg in flags:
        name, sep, value = arg[2:].partition("=")
        if name not in known:
            raise errdefs.InvalidParameter(f"Unknown flag: {name}")
        if name in values:
            raise errdefs.InvalidParameter(f"Duplicate flag specified: {name}")
        if not sep:
            raise errdefs.InvalidParameter(f"Missing a value on flag: {name}")
        values[name] = value
    return values


def _json_array(args: str) -> list[str] | None:
    """The exec form: a JSON array of strings (read as Go's json.Decoder reads
    the first value, ignoring what follows); None for the shell form."""
    stripped = args.lstrip()
    if not stripped.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise errdefs.InvalidParameter(_NOT_STRINGS)
    return value


def _json_or_shell(args: str) -> list[str]:
    """Exec form (a JSON array of strings) or shell form, as a Dockerfile reads them."""
    value = _json_array(args)
    return value if value is not None else ["/bin/sh", "-c", args.strip()]


def _key_values(instruction: str, args: str) -> list[tuple[str, str]]:
    """`KEY=VALUE ...` pairs, or the legacy `KEY VALUE` form."""
    words = shlex.split(args, posix=True)
    if not words:
        raise errdefs.InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(args.strip(), maxsplit=1)
        if len(parts) < 2:
            raise errdefs.InvalidParameter(f"{instruction} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise errdefs.InvalidParameter(
                f"{instruction} names can not be blank" if sep else
                f"Syntax error - can't find = in {go_quote(word)}. "
                "Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def _set_env(env: list[str], key: str, value: str) -> list[str]:
    kept = [e for e in env if e.partition("=")[0] != key]
    return kept + [f"{key}={value}"]


def _interval(values: dict[str, str], name: str) -> int:
    text = values.get(name, "")
    if not text:
        return 0
    try:
        d = parse_duration(text)
    except DurationError as e:
        raise errdefs.InvalidParameter(str(e)) from None
    if d < MINIMUM_DURATION:
        raise errdefs.InvalidParameter(f'Interval "{name}" cannot be less than 1ms')
    return d


def healthcheck(flags: list[str], args: str) -> dict[str, Any]:
    """HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N]
    CMD command | NONE, as Config.Healthcheck (zero fields left out)."""
    parts = args.strip().split(None, 1)
    if not parts:
        raise errdefs.InvalidParameter("HEALTHCHECK requires at least one argument")
    typ, rest = parts[0].upper(), parts[1].strip() if len(parts) > 1 else ""
    if typ == "NONE":
        if rest:
            raise errdefs.InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    values = _parse_flags(flags, ("interval", "timeout", "start-period", "retries"))
    if typ != "CMD":
        raise errdefs.InvalidParameter(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    exec_form = _json_array(rest) if rest else None
    command = exec_form if exec_form is not None else ([rest] if rest else [])
    if not command:
        raise errdefs.InvalidParameter("Missing command after HEALTHCHECK CMD")
    check: dict[str, Any] = {"Test": ["CMD" if exec_form is not None else "CMD-SHELL", *command]}
    for field, name in (("Interval", "interval"), ("Timeout", "timeout"),
                        ("StartPeriod", "start-period")):
        if d := _interval(values, name):
            check[field] = d
    if values.get("retries"):
        text = values["retries"]
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise errdefs.InvalidParameter(
                f'strconv.ParseInt: parsing {go_quote(text)}: invalid syntax')
        retries = int(text)
        if not -(1 << 31) <= retries < (1 << 31):
            raise errdefs.InvalidParameter(
                f'strconv.ParseInt: parsing {go_quote(text)}: value out of range')
        if retries < 1:
            raise errdefs.InvalidParameter(f"--retries must be at least 1 (not {retries})")
        check["Retries"] = retries
    return check


def parse(changes: list[str], allowed: tuple[str, ...] = ALLOWED
          ) -> list[tuple[str, list[str], str]]:
    """(instruction, flags, arguments) per change; refuses instructions that
    are not in `allowed`, all of them before any is applied."""
    parsed = []
    for line in _lines(changes):
        parts = _WHITESPACE.split(line.strip(), maxsplit=1)
        flags, args = _extract_flags(parts[1]) if len(parts) > 1 else ([], "")
        parsed.append((parts[0].lower(), flags, args.strip()))
    for instruction, _, _ in parsed:
        if instruction not in allowed:
            raise errdefs.InvalidParameter(f"{instruction} is not a valid change command")
    return parsed


def apply(config: dict[str, Any], changes: list[str],
          allowed: tuple[str, ...] = ALLOWED) -> dict[str, Any]:
    """Return a copy of the container config with every change applied.
    `allowed` is the set of instructions taken (a builder passes its own:
    STOPSIGNAL is understood here, but not a change command of API 1.41)."""
    config = dict(config)
    for instruction, flags, args in parse(changes, allowed):
        if instruction == "healthcheck":
            config["Healthcheck"] = healthcheck(flags, args)
            continue
        _parse_flags(flags)  # no other change command takes a flag
        if instruction in ("cmd", "entrypoint"):
            config["Cmd" if instruction == "cmd" else "Entrypoint"] = _json_or_shell(args)
        elif instruction == "env":
            env = list(config.get("Env") or [])
            for key, value in _key_values("ENV", args):
                env = _set_env(env, key, value)
            config["Env"] = env
        elif instruction == "label":
            labels = dict(config.get("Labels") or {})
            labels.update(_key_values("LABEL", args))
            config["Labels"] = labels
        elif instruction == "expose":
            ports = dict(config.get("ExposedPorts") or {})
            for port in args.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instruction == "volume":
            volumes = dict(config.get("Volumes") or {})
            for path in _json_or_words(args):
                volumes[path] = {}
            config["Volumes"] = volumes
        elif instruction == "workdir":
            config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", args)
        elif instruction == "user":
            config["User"] = args
        elif instruction == "stopsignal":
            config["StopSignal"] = args
        elif instruction == "onbuild":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [args]
    return config


def _json_or_words(args: str) -> list[str]:
    value = _json_array(args)
    return value if value is not None else args.split()

"""From one instruction line to its node: the instruction word, the `--flags`,
and the arguments, split the way that instruction wants them.

Each instruction has its own way to read its arguments (buildkit's
line_parsers.go); the table at the end says which:

- whitespace-delimited words: FROM, EXPOSE;
- one string, as written: USER, WORKDIR, STOPSIGNAL, MAINTAINER;
- name/value pairs, `KEY value` or `k=v k2="v 2"`: ENV, LABEL;
- names with optional values: ARG;
- "maybe JSON": the exec form `["a", "b"]` when the text is a JSON array of
  strings, else the whole text as one argument: RUN, CMD, ENTRYPOINT, SHELL;
- "maybe JSON to list": a JSON array, else whitespace-delimited words: COPY,
  ADD, VOLUME;
- HEALTHCHECK: a type word (CMD, NONE) and then "maybe JSON";
- ONBUILD: another instruction line, parsed as a child.

Words keep their quotes and escapes here: removing them is the job of
variable substitution (shell.py), which runs when the instruction does.
Instructions docker does not know are still parsed, with no arguments; they
are refused when the tree becomes instructions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from dockyard.builder.gostrings import (
    as_go_runes, byte_view, from_byte_view, is_space, quote, trim_left_space, trim_space)
from dockyard.builder.node import Node

# Go's reWhitespace: no "\n" (lines have none) and no Unicode spaces.
WHITESPACE = re.compile(r"[\t\v\f\r ]+")

NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

_IN_SPACES, _IN_WORD, _IN_QUOTE = range(3)


class LineParseError(ValueError):
    """An instruction line whose arguments cannot be read; the message is docker's."""


Parsed = tuple[Node | None, dict[str, bool]]


def new_node_from_line(line: str, escape: str, comments: list[str] | None = None) -> Node:
    command, flags, args = split_command(line, escape)
    parse_args = _ARGUMENT_PARSERS.get(command.lower(), parse_ignore)
    next_node, attributes = parse_args(args, escape)
    return Node(value=command, original=line, flags=flags, next=next_node,
                attributes=attributes, prev_comment=list(comments or []))


def split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    """The instruction word, its leading `--flags`, and the rest of the line."""
    command_line = WHITESPACE.split(trim_space(line), maxsplit=1)
    args, flags = "", []
    if len(command_line) == 2:
        args, flags = extract_builder_flags(command_line[1], escape)
    return command_line[0], flags, trim_space(args)


def extract_builder_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """The words at the start of line that begin with `--`, and what follows.

    A word of its own `--` ends the flags. Quotes and the escape character
    work inside a flag and are removed. Docker walks this text byte by byte
    (see gostrings.byte_view), so a flag's non-ASCII characters come out as
    their UTF-8 bytes read as Latin-1; this does the same.
    """
    text = byte_view(line)
    words: list[str] = []
    buf: list[str] = []
    phase, quote_char, blank_ok = _IN_SPACES, "", False
    i = 0
    while i < len(text):
        ch = text[i]
        if phase == _IN_SPACES:
            if is_space(ch):
                i += 1
                continue
            if not text.startswith("--", i):
                return from_byte_view(text[i:]), words
            phase = _IN_WORD
        if phase == _IN_WORD:
            if is_space(ch):
                word, buf, phase = "".join(buf), [], _IN_SPACES
                if word == "--":
                    return from_byte_view(text[i:]), words
                if blank_ok or word:
                    words.append(word)
                blank_ok = False
            elif ch in ("'", '"'):
                quote_char, blank_ok, phase = ch, True, _IN_QUOTE
            elif ch == escape and i + 1 == len(text):
                pass  # an escape character at the very end is dropped
            elif ch == escape:
                i += 1
                buf.append(text[i])
            else:
                buf.append(ch)
            i += 1
            continue
        # _IN_QUOTE
        if ch == quote_char:
            phase = _IN_WORD
        elif ch == escape and i + 1 == len(text):
            phase = _IN_WORD
        elif ch == escape:
            i += 1
            buf.append(text[i])
        else:
            buf.append(ch)
        i += 1
    word = "".join(buf)
    if phase != _IN_SPACES and word != "--" and (blank_ok or word):
        words.append(word)
    return "", words


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on white space outside quotes, keeping quotes and escapes in the
    words: `a "b c" d\\ e` is `a`, `"b c"`, `d\\ e`."""
    text = as_go_runes(rest)
    words: list[str] = []
    buf: list[str] = []
    phase, quote_char, blank_ok = _IN_SPACES, "", False
    i = 0
    while i < len(text):
        ch = text[i]
        if phase == _IN_SPACES:
            if is_space(ch):
                i += 1
                continue
            phase = _IN_WORD
        if phase == _IN_WORD:
            if is_space(ch):
                if blank_ok or buf:
                    words.append("".join(buf))
                buf, phase, blank_ok = [], _IN_SPACES, False
                i += 1
                continue
            if ch in ("'", '"'):
                quote_char, blank_ok, phase = ch, True, _IN_QUOTE
            if ch == escape:
                if i + 1 == len(text):
                    i += 1  # an escape character at the very end is dropped
                    continue
                # Outside quotes an escape keeps the next character, even a quote.
                buf.append(ch)
                i += 1
                ch = text[i]
            buf.append(ch)
            i += 1
            continue
        # _IN_QUOTE
        if ch == quote_char:
            phase = _IN_WORD
        if ch == escape and quote_char != "'":  # nothing escapes inside ''
            if i + 1 == len(text):
                phase = _IN_WORD
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = text[i]
        buf.append(ch)
        i += 1
    if phase != _IN_SPACES and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _chain(values: list[str]) -> Node | None:
    """Nodes linked by `next`, one per value."""
    first: Node | None = None
    for value in reversed(values):
        first = Node(value=value, next=first)
    return first


def parse_ignore(rest: str, escape: str) -> Parsed:
    return Node(), {}


def parse_sub_command(rest: str, escape: str) -> Parsed:
    """ONBUILD's argument: an instruction of its own. ONBUILD RUN x → (onbuild (run "x"))."""
    if not rest:
        return None, {}
    return Node(children=[new_node_from_line(rest, escape)]), {}


def parse_name_val(rest: str, key: str, escape: str) -> Node | None:
    """ENV and LABEL: `KEY name value` (one pair, the value the rest of the
    line) or `KEY n1=v1 n2=v2`. The first word decides: it has `=` or not."""
    words = parse_words(rest, escape)
    if not words:
        return None
    if "=" not in words[0]:
        parts = WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise LineParseError(f"{key} must have two arguments")
        return _chain([parts[0], parts[1], ""])
    values: list[str] = []
    for word in words:
        if "=" not in word:
            raise LineParseError(
                f"Syntax error - can't find = in {quote(word)}. Must be of the form: name=value")
        name, value = word.split("=", 1)
        values += [name, value, "="]
    return _chain(values)


def parse_env(rest: str, escape: str) -> Parsed:
    return parse_name_val(rest, "ENV", escape), {}


def parse_label(rest: str, escape: str) -> Parsed:
    return parse_name_val(rest, "LABEL", escape), {}


def parse_name_or_name_val(rest: str, escape: str) -> Parsed:
    """ARG: words, each `name` or `name=value`, split later."""
    return _chain(parse_words(rest, escape)), {}


def parse_strings_whitespace_delimited(rest: str, escape: str) -> Parsed:
    if not rest:
        return None, {}
    return _chain(WHITESPACE.split(rest)), {}


def parse_string(rest: str, escape: str) -> Parsed:
    if not rest:
        return None, {}
    return Node(value=rest), {}


class _NotJSONArray(Exception):
    pass


def parse_json(rest: str) -> Parsed:
    """A JSON array of strings, each an argument. Raises _NotJSONArray when
    rest is not a JSON array, LineParseError when it is one of other things."""
    rest = trim_left_space(rest)
    if not rest.startswith("["):
        raise _NotJSONArray
    try:
        values = json.loads(rest, parse_constant=_refuse, parse_float=_finite,
                            parse_int=_finite)
    except ValueError:
        raise _NotJSONArray from None
    if not all(isinstance(v, str) for v in values):
        raise LineParseError(NOT_STRING_ARRAY)
    # Go's decoder turns bad UTF-8 and lone surrogates into U+FFFD.
    values = [re.sub("[\ud800-\udfff]", "\ufffd", v) for v in values]
    return _chain(values), {"json": True}


def _refuse(constant: str) -> float:
    raise ValueError(constant)  # NaN and Infinity are Python's, not JSON


def _finite(number: str) -> float:
    # Go fails to decode a number too large for a float64; the array is then
    # not JSON to docker, rather than an array of something else than strings.
    if math.isinf(float(number)):
        raise ValueError(number)
    return float(number)


def parse_maybe_json(rest: str, escape: str) -> Parsed:
    """The exec form if rest is a JSON array, else the shell form: one argument."""
    if not rest:
        return None, {}
    try:
        return parse_json(rest)
    except _NotJSONArray:
        return Node(value=rest), {}


def parse_maybe_json_to_list(rest: str, escape: str) -> Parsed:
    try:
        return parse_json(rest)
    except _NotJSONArray:
        return parse_strings_whitespace_delimited(rest, escape)


def parse_health_config(rest: str, escape: str) -> Parsed:
    """HEALTHCHECK: the type (CMD, NONE), then a command as RUN's."""
    # Found byte by byte, as docker does (see gostrings.byte_view).
    text = byte_view(rest)
    sep = 0
    while sep < len(text) and not is_space(text[sep]):
        sep += 1
    after = sep
    while after < len(text) and is_space(text[after]):
        after += 1
    if sep == 0:
        return None, {}
    command, attributes = parse_maybe_json(from_byte_view(text[after:]), escape)
    return Node(value=from_byte_view(text[:sep]), next=command), attributes


_ARGUMENT_PARSERS: dict[str, Callable[[str, str], Parsed]] = {
    "add": parse_maybe_json_to_list,
    "arg": parse_name_or_name_val,
    "cmd": parse_maybe_json,
    "copy": parse_maybe_json_to_list,
    "entrypoint": parse_maybe_json,
    "env": parse_env,
    "expose": parse_strings_whitespace_delimited,
    "from": parse_strings_whitespace_delimited,
    "healthcheck": parse_health_config,
    "label": parse_label,
    "maintainer": parse_string,
    "onbuild": parse_sub_command,
    "run": parse_maybe_json,
    "shell": parse_maybe_json,
    "stopsignal": parse_string,
    "user": parse_string,
    "volume": parse_maybe_json_to_list,
    "workdir": parse_string,
}

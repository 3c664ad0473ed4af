"""Go's parsers for the values users type, with Go's error messages.

docker's flags are pflag values, and pflag hands each one to a Go parser:
strconv.ParseInt/ParseUint for numbers, time.ParseDuration for durations,
go-units' RAMInBytes for sizes ("64m", "1g"), and the engine client's
timetypes.GetTimestamp for `--since`/`--until` ("10m", RFC 3339, Unix time).
When a value is bad docker prints the Go error verbatim, so these raise
ValueError with the same text. Everything here is pure.
"""

from __future__ import annotations

import re

from dockyard import timefilter
from dockyard.cli.formatting import go_quote

# --- strconv -----------------------------------------------------------------------------

_PREFIXES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}


def _parse_uint_text(s: str, base: int) -> int:
    """strconv's digits after the sign; raises ValueError for bad syntax."""
    if base == 0:
        base = 10
        if s[:2] in _PREFIXES and len(s) > 2:
            base, s = _PREFIXES[s[:2]], s[2:]
        elif s.startswith("0") and len(s) > 1:
            base, s = 8, s[1:]
        if "_" in s:   # underscores only between digits, and only with base 0
            if s.startswith("_") or s.endswith("_") or "__" in s:
                raise ValueError("invalid syntax")
            s = s.replace("_", "")
    if not s or not all(c.isascii() and c.isalnum() for c in s):
        raise ValueError("invalid syntax")
    return int(s, base)


def parse_int(s: str, bits: int = 64, base: int = 0) -> int:
    """strconv.ParseInt(s, base, bits); pflag uses base 0 (0x, 0o, 0b, 0 prefixes)."""
    text = s[1:] if s[:1] in ("+", "-") else s
    try:
        value = _parse_uint_text(text, base)
    except ValueError:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax") from None
    if s.startswith("-"):
        value = -value
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return value


def parse_uint(s: str, bits: int = 64, base: int = 0) -> int:
    """strconv.ParseUint(s, base, bits)."""
    try:
        if s[:1] in ("+", "-"):
            raise ValueError("invalid syntax")
        value = _parse_uint_text(s, base)
    except ValueError:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(s)}: invalid syntax") from None
    if value >= 1 << bits:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(s)}: value out of range")
    return value


_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.I)


def parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64) for decimal input."""
    if not _FLOAT.fullmatch(s):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
    return float(s)


# --- time.ParseDuration and GetTimestamp: the engine's own ports, in dockyard.timefilter ---

parse_duration = timefilter.parse_duration  # raises DurationError, a ValueError


# --- go-units RAMInBytes -------------------------------------------------------------------

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(size: str) -> int:
    """units.RAMInBytes (go-units 0.5): "64m" -> 67108864; the units are binary and
    case-insensitive, the "b" optional, a space before them allowed."""
    sep = max(size.rfind(c) for c in "01234567890. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{size}'")
    if size[sep] != " ":
        num, sfx = size[:sep + 1], size[sep + 1:]
    else:
        num, sfx = size[:sep], size[sep + 1:]
    value = parse_float(num)
    if value < 0:
        raise ValueError(f"invalid size: '{size}'")
    if not sfx:
        return int(value)
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    sfx = sfx.lower()
    if sfx[0] == "b":
        if len(sfx) > 1:
            raise ValueError(f"invalid suffix: '{sfx}'")
        return int(value)
    if sfx[0] not in _BINARY or (len(sfx) == 2 and sfx[1] != "b") or \
            (len(sfx) == 3 and sfx[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{sfx}'")
    return int(value * _BINARY[sfx[0]])


def get_timestamp(value: str, now: float | None = None) -> str:
    """What the engine client sends as `since`/`until` for what a user typed
    (moby's timetypes.GetTimestamp, shared with the daemon's filters)."""
    try:
        return timefilter.get_timestamp(value, None if now is None else int(now * 1e9))
    except timefilter.TimeError as e:
        raise ValueError(str(e)) from None

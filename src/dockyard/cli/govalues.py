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
import time

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


# --- time.ParseDuration --------------------------------------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(s: str) -> int:
    """time.ParseDuration: "1h30m", "1.5s", "-10m" -> nanoseconds."""
    orig = s
    neg = s[:1] == "-"
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(orig)}")
    total = 0
    while s:
        m = _DURATION_PART.match(s)
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {go_quote(orig)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(orig)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(orig)}")
        scale = _UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        s = s[m.end():]
    if total >= 1 << 63:
        raise ValueError(f"time: invalid duration {go_quote(orig)}")
    return -total if neg else total


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


# --- time.Parse, for the layouts GetTimestamp uses -------------------------------------------

_STD = ("2006", "01", "02", "15", "04", "05", ".999999999", "Z07:00")


def _chunks(layout: str) -> list[str]:
    """The layout as Go's nextStdChunk sees it: standard elements and literal characters."""
    out, i = [], 0
    while i < len(layout):
        for std in _STD:
            if layout.startswith(std, i):
                out.append(std)
                i += len(std)
                break
        else:
            out.append(layout[i])
            i += 1
    return out


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


class _Bad(ValueError):
    """A value that does not match its layout element (Go's errBad)."""


def _getnum(value: str, fixed: bool) -> tuple[int, str]:
    """Go's getnum: one or two digits (exactly two when fixed)."""
    if not value[:1].isdigit():
        raise _Bad
    if not value[1:2].isdigit():
        if fixed:
            raise _Bad
        return int(value[0]), value[1:]
    return int(value[:2]), value[2:]


def _fraction(rest: str) -> tuple[int, str]:
    i = 1
    while i < len(rest) and rest[i].isdigit():
        i += 1
    return int(rest[1:i][:9].ljust(9, "0")), rest[i:]


def parse_time(layout: str, value: str, local_offset: int | None = None) -> tuple[int, int]:
    """time.Parse (and ParseInLocation) for GetTimestamp's layouts: (Unix seconds, ns).

    A value without a zone is read `local_offset` seconds east of UTC (None: UTC,
    as time.Parse). Errors are Go's ParseError texts.
    """
    def cannot(elem: str, rest: str) -> ValueError:
        return ValueError(f"parsing time {go_quote(value)} as {go_quote(layout)}: "
                          f"cannot parse {go_quote(rest)} as {go_quote(elem)}")

    def out_of_range(what: str) -> ValueError:
        return ValueError(f"parsing time {go_quote(value)}: {what} out of range")

    year, month, day, hour, minute, second, nsec = 1, 1, 1, 0, 0, 0, 0
    offset = local_offset
    rest = value
    chunks = _chunks(layout)
    for i, elem in enumerate(chunks):
        if elem not in _STD:
            if not rest.startswith(elem):
                literal = ""
                for e in chunks[i:]:   # Go reports the whole run of literal text
                    if e in _STD:
                        break
                    literal += e
                raise cannot(literal, rest)
            rest = rest[len(elem):]
            continue
        hold = rest
        try:
            if elem == "2006":
                if len(rest) < 4 or not rest[:4].isdigit():
                    raise _Bad
                year, rest = int(rest[:4]), rest[4:]
            elif elem == "01":
                month, rest = _getnum(rest, True)
                if not 1 <= month <= 12:
                    raise out_of_range("month")
            elif elem == "02":
                day, rest = _getnum(rest, True)
            elif elem == "15":
                hour, rest = _getnum(rest, False)
                if hour >= 24:
                    raise out_of_range("hour")
            elif elem == "04":
                minute, rest = _getnum(rest, True)
                if minute >= 60:
                    raise out_of_range("minute")
            elif elem == "05":
                second, rest = _getnum(rest, True)
                if second >= 60:
                    raise out_of_range("second")
                following = chunks[i + 1] if i + 1 < len(chunks) else ""
                if following != ".999999999" and len(rest) >= 2 and rest[0] in ".," \
                        and rest[1].isdigit():
                    nsec, rest = _fraction(rest)   # Go takes a fraction the layout lacks
            elif elem == ".999999999":
                if len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
                    nsec, rest = _fraction(rest)
            elif rest[:1] == "Z":   # Z07:00
                offset, rest = 0, rest[1:]
            else:
                if len(rest) < 6 or rest[3] != ":" or rest[0] not in "+-":
                    raise _Bad
                hh, _ = _getnum(rest[1:3], True)
                mm, _ = _getnum(rest[4:6], True)
                offset = (hh * 3600 + mm * 60) * (-1 if rest[0] == "-" else 1)
                rest = rest[6:]
        except _Bad:
            raise cannot(elem, hold) from None
    if rest:
        raise ValueError(f"parsing time {go_quote(value)}: extra text: {go_quote(rest)}")
    if day < 1 or day > _days_in(month, year):
        raise ValueError(f"parsing time {go_quote(value)}: day out of range")
    import calendar
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds - (offset or 0), nsec


# --- timetypes.GetTimestamp -------------------------------------------------------------------


def get_timestamp(value: str, now: float | None = None) -> str:
    """What the engine client sends as `since`/`until` for what a user typed:
    a duration ("10m") is that long before now, in whole seconds; an RFC 3339
    date or time ("2013-01-02T13:23:37Z"; local when it has no zone) is
    "seconds.nanoseconds"; a Unix time ("1700000000.5") goes as it is."""
    now_ns = time.time_ns() if now is None else int(now * 1e9)
    if value != "0":
        try:
            return str((now_ns - parse_duration(value)) // 1_000_000_000)
        except ValueError:
            pass
    in_location = not any(c in value for c in "zZ+") and value.count("-") != 3
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" if in_location else \
            "2006-01-02T15:04:05.999999999Z07:00"
    elif "T" in value:
        colons = value.count(":")
        if not in_location and "z" not in value.lower() and colons > 0:
            colons -= 1   # the zone's own colon
        layout = {0: "2006-01-02T15", 1: "2006-01-02T15:04"}.get(colons, "2006-01-02T15:04:05")
        if not in_location:
            layout += "Z07:00"
    else:
        layout = "2006-01-02" if in_location else "2006-01-02Z07:00"
    offset = time.localtime(now_ns / 1e9).tm_gmtoff if in_location else None
    try:
        seconds, nsec = parse_time(layout, value, offset)
    except ValueError:
        if "-" in value:
            raise
        sec, dot, frac = value.partition(".")
        try:
            parse_int(sec, 64, 10)
            if dot:
                parse_int(frac, 64, 10)
        except ValueError:
            raise ValueError(
                f"failed to parse value as time or duration: {go_quote(value)}") from None
        return value
    return f"{seconds}.{nsec:09d}"

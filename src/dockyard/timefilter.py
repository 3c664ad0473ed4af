"""Times and durations in filters, read as dockerd reads them. Pure: no I/O.

`until=` (image and container prune) and the `since`/`until` of logs and events
take one string in three spellings, tried in this order by moby's
`api/types/time.GetTimestamp`:

* a Go duration, counted back from now: `1h30m`, `10m`, `1.5h`, `-5s`
  (but not a bare `0`, which is read as the unix time 0);
* an RFC 3339 time, with or without its parts: `2024-01-02`,
  `2024-01-02T15`, `2024-01-02T15:04`, `2024-01-02T15:04:05.5`, each with
  a zone (`Z`, `+02:00`) or without one, then meaning the daemon's local zone;
* unix seconds with an optional fraction: `1700000000`, `1700000000.25`.

The time layouts are parsed the way Go's `time.Parse` reads them (fractions
even where the layout has none, one-digit hours, range checks), and failures
carry Go's messages, because dockerd returns them verbatim.
"""

from __future__ import annotations

import math
import re
import time

from dockyard import errdefs

__all__ = ["TimeError", "get_timestamp", "parse_duration", "parse_timestamps",
           "rfc3339_ns", "until_ns", "until_seconds"]

NS = 1_000_000_000
_MAX_INT64 = (1 << 63) - 1


class TimeError(errdefs.System):
    """A time or duration dockerd cannot read.

    dockerd returns these errors untyped, which its API answers with 500; the
    kind is System so that ours does the same (without logging a traceback).
    """


class DurationError(ValueError):
    """A string Go's time.ParseDuration refuses; the message is Go's."""


def go_quote(s: str) -> str:
    """The quoting of Go's time package: `"` and `\\` escaped, bytes outside
    printable ASCII written as \\xNN."""
    out = ['"']
    for c in s:
        if c < " " or c >= "\x80":
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + c if c in '"\\' else c)
    out.append('"')
    return "".join(out)


def _strconv_quote(s: str) -> str:
    """Go's %q (strconv.Quote), close enough for error messages."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}
    out = ['"']
    for c in s:
        if c in named:
            out.append(named[c])
        elif c < " " or c == "\x7f":
            out.append(f"\\x{ord(c):02x}")
        elif not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# -- durations (Go's time.ParseDuration) -------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
          "s": NS, "m": 60 * NS, "h": 3600 * NS}


def parse_duration(text: str) -> int:
    """A Go duration (`1h30m`, `1.5s`, `-10m`, `0`) in nanoseconds."""
    orig, s, neg = text, text, False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    invalid = DurationError(f"time: invalid duration {go_quote(orig)}")
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or s[0].isascii() and s[0].isdigit()):
            raise invalid
        m = re.match(r"[0-9]*", s)
        digits, s = m.group(), s[m.end():]
        whole = int(digits or "0")
        if whole > _MAX_INT64 + 1:
            raise invalid
        frac, scale, has_frac = 0, 1.0, False
        if s.startswith("."):
            m = re.match(r"[0-9]*", s[1:])
            fdigits, s = m.group(), s[1 + m.end():]
            has_frac = bool(fdigits)
            for d in fdigits:  # Go's leadingFraction stops adding once it would overflow
                if frac > _MAX_INT64 // 10:
                    continue
                frac, scale = frac * 10 + int(d), scale * 10
        if not digits and not has_frac:
            raise invalid
        m = re.match(r"[^0-9.]*", s)
        unit, s = m.group(), s[m.end():]
        if not unit:
            raise DurationError(f"time: missing unit in duration {go_quote(orig)}")
        if unit not in _UNITS:
            raise DurationError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(orig)}")
        value = whole * _UNITS[unit]
        if frac:
            value += int(frac * (_UNITS[unit] / scale))
        total += value
        if total > _MAX_INT64 + 1:
            raise invalid
    if not neg and total > _MAX_INT64:
        raise invalid
    return -total if neg else total


# -- Go time layouts (the subset GetTimestamp uses) ------------------------------

# A layout is a list of (literal prefix, element) chunks, as Go's nextStdChunk
# splits it; the last chunk's element is "" (the end).
_ELEMENTS = ("2006", "01", "02", "15", "04", "05", ".999999999", "Z07:00")


def _chunks(layout: str) -> list[tuple[str, str]]:
    out, prefix, i = [], "", 0
    while i < len(layout):
        for element in _ELEMENTS:
            if layout.startswith(element, i):
                out.append((prefix, element))
                prefix, i = "", i + len(element)
                break
        else:
            prefix += layout[i]
            i += 1
    out.append((prefix, ""))
    return out


class _ParseError(Exception):
    pass


def _getnum(value: str, fixed: bool) -> tuple[int, str]:
    if not value[:1].isdigit() or not value[:1].isascii():
        raise _ParseError
    if not (len(value) > 1 and value[1].isascii() and value[1].isdigit()):
        if fixed:
            raise _ParseError
        return int(value[0]), value[1:]
    return int(value[:2]), value[2:]


def _nanoseconds(value: str, nbytes: int) -> int:
    """value[0] is the separator; value[1:nbytes] the digits (at most 9 count)."""
    nbytes = min(nbytes, 10)
    return int(value[1:nbytes]) * 10 ** (10 - nbytes)


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_layout(layout: str, value: str, default_offset: int = 0) -> int:
    """Go's time.Parse (or ParseInLocation in a fixed zone `default_offset`
    seconds east of UTC) for the layouts above; unix nanoseconds."""
    avalue = value
    year, month, day, hour, minute, sec, nsec = 0, 1, 1, 0, 0, 0, 0
    offset: int | None = None
    chunks = _chunks(layout)
    for n, (prefix, element) in enumerate(chunks):
        if not value.startswith(prefix):
            matched = 0
            while matched < len(prefix) and value[matched:matched + 1] == prefix[matched]:
                matched += 1
            _fail(layout, avalue, prefix, value[matched:])
        value = value[len(prefix):]
        if not element:
            if value:
                raise TimeError(f"parsing time {go_quote(avalue)}: extra text: {go_quote(value)}")
            break
        hold, range_err = value, ""
        try:
            if element == "2006":
                if len(value) < 4 or not value[0].isdigit() or not value[:4].isdigit() \
                        or not value[:4].isascii():
                    raise _ParseError
                year, value = int(value[:4]), value[4:]
            elif element == "01":
                month, value = _getnum(value, True)
                if not 1 <= month <= 12:
                    range_err = "month"
            elif element == "02":
                day, value = _getnum(value, True)
            elif element == "15":
                hour, value = _getnum(value, False)
                if hour >= 24:
                    range_err = "hour"
            elif element == "04":
                minute, value = _getnum(value, True)
                if minute >= 60:
                    range_err = "minute"
            elif element == "05":
                sec, value = _getnum(value, True)
                if sec >= 60:
                    range_err = "second"
                elif len(value) >= 2 and value[0] in ".," and value[1].isdigit() \
                        and chunks[n + 1][0] == "" and chunks[n + 1][1] == ".999999999":
                    pass  # the layout's own fraction element reads it
                elif len(value) >= 2 and value[0] in ".," and value[1].isascii() \
                        and value[1].isdigit():
                    end = 2
                    while end < len(value) and value[end].isascii() and value[end].isdigit():
                        end += 1
                    nsec, value = _nanoseconds(value, end), value[end:]
            elif element == ".999999999":
                if len(value) >= 2 and value[0] in ".," and value[1].isascii() \
                        and value[1].isdigit():
                    end = 2
                    while end < len(value) and value[end].isascii() and value[end].isdigit():
                        end += 1
                    nsec, value = _nanoseconds(value, end), value[end:]
            elif element == "Z07:00":
                if value[:1] == "Z":
                    offset, value = 0, value[1:]
                else:
                    if len(value) < 6 or value[3] != ":":
                        raise _ParseError
                    sign, hh, mm, value = value[0], value[1:3], value[4:6], value[6:]
                    hours, _ = _getnum(hh, True)
                    minutes, _ = _getnum(mm, True)
                    if sign not in "+-":
                        raise _ParseError
                    offset = (hours * 60 + minutes) * 60 * (1 if sign == "+" else -1)
        except _ParseError:
            _fail(layout, avalue, element, hold)
        if range_err:
            raise TimeError(f"parsing time {go_quote(avalue)}: {range_err} out of range")
    if not 1 <= day <= _days_in(month, year):
        raise TimeError(f"parsing time {go_quote(avalue)}: day out of range")
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec
    seconds -= default_offset if offset is None else offset
    return seconds * NS + nsec


def _fail(layout: str, value: str, layout_elem: str, value_elem: str) -> None:
    raise TimeError(f"parsing time {go_quote(value)} as {go_quote(layout)}: cannot parse "
                    f"{go_quote(value_elem)} as {go_quote(layout_elem)}")


RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


def rfc3339_ns(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 time as images and records carry it
    (`created`); 0 for an empty or unreadable one."""
    if not text:
        return 0
    try:
        return parse_layout(RFC3339_NANO, text)
    except TimeError:
        return 0


# -- GetTimestamp / ParseTimestamps --------------------------------------------

_INT64 = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int:
    if not _INT64.fullmatch(text) or not -_MAX_INT64 - 1 <= int(text) <= _MAX_INT64:
        raise ValueError(text)
    return int(text)


def _parse_timestamp(value: str) -> tuple[int, int]:
    head, dot, tail = value.partition(".")
    seconds = _parse_int64(head)
    if not dot:
        return seconds, 0
    n = _parse_int64(tail)
    return seconds, int(float(n) * math.pow(10, 9 - len(tail)))


def parse_timestamps(value: str, default: int = 0) -> tuple[int, int]:
    """moby's ParseTimestamps: "<seconds>[.<fraction>]" -> (seconds, nanoseconds)."""
    if value == "":
        return default, 0
    try:
        return _parse_timestamp(value)
    except ValueError:
        raise TimeError(f"strconv.ParseInt: parsing {_strconv_quote(value)}: "
                        "invalid syntax") from None


def get_timestamp(value: str, now_ns: int | None = None,
                  local_offset: int | None = None) -> str:
    """moby's GetTimestamp: a duration, RFC 3339 time or unix time as the unix
    timestamp string "<seconds>[.<nanoseconds>]".

    `now_ns` is the reference for durations (default: now); `local_offset` the
    zone, in seconds east of UTC, of times written without one (default: the
    host's zone at `now_ns`, as dockerd's FixedZone(reference.Zone())).
    """
    if now_ns is None:
        now_ns = time.time_ns()
    if value != "0":
        try:
            d = parse_duration(value)
        except DurationError:
            pass
        else:
            return str((now_ns - d) // NS)

    in_location = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    if "." in value:
        layout = "2006-01-02T15:04:05.999999999" if in_location else RFC3339_NANO
    elif "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the one in the zone offset
        layouts = (("2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05") if in_location
                   else ("2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", RFC3339))
        layout = layouts[min(colons, 2)]
    else:
        layout = "2006-01-02" if in_location else "2006-01-02Z07:00"

    if local_offset is None:
        local_offset = time.localtime(now_ns // NS).tm_gmtoff if in_location else 0
    try:
        ns = parse_layout(layout, value, local_offset if in_location else 0)
    except TimeError:
        if "-" in value:
            raise  # it looked like an RFC 3339 time: Go's own message says why not
        try:
            _parse_timestamp(value)
        except ValueError:
            raise TimeError("failed to parse value as time or duration: "
                            f"{_strconv_quote(value)}") from None
        return value
    seconds, nanos = divmod(ns, NS)
    return f"{seconds}.{nanos:09d}"


def until_ns(value: str, now_ns: int | None = None) -> int:
    """An `until` filter value as unix nanoseconds (dockerd's
    getUntilFromPruneFilters); raises TimeError with dockerd's message."""
    seconds, nanos = parse_timestamps(get_timestamp(value, now_ns), 0)
    return seconds * NS + nanos


def until_seconds(value: str, now_ns: int | None = None) -> float:
    """An `until` filter value as unix seconds, for comparing with record times."""
    return until_ns(value, now_ns) / NS

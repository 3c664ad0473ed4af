"""Go's notions of white space and of quoting, which the Dockerfile parser inherits.

Docker's parser is Go code, and several of its decisions rest on Go's
library: `unicode.IsSpace` decides where words end, `strings.TrimSpace` what
an instruction's arguments are, and `strconv.Quote` how the AST is dumped and
how values appear in error messages. Python's `str.isspace` and `repr` differ
from both in small ways (U+001C..U+001F are spaces to Python, not to Go), so
the parser uses these instead.

Text read from a Dockerfile is decoded as UTF-8 with `surrogateescape`: a byte
that is not UTF-8 becomes a lone surrogate U+DC80..U+DCFF, so that it can be
given back, or shown as Go shows a bad byte (`\\xNN`).
"""

from __future__ import annotations

# unicode.IsSpace: the Latin-1 spaces, then the White_Space property.
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")

_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def is_space(ch: str) -> bool:
    """unicode.IsSpace."""
    return ch in _SPACES


def trim_space(s: str) -> str:
    """strings.TrimSpace."""
    start, end = 0, len(s)
    while start < end and s[start] in _SPACES:
        start += 1
    while end > start and s[end - 1] in _SPACES:
        end -= 1
    return s[start:end]


def trim_left_space(s: str) -> str:
    """strings.TrimLeftFunc(s, unicode.IsSpace)."""
    start = 0
    while start < len(s) and s[start] in _SPACES:
        start += 1
    return s[start:]


def is_bad_byte(ch: str) -> bool:
    """Whether ch stands for a byte that was not UTF-8 (see the module's docstring)."""
    return "\udc80" <= ch <= "\udcff"


def as_go_runes(s: str) -> str:
    """s as Go sees it after decoding it rune by rune: a bad byte becomes U+FFFD."""
    return "".join("\ufffd" if is_bad_byte(c) else c for c in s)


def lower(s: str) -> str:
    """strings.ToLower: Unicode's simple case mapping, one character for one
    (Python's str.lower turns U+0130 into two), and bad bytes become U+FFFD."""
    return "".join(_simple(c, c.lower()) if c != "\u0130" else "i" for c in as_go_runes(s))


def upper(s: str) -> str:
    """strings.ToUpper: as lower (Python's str.upper turns "ß" into "SS")."""
    return "".join(_simple(c, c.upper()) for c in as_go_runes(s))


def _simple(c: str, mapped: str) -> str:
    return mapped if len(mapped) == 1 else c


def byte_view(s: str) -> str:
    """s with each of its UTF-8 bytes as one character.

    A few of docker's loops walk a line byte by byte and turn each byte into a
    rune; a multi-byte character then reads as several Latin-1 ones, and the
    bytes 0x85 and 0xA0 inside it count as spaces. Walking this view instead
    gives the same results; `from_byte_view` turns a slice of it back.
    """
    return s.encode("utf-8", "surrogateescape").decode("latin-1")


def from_byte_view(s: str) -> str:
    return s.encode("latin-1").decode("utf-8", "surrogateescape")


def quote(s: str) -> str:
    """strconv.Quote, as `%q` prints a string."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif is_bad_byte(ch):
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def quote_list(items: list[str]) -> str:
    """`%q` of a []string: `["a" "b"]`."""
    return "[" + " ".join(quote(s) for s in items) + "]"


def format_duration(ns: int) -> str:
    """time.Duration.String: "0s", "500ms", "1.5s", "1m30s", "2h0m0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def quote_rune(code: int) -> str:
    """`%q` of an integer: the character it is, quoted ('\\x03', 'a')."""
    ch = chr(code)
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + quote(ch)[1:-1] + "'"

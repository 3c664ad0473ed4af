"""WWW-Authenticate challenges (RFC 7235), as docker's challenge package reads them.

A registry that wants credentials answers 401 with one or more challenges:

    WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:pull"
    WWW-Authenticate: Basic realm="Registry Realm"

Each is a scheme (compared in lower case) and `key=value` parameters, a
value being a token or a quoted string with backslash escapes. Keys are
lower-cased too; values are kept as written. Anything unparsable ends that
challenge, as in Go, rather than failing the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SEPARATORS = set('()<>@,;:\\"/[]?={} \t')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer", "basic"
    parameters: dict[str, str] = field(default_factory=dict)


def _is_token_char(c: str) -> bool:
    return 32 < ord(c) < 127 and c not in _SEPARATORS


def _skip_space(s: str) -> str:
    return s.lstrip(" \t")


def _token(s: str) -> tuple[str, str]:
    i = 0
    while i < len(s) and _is_token_char(s[i]):
        i += 1
    return s[:i], s[i:]


def _quoted(s: str) -> tuple[str | None, str]:
    if not s.startswith('"'):
        return _token(s)
    out = []
    i = 1
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), s[i + 1:]
        if c == "\\":
            if i + 1 >= len(s):
                return None, ""
            i += 1
            c = s[i]
        out.append(c)
        i += 1
    return None, ""


def parse_header(value: str) -> list[Challenge]:
    """The challenges of one header value (several may share one value)."""
    challenges = []
    s = value
    while True:
        scheme, s = _token(_skip_space(s))
        if not scheme:
            return challenges
        params: dict[str, str] = {}
        s = _skip_space(s)
        while True:
            key, rest = _token(s)
            rest = _skip_space(rest)
            if not key or not rest.startswith("="):
                break  # the start of the next challenge, or the end
            val, rest = _quoted(_skip_space(rest[1:]))
            if val is None:
                return challenges + [Challenge(scheme.lower(), params)]
            params[key.lower()] = val
            s = _skip_space(rest)
            if not s.startswith(","):
                break
            s = _skip_space(s[1:])
        challenges.append(Challenge(scheme.lower(), params))
        if s.startswith(","):
            s = s[1:]
        elif s == "" or not _token(s)[0]:
            return challenges


def parse(values: list[str]) -> list[Challenge]:
    """Every challenge of a response's WWW-Authenticate headers, in order."""
    out: list[Challenge] = []
    for value in values:
        out.extend(parse_header(value))
    return out

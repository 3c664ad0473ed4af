"""Go's text/template, the part that docker's `--format` flag reaches.

docker runs every `--format` through text/template with the extra functions
of github.com/docker/cli/templates (json, split, join, title, lower, upper,
pad, truncate), naming the template "" so that errors read
`template: :1: function "foo" not defined`. This module parses and runs the
same language over Python data, so `dockyard ... --format` prints what
`docker ... --format` prints and fails with the same messages.

Go's reflection is replaced by these rules:

- `.Field` on a Mapping is a key lookup. A missing key is Go's invalid
  value: it prints `<no value>`, is false, ranges as empty, and passes
  through further `.Fields` (as for a map[string]interface{});
- `.Field` on any other object is an attribute; a callable attribute is a
  method and is called with the command's arguments. A missing attribute is
  an error, as for a struct;
- None is a nil pointer and prints `<nil>`. That is what docker shows for the
  nil pointers of the typed structs it tries first (`{{.State.Health}}`),
  while Go would print `<no value>` for a nil in a map[string]interface{};
- values print with fmt's %v: `[a b]`, `map[k:v]` (keys sorted), `true`,
  floats in %g's shortest form (3.0 -> `3`, 1e6 -> `1e+06`).

Not supported: {{define}}, {{template}}, {{block}}, complex numbers, and
custom delimiters; docker's formats do not use them.
"""

from __future__ import annotations

import json as _json
import math
import re
from collections.abc import Mapping
from typing import Any, Callable, NoReturn

from dockyard.cli.tabwriter import tabwrite

__all__ = ["TemplateError", "Template", "parse", "render", "is_table", "table_body",
           "render_table", "tabwrite"]


class TemplateError(ValueError):
    """A template did not parse or did not run; the message is Go's."""


class _Missing:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()
_NOFINAL = object()   # no value piped in from the previous command (Go's missingVal)
_ABSENT = object()


# --- Go value conventions ---------------------------------------------------------------

def _go_type(v: Any) -> str:
    """The Go type a value stands for, for error messages and %T."""
    if v is None or v is MISSING:
        return "<nil>"
    for py, go in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string"),
                   (complex, "complex128"), (bytes, "[]uint8"),
                   (Mapping, "map[string]interface {}"), ((list, tuple), "[]interface {}")):
        if isinstance(v, py):
            return go
    return "func" if callable(v) else type(v).__name__


def _truth(v: Any) -> bool:
    """Go's isTrue: the zero value of every type is false; structs are true."""
    if v is None or v is MISSING:
        return False
    if isinstance(v, (bool, int, float, complex)):
        return v != 0
    if isinstance(v, (str, bytes, list, tuple, set, frozenset, Mapping)):
        return len(v) > 0
    return True


def _sorted_keys(m: Mapping) -> list:
    """Map keys in fmtsort's order, which fmt, range and printing all use."""
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=lambda k: (type(k).__name__, str(k)))


def _go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII when ascii_only)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and (o < 0x80 or not ascii_only):
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v"}


def _go_rune(ch: str) -> str:
    """fmt's %#U: U+0041 'A'."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _shortest_digits(a: float) -> tuple[str, int]:
    """Shortest round-tripping decimal digits of a > 0 and where the point goes.

    Python's repr and Go's strconv both pick the shortest digits that read
    back to the same float, so the digits agree; only the layout differs.
    """
    mant, _, exp = repr(a).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    ds = digits.lstrip("0")
    point = len(whole) + int(exp or 0) - (len(digits) - len(ds))
    return ds.rstrip("0") or "0", point


def _exp_form(ds: str, point: int, min_exp_digits: int = 2) -> str:
    x = point - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{mant}e{'-' if x < 0 else '+'}{abs(x):0{min_exp_digits}d}"


def _fixed_form(ds: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + ds
    if point >= len(ds):
        return ds + "0" * (point - len(ds))
    return ds[:point] + "." + ds[point:]


def _shortest_g(a: float) -> str:
    """strconv.FormatFloat(a, 'g', -1, 64) for a >= 0: %e past an exponent of 6."""
    if a == 0:
        return "0"
    ds, point = _shortest_digits(a)
    return _exp_form(ds, point) if not -4 <= point - 1 < 6 else _fixed_form(ds, point)


# --- fmt: %v and Printf -----------------------------------------------------------------

class _Spec:
    """A Printf directive's flags, width and precision."""
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec")

    def __init__(self, flags: str = "", width: int | None = None, prec: int | None = None):
        self.minus, self.plus, self.sharp = "-" in flags, "+" in flags, "#" in flags
        self.space, self.zero = " " in flags, "0" in flags
        self.width, self.prec = width, prec


_PLAIN = _Spec()


def _pad(s: str, sp: _Spec, zero: bool = False) -> str:
    if sp.width is None or len(s) >= sp.width:
        return s
    fill = sp.width - len(s)
    if sp.minus:
        return s + " " * fill
    return ("0" if zero and sp.zero else " ") * fill + s


def _num(body: str, negative: bool, sp: _Spec, prefix: str = "", zero: bool = True) -> str:
    """A number with its sign and prefix; '0' pads between them and the digits."""
    sign = "-" if negative else "+" if sp.plus else " " if sp.space else ""
    if zero and sp.zero and not sp.minus and sp.width is not None:
        body = body.rjust(sp.width - len(sign) - len(prefix), "0")
    return _pad(sign + prefix + body, sp)


def _fmt_int(v: int, verb: str, sp: _Spec) -> str | None:
    c = chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
    if verb == "c":
        return _pad(c, sp)
    if verb == "q":   # strconv.QuoteRune
        body = "\\'" if c == "'" else '"' if c == '"' else _go_quote(c)[1:-1]
        return _pad(f"'{body}'", sp)
    if verb == "U":
        s = f"U+{v:04X}"
        return _pad(s + f" '{c}'" if sp.sharp else s, sp)
    base = {"v": "d", "d": "d", "b": "b", "o": "o", "O": "o", "x": "x", "X": "X"}.get(verb)
    if base is None:
        return None
    digits = format(abs(v), base)
    if sp.prec is not None:
        digits = "" if sp.prec == 0 and v == 0 else digits.zfill(sp.prec)
    prefix = "0o" if verb == "O" else ""
    if sp.sharp:
        prefix = {"b": "0b", "x": "0x", "X": "0X"}.get(verb, prefix)
        if verb == "o" and not digits.startswith("0"):
            prefix = "0"
    return _num(digits, v < 0, sp, prefix, zero=sp.prec is None)


def _fmt_float(v: float, verb: str, sp: _Spec) -> str | None:
    if verb not in "vgGeEfF":
        return None
    if math.isnan(v) or math.isinf(v):
        s = "NaN" if math.isnan(v) else "+Inf" if v > 0 else "-Inf"
        return _pad("+" + s if sp.plus and s == "NaN" else s, sp)
    negative = math.copysign(1.0, v) < 0
    a = abs(v)
    if verb in "vgG" and sp.prec is None:
        body = _shortest_g(a)
    else:
        prec = 6 if sp.prec is None else sp.prec
        body = format(a, f".{prec}{'g' if verb == 'v' else verb}")
    if verb in "GE":
        body = body.upper()
    return _num(body, negative, sp)


def _fmt_str(v: str, verb: str, sp: _Spec) -> str | None:
    if verb in "vs":
        return _pad(v if sp.prec is None else v[:sp.prec], sp, zero=True)
    if verb == "q":
        if sp.sharp and "`" not in v and all(c == "\t" or c.isprintable() for c in v):
            return _pad(f"`{v}`", sp)
        return _pad(_go_quote(v, ascii_only=sp.plus), sp)
    if verb in "xX":
        hexes = [format(b, "02" + verb) for b in v.encode()]
        prefix = "0" + verb if sp.sharp else ""
        if sp.space:   # "% x": bytes apart, each with its own prefix
            return _pad(" ".join(prefix + h for h in hexes), sp)
        return _pad(prefix + "".join(hexes) if hexes else "", sp)
    return None


def _fmt(v: Any, verb: str, sp: _Spec = _PLAIN) -> str:
    """One value under one Printf verb; Go applies the verb to each element of a container."""
    if verb == "T":
        return _pad(_go_type(v), sp)
    if v is MISSING:
        return "<no value>"
    if v is None:
        return _pad("<nil>", sp) if verb == "v" else f"%!{verb}(<nil>)"
    s: str | None = None
    if isinstance(v, bool):
        s = _pad("true" if v else "false", sp) if verb in "vt" else None
    elif isinstance(v, int):
        s = _fmt_int(v, verb, sp)
    elif isinstance(v, float):
        s = _fmt_float(v, verb, sp)
    elif isinstance(v, str):
        s = _fmt_str(_go_quote(v) if verb == "v" and sp.sharp else v, verb, sp)
    elif isinstance(v, (list, tuple, bytes)):
        s = "[" + " ".join(_fmt(e, verb, sp) for e in v) + "]"
    elif isinstance(v, Mapping):
        s = "map[" + " ".join(f"{_fmt(k, verb, sp)}:{_fmt(v[k], verb, sp)}"
                              for k in _sorted_keys(v)) + "]"
    elif verb in "vs":
        # A Stringer prints its String(): an object with its own __str__. Other
        # objects print as Go prints a struct, their fields in braces.
        if type(v).__str__ is object.__str__ and hasattr(v, "__dict__"):
            s = _pad("{" + " ".join(_fmt(x, verb) for x in _public_fields(v).values()) + "}", sp)
        else:
            s = _pad(str(v), sp)
    if s is None:
        return f"%!{verb}({_go_type(v)}={_fmt(v, 'v')})"
    return s


def _sprint(args: tuple) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_fmt(a, "v"))
    return "".join(out)


def _sprintln(args: tuple) -> str:
    return " ".join(_fmt(a, "v") for a in args) + "\n"


_DIRECTIVE = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.S)


def _sprintf(fmt: str, args: tuple) -> str:
    """fmt.Sprintf, with Go's %!verb(type=value) markers for what does not fit."""
    out: list[str] = []
    argi = 0

    def star() -> int | None:
        nonlocal argi
        if argi < len(args) and isinstance(args[argi], int):
            argi += 1
            return args[argi - 1]
        out.append("%!(BADWIDTH)")
        return None

    pos = 0
    while True:
        j = fmt.find("%", pos)
        if j < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:j])
        m = _DIRECTIVE.match(fmt, j)
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        w = star() if width == "*" else int(width) if width else None
        if w is not None and w < 0:
            flags, w = flags + "-", -w
        if prec is None:
            p = None
        else:   # "%.f" is precision 0
            p = star() if prec == "*" else int(prec or 0)
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_fmt(args[argi], verb, _Spec(flags, w, p)))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{_go_type(a)}={_fmt(a, 'v')}"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --- encoding/json, as docker's `json` function calls it --------------------------------

class _Unsupported(Exception):
    pass


def _json_str(s: str, escape_html: bool) -> str:
    s = re.sub("[\ud800-\udfff]", "\ufffd", s)   # Go writes invalid UTF-8 as U+FFFD
    enc = _json.dumps(s, ensure_ascii=False)
    enc = enc.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")   # as Go always does
    if escape_html:
        enc = enc.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return enc


def _json_float(f: float) -> str:
    """encoding/json's float64: shortest digits, exponent only below 1e-6 or from 1e21."""
    if math.isnan(f) or math.isinf(f):
        raise _Unsupported(f)
    a = abs(f)
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if a == 0:
        return sign + "0"
    ds, point = _shortest_digits(a)
    if a < 1e-6 or a >= 1e21:
        return sign + _exp_form(ds, point, min_exp_digits=1)
    return sign + _fixed_form(ds, point)


def json_marshal(v: Any, escape_html: bool = False) -> str:
    """Compact JSON as Go's encoder writes it; Mappings keep their order.

    docker's `json` uses an Encoder with SetEscapeHTML(false), so `<`, `>`
    and `&` stay as they are by default; escape_html=True gives json.Marshal.
    Mapping order is kept because docker marshals structs, whose fields come
    out in declaration order; the callers hand us dicts in that order.
    An object with a MarshalJSON() method is a Go json.Marshaler: its text
    is used as is. docker's formatter contexts are such objects (json.Marshal
    of a map: sorted keys, HTML escaped), which is why `{{json .}}` of a
    listing row escapes `<none>` while `{{json .Tag}}` does not.
    Other objects marshal as their public attributes.
    """
    if v is None or v is MISSING:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return _json_str(v, escape_html)
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{_json_str(str(k), escape_html)}:{json_marshal(x, escape_html)}"
                              for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(json_marshal(x, escape_html) for x in v) + "]"
    if isinstance(v, bytes):
        import base64
        return '"' + base64.b64encode(v).decode() + '"'
    marshal = getattr(v, "MarshalJSON", None)
    if callable(marshal):
        text = marshal()
        return text.decode() if isinstance(text, bytes) else text
    if not hasattr(v, "__dict__"):
        return _json_str(str(v), escape_html)
    return json_marshal(_public_fields(v), escape_html)


def _public_fields(v: Any) -> dict[str, Any]:
    """A plain object's fields, as a Go struct's exported ones."""
    return {k: x for k, x in vars(v).items() if not k.startswith("_")}


# --- functions --------------------------------------------------------------------------

class _CallError(Exception):
    """An error a template function returns; Go reports it as `error calling NAME: ...`."""


def _index_arg(ix: Any, cap: int) -> int:
    """text/template's indexArg."""
    if ix is None or ix is MISSING:
        raise _CallError("cannot index slice/array with nil")
    if not isinstance(ix, int) or isinstance(ix, bool):
        raise _CallError(f"cannot index slice/array with type {_go_type(ix)}")
    if ix < 0 or ix > cap:
        raise _CallError(f"index out of range: {ix}")
    return ix


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise _CallError("index of untyped nil")
    for ix in indexes:
        if item is None or item is MISSING:
            raise _CallError("index of nil pointer")
        if isinstance(item, Mapping):
            if ix is None or ix is MISSING:
                raise _CallError("value is nil; should be of type string")
            try:
                item = item[ix] if ix in item else MISSING
            except TypeError:
                raise _CallError(f"value has type {_go_type(ix)}; should be string") from None
        elif isinstance(item, (str, list, tuple, bytes)):
            seq = item.encode() if isinstance(item, str) else item   # Go indexes strings by byte
            x = _index_arg(ix, len(seq))
            if x == len(seq):
                raise _CallError(f"index out of range: {x}")
            item = seq[x]
        else:
            raise _CallError(f"can't index item of type {_go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (list, tuple)):
        seq = item
    else:
        raise _CallError(f"can't slice item of type {_go_type(item)}")
    idx = [0, len(seq), len(seq)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, len(seq))
    if idx[0] > idx[1]:
        raise _CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise _CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0]:idx[1]]
    return part.decode(errors="replace") if isinstance(item, str) else part


def _length(v: Any) -> int:
    if v is None or v is MISSING:
        raise _CallError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())   # Go's len counts bytes
    if isinstance(v, (list, tuple, bytes, Mapping, set, frozenset)):
        return len(v)
    raise _CallError(f"len of type {_go_type(v)}")


def _kind(v: Any) -> str:
    """text/template's basicKind, with nil and missing as 'invalid'."""
    if v is None or v is MISSING:
        return "invalid"
    for py, kind in ((bool, "bool"), (int, "int"), (float, "float"), (complex, "complex"),
                     (str, "string")):
        if isinstance(v, py):
            return kind
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    """eq a b c: a == b || a == c; values of different kinds are an error, unless nil."""
    if not others:
        raise _CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka != "invalid" and kb != "invalid":
                raise _CallError("incompatible types for comparison")
            truth = False
        elif ka == "invalid":
            truth = True
        else:
            for x in (a, b):
                if isinstance(x, (list, tuple, Mapping, set)):
                    raise _CallError(f"non-comparable type {_fmt(x, 'v')}: {_go_type(x)}")
            truth = a == b
        if truth:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "other") or kb in ("invalid", "other"):
        raise _CallError("invalid type for comparison")
    if ka != kb:
        raise _CallError("incompatible types for comparison")
    if ka in ("bool", "complex"):
        raise _CallError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _eval_args(args: tuple) -> str:
    """What html, js and urlquery escape: a lone string, else fmt.Sprint of the arguments."""
    return args[0] if len(args) == 1 and isinstance(args[0], str) else _sprint(args)


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def _html(*args: Any) -> str:
    return "".join(_HTML.get(c, c) for c in _eval_args(args))


def _js(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif ord(c) < 0x20 or (ord(c) >= 0x80 and not c.isprintable()):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus
    return quote_plus(_eval_args(args), safe="")


def _call(fn: Any, *args: Any) -> Any:
    if fn is None or fn is MISSING:
        raise _CallError("call of nil")
    if not callable(fn):
        raise _CallError(f"non-function of type {_go_type(fn)}")
    return fn(*(None if a is MISSING else a for a in args))


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word, leave the rest alone."""
    def separator(c: str) -> bool:
        if c.isascii():
            return not (c.isalnum() or c == "_")
        return not (c.isalpha() or c.isdigit()) and c.isspace()
    out, prev = [], " "
    for c in s:
        out.append(_rune_map(c, str.upper) if separator(prev) else c)
        prev = c
    return "".join(out)


def _rune_map(s: str, f: Callable[[str], str]) -> str:
    """Go's per-rune case mapping: a rune never turns into two (ß stays ß)."""
    return "".join(m if len(m := f(c)) == 1 else c for c in s)


def _split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def _join(elems: list, sep: str) -> str:
    return sep.join(e if isinstance(e, str) else _fmt(e, "v") for e in elems)


def _pad_with_space(s: str, prefix: int, suffix: int) -> str:
    if prefix < 0 or suffix < 0:
        raise _CallError("strings: negative Repeat count")
    return s and " " * prefix + s + " " * suffix


def _truncate(s: str, length: int) -> str:
    b = s.encode()   # docker cuts bytes: source[:length]
    if len(b) < length:
        return s
    if length < 0:
        raise _CallError(f"slice bounds out of range [:{length}]")
    return b[:length].decode(errors="ignore")


def _json_func(v: Any) -> str:
    try:
        return json_marshal(v)
    except _Unsupported:
        return ""   # docker ignores the encoder's error and prints what it wrote: nothing


# name -> (function, kinds of the fixed parameters, kind of the variadic ones or None).
# Kinds say how an argument is checked the way Go converts it to the parameter's type:
# "val" takes anything (a reflect.Value), "any" turns a missing value into nil
# (interface{}), "str"/"int" must be a string/int, "list" is a []string (nil is empty).
_FuncSpec = tuple[Callable[..., Any], tuple[str, ...], "str | None"]
_BUILTINS: dict[str, _FuncSpec] = {
    "and": (lambda *a: a[-1], ("val",), "val"),   # evaluated lazily: see _State.function
    "or": (lambda *a: a[-1], ("val",), "val"),
    "not": (lambda v: not _truth(v), ("val",), None),
    "len": (_length, ("val",), None),
    "index": (_index, ("val",), "val"),
    "slice": (_slice, ("val",), "val"),
    "print": (lambda *a: _sprint(a), (), "any"),
    "printf": (lambda f, *a: _sprintf(f, a), ("str",), "any"),
    "println": (lambda *a: _sprintln(a), (), "any"),
    "eq": (_eq, ("val",), "val"),
    "ne": (lambda a, b: not _eq(a, b), ("val", "val"), None),
    "lt": (_lt, ("val", "val"), None),
    "le": (_le, ("val", "val"), None),
    "gt": (lambda a, b: not _le(a, b), ("val", "val"), None),
    "ge": (lambda a, b: not _lt(a, b), ("val", "val"), None),
    "html": (_html, (), "any"),
    "js": (_js, (), "any"),
    "urlquery": (_urlquery, (), "any"),
    "call": (_call, ("val",), "val"),
}
_DOCKER: dict[str, _FuncSpec] = {
    "json": (_json_func, ("any",), None),
    "split": (_split, ("str", "str"), None),
    "join": (_join, ("list", "str"), None),
    "title": (_title, ("str",), None),
    "lower": (lambda s: _rune_map(s, str.lower), ("str",), None),
    "upper": (lambda s: _rune_map(s, str.upper), ("str",), None),
    "pad": (_pad_with_space, ("str", "int", "int"), None),
    "truncate": (_truncate, ("str", "int"), None),
}
FUNCS: dict[str, _FuncSpec] = {**_BUILTINS, **_DOCKER}
# templates.HeaderFunctions: a table's header row runs the row template over
# the column titles, and these leave a title as it is rather than reformat it.
HEADER_FUNCS: dict[str, _FuncSpec] = {
    **FUNCS,
    "json": (lambda v: v, ("str",), None),
    "split": (lambda v, _: v, ("str", "str"), None),
    "join": (lambda v, _: v, ("str", "str"), None),
    "title": (lambda v: v, ("str",), None),
    "lower": (lambda v: v, ("str",), None),
    "upper": (lambda v: v, ("str",), None),
    "truncate": (lambda v, _: v, ("str", "int"), None),
}


# --- lexer (text/template/parse/lex.go) -------------------------------------------------

_SPACES = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "nil", "define",
             "template", "block"}
_TERMINATORS = set(".,|:)(}" + _SPACES)   # "}" starts the right delimiter
_DECIMAL = "0123456789"


class _Tok:
    __slots__ = ("kind", "val", "pos", "line")

    def __init__(self, kind: str, val: str, pos: int, line: int) -> None:
        self.kind, self.val, self.pos, self.line = kind, val, pos, line

    def __str__(self) -> str:   # parse.item.String, used in "unexpected X in Y"
        if self.kind == "eof":
            return "EOF"
        if self.kind == "error":
            return self.val
        if self.kind in _KEYWORDS or self.kind == "dot":
            return f"<{self.val}>"
        return _go_quote(self.val[:10]) + "..." if len(self.val) > 10 else _go_quote(self.val)


def _right_delim(text: str, i: int) -> tuple[int, int] | None:
    """If `}}` or the trimming ` -}}` is at i: where `}}` starts and where the text resumes."""
    if text.startswith("}}", i):
        return i, i + 2
    if text[i:i + 1] in tuple(_SPACES) and text.startswith("-}}", i + 1):
        j = i + 4
        while j < len(text) and text[j] in _SPACES:   # the trim marker eats the spaces after
            j += 1
        return i + 2, j
    return None


def _scan_number(text: str, i: int) -> tuple[int, bool]:
    """lex.go's scanNumber: a loose scan; the parser rejects what is not a number."""
    def run(chars: str) -> None:
        nonlocal i
        while i < len(text) and text[i] in chars:
            i += 1
    if text[i:i + 1] in ("+", "-"):
        i += 1
    digits = _DECIMAL + "_"
    if text.startswith("0", i):
        i += 1
        prefix = text[i:i + 1].lower()
        if prefix in ("x", "o", "b"):
            i += 1
            digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[prefix]
    run(digits)
    if text[i:i + 1] == ".":
        i += 1
        run(digits)
    exp = "eE" if digits == _DECIMAL + "_" else "pP" if "f" in digits else ""
    if exp and text[i:i + 1] in tuple(exp):
        i += 1
        run("+-")
        run(_DECIMAL + "_")
    run("i")
    if i < len(text) and (text[i].isalnum() or text[i] == "_"):
        return i + 1, False
    return i, True


def _scan_quote(text: str, i: int) -> tuple[int, str | None]:
    """The end of the quoted token at i, or an error; '...' and "..." may not span lines."""
    q = text[i]
    i += 1
    while i < len(text):
        c = text[i]
        if q != "`" and c == "\\":
            i += 1
            if i >= len(text) or text[i] == "\n":
                break
        elif q != "`" and c == "\n":
            break
        elif c == q:
            return i + 1, None
        i += 1
    return i, {'"': "unterminated quoted string", "`": "unterminated raw quoted string",
               "'": "unterminated character constant"}[q]


def _lex(text: str) -> list[_Tok]:
    """All the tokens of a template; a lexical error ends the list, as in Go."""
    toks: list[_Tok] = []

    def emit(kind: str, start: int, end: int, val: str | None = None) -> None:
        val = text[start:end] if val is None else val
        toks.append(_Tok(kind, val, start, text.count("\n", 0, start) + 1))

    def ident_end(i: int) -> int:
        while i < len(text) and (text[i].isalnum() or text[i] == "_"):
            i += 1
        return i

    pos, n = 0, len(text)
    while True:
        left = text.find("{{", pos)
        if left < 0:
            if pos < n:
                emit("text", pos, n)
            emit("eof", n, n, "")
            return toks
        inner = left + 2
        trim = text[inner:inner + 1] == "-" and text[inner + 1:inner + 2] in tuple(_SPACES)
        end = pos + len(text[pos:left].rstrip(_SPACES)) if trim else left
        if end > pos:
            emit("text", pos, end)
        inner += 2 if trim else 0
        if text.startswith("/*", inner):   # a comment is dropped whole
            close = text.find("*/", inner + 2)
            delim = _right_delim(text, close + 2) if close >= 0 else None
            if delim is None:
                msg = "unclosed comment" if close < 0 else "comment ends before closing delimiter"
                emit("error", left, left, msg)
                return toks
            pos = delim[1]
            continue
        emit("ldelim", left, left + 2)
        pos, depth = inner, 0
        while True:   # inside the action
            delim = _right_delim(text, pos)
            if delim:
                if depth:
                    emit("error", pos, pos, "unclosed left paren")
                    return toks
                emit("rdelim", delim[0], delim[0] + 2)
                pos = delim[1]
                break
            if pos >= n:
                emit("error", pos, pos, "unclosed action")
                return toks
            start, c = pos, text[pos]
            err = None
            if c in _SPACES:
                while pos < n and text[pos] in _SPACES:
                    pos += 1
                if text.startswith("-}}", pos):   # the last space is the trim marker's
                    pos -= 1
                if pos > start:
                    emit("space", start, pos)
                continue
            if c == ":":
                if not text.startswith(":=", pos):
                    err = "expected :="
                pos += 2
                kind = "declare"
            elif c in "=|(),":
                pos += 1
                kind = {"=": "assign", "|": "pipe", "(": "lparen", ")": "rparen", ",": "char"}[c]
                depth += {"(": 1, ")": -1}.get(c, 0)
                if depth < 0:
                    err = "unexpected right paren"
            elif c in "\"`'":
                pos, err = _scan_quote(text, pos)
                kind = {'"': "string", "`": "rawstring", "'": "char_const"}[c]
            elif c == "$" or (c == "." and text[pos + 1:pos + 2] not in tuple(_DECIMAL)):
                pos = ident_end(pos + 1)
                kind = "var" if c == "$" else "field" if pos > start + 1 else "dot"
                if pos < n and text[pos] not in _TERMINATORS:
                    err = f"bad character {_go_rune(text[pos])}"
            elif c in "+-." or c in _DECIMAL:
                pos, ok = _scan_number(text, pos)
                kind = "number"
                if not ok:
                    err = f"bad number syntax: {_go_quote(text[start:pos])}"
            elif c.isalnum() or c == "_":
                pos = ident_end(pos)
                word = text[start:pos]
                kind = (word if word in _KEYWORDS else
                        "bool" if word in ("true", "false") else "ident")
                if pos < n and text[pos] not in _TERMINATORS:
                    err = f"bad character {_go_rune(text[pos])}"
            elif c.isascii() and c.isprintable():
                pos += 1
                kind = "char"
            else:
                err = f"unrecognized character in action: {_go_rune(c)}"
            if err:
                emit("error", start, start, err)
                return toks
            emit(kind, start, pos)


# --- parser (text/template/parse/parse.go) ----------------------------------------------

class _Node:
    """A parse-tree node. `kind` says which fields it has:

    text(text) action(pipe) if/with/range(pipe, body, orelse) break continue
    pipe(decl, assign, cmds) cmd(args) field(idents) var(idents) chain(node, fields)
    ident(name) dot nil bool(value) number(value, text) string(value, text)
    and, while parsing only, end and else.
    """

    def __init__(self, kind: str, pos: int, **fields: Any) -> None:
        self.kind, self.pos = kind, pos
        self.__dict__.update(fields)

    def __str__(self) -> str:   # Go's Node.String(), quoted in execution errors
        k = self.kind
        if k == "field":
            return "." + ".".join(self.idents)
        if k == "var":
            return ".".join(self.idents)
        if k == "chain":
            head = f"({self.node})" if self.node.kind == "pipe" else str(self.node)
            return head + "." + ".".join(self.fields)
        if k == "cmd":
            return " ".join(f"({a})" if a.kind == "pipe" else str(a) for a in self.args)
        if k == "pipe":
            cmds = " | ".join(map(str, self.cmds))
            if not self.decl:
                return cmds
            return f"{', '.join(self.decl)} {'=' if self.assign else ':='} {cmds}"
        if k in ("action", "if", "with", "range"):
            return "{{%s%s}}" % ("" if k == "action" else k + " ", self.pipe)
        if k in ("end", "else", "break", "continue"):
            return "{{%s}}" % k
        if k in ("dot", "nil"):
            return "." if k == "dot" else "nil"
        if k == "ident":
            return self.name
        if k == "bool":
            return "true" if self.value else "false"
        return self.text   # text, number and string nodes keep their source text


_OPERAND_START = {"bool", "char_const", "dot", "field", "ident", "number", "nil", "rawstring",
                  "string", "var", "lparen"}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\"}


def _unquote(tok: str) -> str:
    """strconv.Unquote for "...", `...` and '...'; ValueError("invalid syntax") if bad."""
    q, body = tok[0], tok[1:-1]
    if q == "`":
        return body.replace("\r", "")   # raw strings drop carriage returns
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == q:
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1:i + 2]
        size = {"x": 2, "u": 4, "U": 8}.get(e)
        if e in _ESCAPES or e == q:
            out.append(_ESCAPES.get(e, q))
            i += 2
        elif e in tuple("01234567") and re.fullmatch("[0-7]{3}", body[i + 1:i + 4]) \
                and int(body[i + 1:i + 4], 8) < 256:
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        elif size and re.fullmatch(f"[0-9a-fA-F]{{{size}}}", body[i + 2:i + 2 + size]):
            code = int(body[i + 2:i + 2 + size], 16)
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError("invalid syntax")
            out.append(chr(code))
            i += 2 + size
        else:
            raise ValueError("invalid syntax")
    s = "".join(out)
    if q == "'" and len(s) != 1:
        raise ValueError("invalid syntax")
    return s


def _number(tok: _Tok) -> int | float:
    """A number literal's value: int for integer syntax, float otherwise (Go's idealConstant)."""
    t = tok.val
    if tok.kind == "char_const":
        return ord(_unquote(t))
    if t.endswith("i") and not t.lower().startswith(("0x", "+0x", "-0x")):
        raise ValueError("complex numbers are not supported")
    try:
        if re.fullmatch(r"[+-]?0[0-7_]*[0-7]", t):   # Go's legacy octal: 0755
            return int(t, 8)
        return int(t, 0)
    except ValueError:
        pass
    try:
        if re.match(r"[+-]?0[xX]", t):
            return float.fromhex(t.replace("_", ""))
        return float(t.replace("_", ""))
    except ValueError:
        raise ValueError(f"illegal number syntax: {_go_quote(t)}") from None


class _Parser:
    def __init__(self, text: str, funcs: Mapping[str, Any]) -> None:
        self.toks = _lex(text)
        self.i = 0
        self.seen = 0            # furthest token looked at: its line goes in errors
        self.vars = ["$"]        # variables in scope, to reject undefined ones early
        self.range_depth = 0     # for {{break}} and {{continue}}
        self.action_line = 0     # where the action being parsed starts, for lexical errors
        self.funcs = funcs

    # token stream
    def next(self) -> _Tok:
        tok = self.toks[min(self.i, len(self.toks) - 1)]
        self.seen = max(self.seen, self.i)
        self.i += 1
        return tok

    def peek(self) -> _Tok:
        tok = self.next()
        self.i -= 1
        return tok

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.i -= 1
        return tok

    def errorf(self, msg: str) -> NoReturn:
        line = self.toks[min(self.seen, len(self.toks) - 1)].line
        raise TemplateError(f"template: :{line}: {msg}")

    def unexpected(self, tok: _Tok, context: str) -> NoReturn:
        if tok.kind == "error":   # the lexer's own message, placed if the action spans lines
            extra = ""
            if self.action_line and self.action_line != tok.line:
                extra = f" in action started at :{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = f" started at :{self.action_line}"
            self.errorf(f"{tok}{extra}")
        self.errorf(f"unexpected {tok} in {context}")

    def expect(self, kind: str, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.kind != kind:
            self.unexpected(tok, context)
        return tok

    # grammar
    def parse(self) -> list[_Node]:
        root = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                self.errorf(f"unexpected {node}")
            root.append(node)
        return root

    def item_list(self) -> tuple[list[_Node], _Node]:
        """Nodes up to the {{end}} or {{else}} that closes them, returned apart."""
        nodes = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                return nodes, node
            nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind == "text":
            return _Node("text", tok.pos, text=tok.val)
        if tok.kind == "ldelim":
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")

    def action(self) -> _Node:
        tok = self.next_non_space()
        if tok.kind in ("if", "with", "range"):
            return self.control(tok.kind)
        if tok.kind == "end":
            return _Node("end", self.expect("rdelim", "end").pos)
        if tok.kind == "else":
            # "{{else if" / "{{else with": leave the keyword for control() to see.
            if self.peek_non_space().kind in ("if", "with"):
                return _Node("else", tok.pos)
            return _Node("else", self.expect("rdelim", "else").pos)
        if tok.kind in ("break", "continue"):
            self.expect("rdelim", "{{%s}}" % tok.kind)
            if not self.range_depth:
                self.errorf("{{%s}} outside {{range}}" % tok.kind)
            return _Node(tok.kind, tok.pos)
        if tok.kind in ("define", "template", "block"):
            self.errorf("{{%s}} is not supported" % tok.kind)
        self.i -= 1
        return _Node("action", tok.pos, pipe=self.pipeline("command", "rdelim"))

    def control(self, context: str) -> _Node:
        """{{if|with|range pipeline}} list [{{else [if|with ...]}} list] {{end}}."""
        nvars = len(self.vars)
        pipe = self.pipeline(context, "rdelim")
        self.range_depth += context == "range"
        body, nxt = self.item_list()
        self.range_depth -= context == "range"
        orelse = None
        if nxt.kind == "else":
            # {{if a}}x{{else if b}}y{{end}} is {{if a}}x{{else}}{{if b}}y{{end}}{{end}}
            # with the inner {{end}} shared; likewise "else with".
            if context in ("if", "with") and self.peek().kind == context:
                self.next()
                orelse = [self.control(context)]
            else:
                orelse, nxt = self.item_list()
                if nxt.kind != "end":
                    self.errorf(f"expected end; found {nxt}")
        del self.vars[nvars:]
        return _Node(context, pipe.pos, pipe=pipe, body=body, orelse=orelse)

    def pipeline(self, context: str, end: str) -> _Node:
        pipe = _Node("pipe", self.peek_non_space().pos, decl=[], assign=False, cmds=[])
        while self.peek_non_space().kind == "var":   # declarations: $x := / $x = / $i, $v :=
            at = self.i   # peek_non_space left us on the variable
            var = self.next()
            nxt = self.peek_non_space()
            if nxt.kind in ("declare", "assign"):
                pipe.assign = nxt.kind == "assign"
                self.next_non_space()
                pipe.decl.append(var.val)
                self.vars.append(var.val)
            elif nxt.kind == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(var.val)
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("var", "rdelim", "rparen"):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:   # "$x foo" or "$x.A": $x is an operand, not a declaration
                self.i = at
            break
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                if not pipe.cmds:
                    self.errorf(f"missing value for {context}")
                for i, cmd in enumerate(pipe.cmds[1:]):
                    if cmd.args[0].kind in ("bool", "dot", "nil", "number", "string"):
                        self.errorf(f"non executable command in pipeline stage {i + 2}")
                return pipe
            if tok.kind not in _OPERAND_START:
                self.unexpected(tok, context)
            self.i -= 1
            pipe.cmds.append(self.command())

    def command(self) -> _Node:
        cmd = _Node("cmd", self.peek_non_space().pos, args=[])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("rdelim", "rparen"):
                self.i -= 1
            elif tok.kind != "pipe":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        fields = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if node.kind in ("field", "var"):
            node.idents = node.idents + fields
            return node
        if node.kind in ("bool", "string", "number", "nil", "dot"):
            self.errorf(f"unexpected . after term {_go_quote(str(node))}")
        return _Node("chain", node.pos, node=node, fields=fields)

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        k, pos = tok.kind, tok.pos
        if k == "error":
            self.unexpected(tok, "operand")
        if k == "ident":
            if tok.val not in self.funcs:
                self.errorf(f"function {_go_quote(tok.val)} not defined")
            return _Node("ident", pos, name=tok.val)
        if k in ("dot", "nil"):
            return _Node(k, pos)
        if k == "var":
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {_go_quote(tok.val)}")
            return _Node("var", pos, idents=[tok.val])
        if k == "field":
            return _Node("field", pos, idents=[tok.val[1:]])
        if k == "bool":
            return _Node("bool", pos, value=tok.val == "true")
        try:
            if k in ("number", "char_const"):
                return _Node("number", pos, value=_number(tok), text=tok.val)
            if k in ("string", "rawstring"):
                return _Node("string", pos, value=_unquote(tok.val), text=tok.val)
        except ValueError as e:
            self.errorf(str(e))
        if k == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        self.i -= 1
        return None


# --- execution (text/template/exec.go) --------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# Receivers whose attributes are Python's, not data: `.upper` on a string is
# "can't evaluate field", as in Go, rather than str.upper.
_NOT_STRUCTS = (str, bytes, bytearray, int, float, complex, list, tuple, set, frozenset)


class _State:
    def __init__(self, text: str, funcs: Mapping[str, _FuncSpec], out: list[str]) -> None:
        self.text = text
        self.funcs = funcs
        self.out = out
        self.vars: list[list[Any]] = []   # [name, value] pairs, innermost last
        self.node: _Node | None = None    # where we are, for errors

    def errorf(self, msg: str) -> NoReturn:
        n = self.node
        if n is None:
            raise TemplateError(f"template: : {msg}")
        line = self.text.count("\n", 0, n.pos) + 1
        col = n.pos - (self.text.rfind("\n", 0, n.pos) + 1)
        raise TemplateError(f'template: :{line}:{col}: executing "" at <{n}>: {msg}')

    # variables
    def var(self, name: str) -> Any:
        for pair in reversed(self.vars):
            if pair[0] == name:
                return pair[1]
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for pair in reversed(self.vars):
            if pair[0] == name:
                pair[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    # statements
    def walk(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            self.node = node
            k = node.kind
            if k == "text":
                self.out.append(node.text)
            elif k == "action":
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:   # a declaration prints nothing
                    self.print_value(node, value)
            elif k in ("if", "with"):
                mark = len(self.vars)
                value = self.pipeline(dot, node.pipe)
                if _truth(value):
                    self.walk(value if k == "with" else dot, node.body)
                elif node.orelse is not None:
                    self.walk(dot, node.orelse)
                self.pop(mark)
            elif k == "range":
                self.range(dot, node)
            elif k == "break":
                raise _Break
            elif k == "continue":
                raise _Continue

    def print_value(self, node: _Node, value: Any) -> None:
        if callable(value) and not isinstance(value, type) and _go_type(value) == "func":
            self.node = node
            self.errorf(f"can't print {node} of type func")
        self.out.append(_fmt(value, "v"))

    def range(self, dot: Any, node: _Node) -> None:
        self.node = node
        mark0 = len(self.vars)
        value = self.pipeline(dot, node.pipe)
        decl = node.pipe.decl
        if value is None or value is MISSING:
            items: Any = ()
        elif isinstance(value, Mapping):
            items = ((k, value[k]) for k in _sorted_keys(value))
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        elif isinstance(value, int) and not isinstance(value, bool):   # Go 1.22: range over n
            if len(decl) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            items = ((i, i) for i in range(value))
        elif isinstance(value, (str, bytes, bool, float, complex)) \
                or not hasattr(value, "__iter__"):
            self.errorf(f"range can't iterate over {_fmt(value, 'v')}")
        else:
            items = enumerate(value)
        mark = len(self.vars)
        ran = False
        for index, elem in items:
            ran = True
            # One variable gets the element; two get the index and the element.
            values = [index, elem][-len(decl):] if decl else []
            for name, v, slot in zip(decl, values, range(mark - len(decl), mark)):
                if node.pipe.assign:
                    self.set_var(name, v)
                else:
                    self.vars[slot][1] = v   # the slots the pipeline pushed
            try:
                self.walk(elem, node.body)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                self.pop(mark)
        if not ran and node.orelse is not None:
            self.walk(dot, node.orelse)
        self.pop(mark0)

    # expressions
    def pipeline(self, dot: Any, pipe: _Node) -> Any:
        self.node = pipe
        value = _NOFINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)   # each result is the next command's last arg
        for name in pipe.decl:
            if pipe.assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def not_a_function(self, args: list[_Node] | None, final: Any) -> None:
        if (args and len(args) > 1) or final is not _NOFINAL:
            self.errorf(f"can't give argument to non-function {args[0] if args else ''}")

    def command(self, dot: Any, cmd: _Node, final: Any) -> Any:
        first = cmd.args[0]
        k = first.kind
        if k == "field":
            self.node = first
            return self.field_chain(dot, dot, first, first.idents, cmd.args, final)
        if k == "chain":
            self.node = first
            receiver = self.arg(dot, first.node)
            return self.field_chain(dot, receiver, first, first.fields, cmd.args, final)
        if k == "ident":
            return self.function(dot, first, cmd, cmd.args, final)
        if k == "var":
            return self.variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if k == "pipe":
            return self.pipeline(dot, first)
        if k == "nil":
            self.errorf("nil is not a command")
        return dot if k == "dot" else first.value

    def variable(self, dot: Any, node: _Node, args: list[_Node] | None, final: Any) -> Any:
        self.node = node
        value = self.var(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.field_chain(dot, value, node, node.idents[1:], args, final)

    def field_chain(self, dot: Any, receiver: Any, node: _Node, idents: list[str],
                    args: list[_Node] | None, final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.field(dot, name, node, None, _NOFINAL, receiver)
        return self.field(dot, idents[-1], node, args, final, receiver)

    def field(self, dot: Any, name: str, node: _Node, args: list[_Node] | None, final: Any,
              receiver: Any) -> Any:
        if receiver is MISSING:   # a missing key's fields are missing too
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = bool(args and len(args) > 1) or final is not _NOFINAL
        if isinstance(receiver, Mapping):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return receiver[name] if name in receiver else MISSING
        if not isinstance(receiver, _NOT_STRUCTS) and not name.startswith("_"):
            attr = getattr(receiver, name, _ABSENT)
            if attr is not _ABSENT and callable(attr) and not isinstance(attr, type):
                argv = [self.arg(dot, a) for a in (args or [])[1:]]
                if final is not _NOFINAL:
                    argv.append(final)
                return self.invoke(node, name, attr, [None if a is MISSING else a for a in argv])
            if attr is not _ABSENT:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return attr
        self.errorf(f"can't evaluate field {name} in type {_go_type(receiver)}")

    def invoke(self, node: _Node, name: str, fn: Callable[..., Any], argv: list[Any]) -> Any:
        try:
            return fn(*argv)
        except (TemplateError, _Break, _Continue):
            raise
        except Exception as e:   # a function's error, or Go's recovered panic
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def function(self, dot: Any, ident: _Node, node: _Node, args: list[_Node] | None,
                 final: Any) -> Any:
        self.node = ident
        name = ident.name
        fn, fixed, variadic = self.funcs[name]
        argnodes = (args or [])[1:]
        n_in = len(argnodes) + (final is not _NOFINAL)
        if variadic is not None and n_in < len(fixed):
            self.errorf(f"wrong number of args for {name}: want at least {len(fixed)} "
                        f"got {len(argnodes)}")
        if variadic is None and n_in != len(fixed):
            self.errorf(f"wrong number of args for {name}: want {len(fixed)} got {n_in}")
        if name in ("and", "or"):   # they stop at the first argument that decides
            value = None
            for a in argnodes:
                value = self.arg(dot, a)
                if _truth(value) == (name == "or"):
                    return value
            return final if final is not _NOFINAL else value
        kinds = list(fixed) + [variadic] * (n_in - len(fixed))
        argv = [self.check(self.arg(dot, a), kinds[i], a) for i, a in enumerate(argnodes)]
        if final is not _NOFINAL:
            argv.append(self.check(final, kinds[-1], node))
        return self.invoke(node, name, fn, argv)

    def check(self, value: Any, kind: str | None, node: _Node) -> Any:
        """Go's validateType: how an argument meets the parameter's type."""
        self.node = node
        if kind == "any":
            return None if value is MISSING else value
        if kind == "list":
            if value is None or value is MISSING:
                return []
            if isinstance(value, (list, tuple)):
                return value
            self.errorf(f"wrong type for value; expected []string; got {_go_type(value)}")
        gotype = {"str": (str, "string"), "int": (int, "int")}.get(kind or "")
        if gotype is None:
            return value
        if kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, gotype[0]) and not isinstance(value, bool):
            return value
        if node.kind == "nil":   # Go checks a literal against the parameter while parsing it
            self.errorf(f"cannot assign nil to {gotype[1]}")
        if node.kind in ("bool", "number", "string"):
            self.errorf(f"expected {'integer' if kind == 'int' else 'string'}; found {node}")
        if value is None or value is MISSING:
            self.errorf(f"invalid value; expected {gotype[1]}")
        self.errorf(f"wrong type for value; expected {gotype[1]}; got {_go_type(value)}")

    def arg(self, dot: Any, node: _Node) -> Any:
        """An argument's value: a field, variable, (pipeline), function or literal."""
        self.node = node
        k = node.kind
        if k == "dot":
            return dot
        if k == "nil":
            return None
        if k == "field":
            return self.field_chain(dot, dot, node, node.idents, [node], _NOFINAL)
        if k == "var":
            return self.variable(dot, node, None, _NOFINAL)
        if k == "pipe":
            return self.pipeline(dot, node)
        if k == "ident":
            return self.function(dot, node, node, None, _NOFINAL)
        if k == "chain":
            receiver = self.arg(dot, node.node)
            return self.field_chain(dot, receiver, node, node.fields, None, _NOFINAL)
        return node.value


# --- API --------------------------------------------------------------------------------

class Template:
    """A parsed template; execute() runs it over one value."""

    def __init__(self, text: str, root: list[_Node]) -> None:
        self.text = text
        self._root = root

    def execute(self, data: Any) -> str:
        """The template's output for `data`; raises TemplateError like Go's Execute."""
        out: list[str] = []
        self._run(data, FUNCS, out)
        return "".join(out)

    def _run(self, data: Any, funcs: Mapping[str, _FuncSpec], out: list[str]) -> None:
        """Write into `out`, which keeps what was written before an error, as Go's writer does."""
        state = _State(self.text, funcs, out)
        dot = MISSING if data is None else data   # Execute(w, nil): $ and . are invalid
        state.vars.append(["$", dot])
        state.walk(dot, self._root)


def parse(text: str) -> Template:
    """Compile a template with docker's functions; TemplateError if it does not parse."""
    return Template(text, _Parser(text, FUNCS).parse())


def render(text: str, data: Any) -> str:
    return parse(text).execute(data)


# --- docker's table formats (cli/command/formatter) -------------------------------------

def is_table(fmt: str) -> bool:
    """formatter.Format.IsTable: the format asks for a table with a header row."""
    return fmt.startswith("table")


def table_body(fmt: str) -> str:
    """The row template of a table format, as formatter.Context.preFormat makes it.

    "table" is cut, then the spaces around the rest, and the two-character
    sequences backslash-t and backslash-n become a tab and a newline: a shell
    user types `--format 'table {{.ID}}\\t{{.Size}}'`.
    """
    body = fmt[len("table"):] if is_table(fmt) else fmt
    return body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def render_table(fmt_body: str, rows: list, header: Mapping[str, str]) -> str:
    """formatter.Context.Write for a table: the rows, under a header, through the tabwriter.

    Each row is the template's output plus a newline; the header is the same
    template run over `header` (field name -> column title) with docker's
    HeaderFunctions, so `{{upper .Name}}` titles "NAME", not "NAME" upper-cased
    twice. As in docker, a row's error fails the whole table while an error in
    the header only cuts the header short.
    """
    tmpl = parse(fmt_body)
    body = "".join(tmpl.execute(row) + "\n" for row in rows)
    head: list[str] = []
    try:
        tmpl._run(dict(header), HEADER_FUNCS, head)
    except TemplateError:
        pass
    return tabwrite("".join(head) + "\n" + body)

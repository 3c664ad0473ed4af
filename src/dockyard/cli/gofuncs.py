"""The functions a docker `--format` template can call: Go's builtins and docker's.

Part of dockyard.cli.gotemplate (the API is there). FUNCS is what docker's
templates.Parse installs (text/template's builtins plus json, split, join,
title, lower, upper, pad, truncate); HEADER_FUNCS is docker's
HeaderFunctions, used for a table's header row.
"""

from __future__ import annotations

from _collections_abc import Mapping

from dockyard.cli.gofmt import MISSING, GoZero, fmt_value, go_type, map_elem_type, sprint, \
    sprintf, sprintln, truth, zero_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    # (function, kinds of the fixed parameters, kind of the variadic ones or None)
    FuncSpec = tuple[Callable[..., Any], tuple[str, ...], "str | None"]


class CallError(Exception):
    """An error a template function returns; Go reports it as `error calling NAME: ...`."""


def _index_arg(ix: Any, cap: int) -> int:
    """text/template's indexArg."""
    if ix is None or ix is MISSING:
        raise CallError("cannot index slice/array with nil")
    if not isinstance(ix, int) or isinstance(ix, bool):
        raise CallError(f"cannot index slice/array with type {go_type(ix)}")
    if ix < 0 or ix > cap:
        raise CallError(f"index out of range: {ix}")
    return ix


def _index(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise CallError("index of untyped nil")
    for ix in indexes:
        if item is None or item is MISSING or (isinstance(item, GoZero) and item.kind == "ptr"):
            raise CallError("index of nil pointer")
        if isinstance(item, Mapping):
            if ix is None or ix is MISSING:
                raise CallError("value is nil; should be of type string")
            try:
                item = item[ix] if ix in item else MISSING
            except TypeError:
                raise CallError(f"value has type {go_type(ix)}; should be string") from None
        elif isinstance(item, (str, list, tuple, bytes)):
            seq = item.encode() if isinstance(item, str) else item   # Go indexes strings by byte
            x = _index_arg(ix, len(seq))
            if x == len(seq):
                raise CallError(f"index out of range: {x}")
            item = seq[x]
        elif isinstance(item, GoZero) and item.kind == "slice":
            raise CallError(f"index out of range: {_index_arg(ix, 0)}")
        elif isinstance(item, GoZero) and item.kind == "map":   # a nil map has every key's zero
            item = zero_value(map_elem_type(item.type))
        else:
            raise CallError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (list, tuple)):
        seq = item
    elif isinstance(item, GoZero) and item.kind == "slice":
        seq = ()
    else:
        raise CallError(f"can't slice item of type {go_type(item)}")
    idx = [0, len(seq), len(seq)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, len(seq))
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, GoZero):
        return item   # nil[0:0] is nil
    part = seq[idx[0]:idx[1]]
    return part.decode(errors="replace") if isinstance(item, str) else part


def _length(v: Any) -> int:
    if v is None or v is MISSING:
        raise CallError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode())   # Go's len counts bytes
    if isinstance(v, (list, tuple, bytes, Mapping, set, frozenset)):
        return len(v)
    if isinstance(v, GoZero) and v.kind in ("slice", "map"):
        return 0
    if isinstance(v, GoZero) and v.kind == "ptr":
        raise CallError("len of nil pointer")
    raise CallError(f"len of type {go_type(v)}")


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
        raise CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if ka != "invalid" and kb != "invalid":
                raise CallError("incompatible types for comparison")
            # nil against a typed nil is true: Go's isNil(a) == isNil(b)
            other = b if ka == "invalid" else a
            truth_ = isinstance(other, GoZero) and other.is_nil
        elif ka == "invalid":
            truth_ = True
        else:
            for x in (a, b):
                if isinstance(x, (list, tuple, Mapping, set)):
                    raise CallError(f"non-comparable type {fmt_value(x, 'v')}: {go_type(x)}")
            truth_ = a == b
        if truth_:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "other") or kb in ("invalid", "other"):
        raise CallError("invalid type for comparison")
    if ka != kb:
        raise CallError("incompatible types for comparison")
    if ka in ("bool", "complex"):
        raise CallError("invalid type for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _eval_args(args: tuple) -> str:
    """What html, js and urlquery escape: a lone string, else fmt.Sprint of the arguments."""
    return args[0] if len(args) == 1 and isinstance(args[0], str) else sprint(args)


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
        raise CallError("call of nil")
    if not callable(fn):
        raise CallError(f"non-function of type {go_type(fn)}")
    return fn(*(None if a is MISSING else a for a in args))


# --- docker's functions (cli/templates/templates.go) ------------------------------------

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
    return sep.join(e if isinstance(e, str) else fmt_value(e, "v") for e in elems)


def _pad_with_space(s: str, prefix: int, suffix: int) -> str:
    if prefix < 0 or suffix < 0:
        raise CallError("strings: negative Repeat count")
    return s and " " * prefix + s + " " * suffix


def _truncate(s: str, length: int) -> str:
    b = s.encode()   # docker cuts bytes: source[:length]
    if len(b) < length:
        return s
    if length < 0:
        raise CallError(f"slice bounds out of range [:{length}]")
    return b[:length].decode(errors="ignore")


def _json(v: Any) -> str:
    from dockyard.cli.gojson import MarshalError, json_marshal
    try:
        return json_marshal(v)
    except MarshalError:
        return ""   # docker ignores the encoder's error and prints what it wrote: nothing


# Kinds say how an argument is checked the way Go converts it to the parameter's type:
# "val" takes anything (a reflect.Value), "any" turns a missing value into nil
# (interface{}), "str"/"int" must be a string/int, "list" is a []string (nil is empty).
_BUILTINS: dict[str, FuncSpec] = {
    "and": (lambda *a: a[-1], ("val",), "val"),   # evaluated lazily: see goexec
    "or": (lambda *a: a[-1], ("val",), "val"),
    "not": (lambda v: not truth(v), ("val",), None),
    "len": (_length, ("val",), None),
    "index": (_index, ("val",), "val"),
    "slice": (_slice, ("val",), "val"),
    "print": (lambda *a: sprint(a), (), "any"),
    "printf": (lambda f, *a: sprintf(f, a), ("str",), "any"),
    "println": (lambda *a: sprintln(a), (), "any"),
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
_DOCKER: dict[str, FuncSpec] = {
    "json": (_json, ("any",), None),
    "split": (_split, ("str", "str"), None),
    "join": (_join, ("list", "str"), None),
    "title": (_title, ("str",), None),
    "lower": (lambda s: _rune_map(s, str.lower), ("str",), None),
    "upper": (lambda s: _rune_map(s, str.upper), ("str",), None),
    "pad": (_pad_with_space, ("str", "int", "int"), None),
    "truncate": (_truncate, ("str", "int"), None),
}
FUNCS: dict[str, FuncSpec] = {**_BUILTINS, **_DOCKER}
# templates.HeaderFunctions: a table's header row runs the row template over
# the column titles, and these leave a title as it is rather than reformat it.
HEADER_FUNCS: dict[str, FuncSpec] = {
    **FUNCS,
    "json": (lambda v: v, ("str",), None),
    "split": (lambda v, _: v, ("str", "str"), None),
    "join": (lambda v, _: v, ("str", "str"), None),
    "title": (lambda v: v, ("str",), None),
    "lower": (lambda v: v, ("str",), None),
    "upper": (lambda v: v, ("str",), None),
    "truncate": (lambda v, _: v, ("str", "int"), None),
}

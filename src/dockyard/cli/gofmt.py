"""Go values as Python data, and Go's fmt over them: %v, Sprint, Sprintf.

Part of dockyard.cli.gotemplate (the API is there). Go's reflection becomes:
None is a nil pointer (`<nil>`), MISSING is the invalid value a missing map
key gives (`<no value>`), a Mapping is a map[string]interface{}, a list or
tuple a []interface{}, an object its struct, and GoZero a typed nil or empty
struct the plain Python values cannot stand for.
"""

from __future__ import annotations

# collections.abc re-exports these from _collections_abc, which every Python has
# loaded at start-up; importing collections.abc itself would load collections.
from _collections_abc import Mapping

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Any


class _Missing:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


class GoZero:
    """The zero value of a Go type, where None, [] or {} would print wrong.

    docker decodes `inspect` JSON into typed structs, so a null slice prints
    `[]` and a null map `map[]`, where None prints `<nil>`; and an empty
    struct prints `{}`, where the {} that JSON decodes to prints `map[]`:

        GoZero("[]string")            nil slice: []       json null  false
        GoZero("map[string]string")   nil map: map[]      json null  false
        GoZero("*types.Health")       nil pointer: <nil>  json null  false
        GoZero("struct {}")           empty struct: {}    json {}    true

    The kind comes from the type's spelling; a named type says its kind:
    GoZero("strslice.StrSlice", "slice"), GoZero("nat.PortSet", "map").
    The type is what %T, `printf "%T"` and error messages show. A nil slice
    or map has length 0 and ranges as empty; `.Key` of a nil map is a missing
    key and `index` gives the element type's zero value; `.Field` of a nil
    pointer is Go's "nil pointer evaluating *types.Health.Field".
    """
    __slots__ = ("type", "kind")
    KINDS = ("slice", "map", "ptr", "struct")

    def __init__(self, go_type: str, kind: str | None = None) -> None:
        if kind is None:
            kind = ("slice" if go_type.startswith("[]") else "map" if go_type.startswith("map[")
                    else "ptr" if go_type.startswith("*")
                    else "struct" if go_type.startswith("struct {") else "")
        if kind not in self.KINDS:
            raise ValueError(f"GoZero({go_type!r}): say which of {', '.join(self.KINDS)} it is")
        self.type, self.kind = go_type, kind

    @property
    def is_nil(self) -> bool:
        return self.kind != "struct"

    def __repr__(self) -> str:
        return f"GoZero({self.type!r}, {self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoZero) and (other.type, other.kind) == (self.type, self.kind)

    def __hash__(self) -> int:
        return hash((self.type, self.kind))


def map_elem_type(go_type: str) -> str | None:
    """V of "map[K]V", or None for a named map type."""
    if not go_type.startswith("map["):
        return None
    depth = 0
    for i, c in enumerate(go_type):
        depth += (c == "[") - (c == "]")
        if c == "]" and depth == 0:
            return go_type[i + 1:]
    return None


_ZEROS: dict[str, Any] = {"string": "", "bool": False, "float32": 0.0, "float64": 0.0,
                          **{t: 0 for t in ("int", "int8", "int16", "int32", "int64", "uint",
                                            "uint8", "uint16", "uint32", "uint64", "uintptr")}}


def zero_value(go_type: str | None) -> Any:
    """reflect.Zero(go_type) as a value here; MISSING for interface{} and unknown types."""
    if go_type is None:
        return MISSING
    if go_type in _ZEROS:
        return _ZEROS[go_type]
    if go_type.startswith(("[]", "map[", "*", "struct {")):
        return GoZero(go_type)
    return MISSING


def go_type(v: Any) -> str:
    """The Go type a value stands for, for error messages and %T."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, GoZero):
        return v.type
    for py, go in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string"),
                   (complex, "complex128"), (bytes, "[]uint8"),
                   (Mapping, "map[string]interface {}"), ((list, tuple), "[]interface {}")):
        if isinstance(v, py):
            return go
    return "func" if callable(v) else type(v).__name__


def truth(v: Any) -> bool:
    """Go's isTrue: the zero value of every type is false; structs are true."""
    if v is None or v is MISSING:
        return False
    if isinstance(v, (bool, int, float, complex)):
        return v != 0
    if isinstance(v, (str, bytes, list, tuple, set, frozenset, Mapping)):
        return len(v) > 0
    if isinstance(v, GoZero):
        return not v.is_nil
    return True


def sorted_keys(m: Mapping) -> list:
    """Map keys in fmtsort's order, which fmt, range and printing all use."""
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=lambda k: (type(k).__name__, str(k)))


def public_fields(v: Any) -> dict[str, Any]:
    """A plain object's fields, as a Go struct's exported ones."""
    return {k: x for k, x in vars(v).items() if not k.startswith("_")}


def go_quote(s: str, ascii_only: bool = False) -> str:
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


def go_rune(ch: str) -> str:
    """fmt's %#U: U+0041 'A'."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


# --- floats ----------------------------------------------------------------------------

def shortest_digits(a: float) -> tuple[str, int]:
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


def exp_form(ds: str, point: int, min_exp_digits: int = 2) -> str:
    x = point - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{mant}e{'-' if x < 0 else '+'}{abs(x):0{min_exp_digits}d}"


def fixed_form(ds: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + ds
    if point >= len(ds):
        return ds + "0" * (point - len(ds))
    return ds[:point] + "." + ds[point:]


def _shortest_g(a: float) -> str:
    """strconv.FormatFloat(a, 'g', -1, 64) for a >= 0: %e past an exponent of 6."""
    if a == 0:
        return "0"
    ds, point = shortest_digits(a)
    return exp_form(ds, point) if not -4 <= point - 1 < 6 else fixed_form(ds, point)


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
        body = "\\'" if c == "'" else '"' if c == '"' else go_quote(c)[1:-1]
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
    import math
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
        return _pad(go_quote(v, ascii_only=sp.plus), sp)
    if verb in "xX":
        hexes = [format(b, "02" + verb) for b in v.encode()]
        prefix = "0" + verb if sp.sharp else ""
        if sp.space:   # "% x": bytes apart, each with its own prefix
            return _pad(" ".join(prefix + h for h in hexes), sp)
        return _pad(prefix + "".join(hexes) if hexes else "", sp)
    return None


def _fmt_zero(v: GoZero, verb: str, sp: _Spec) -> str | None:
    """A typed nil or empty struct: Go applies the verb to no elements at all."""
    if v.kind != "ptr":
        return {"slice": "[]", "map": "map[]", "struct": "{}"}[v.kind]
    if verb == "v":
        return _pad("<nil>", sp)
    return _fmt_int(0, verb, sp) if verb in "bodxX" else None   # fmt prints the address


def fmt_value(v: Any, verb: str = "v", sp: _Spec = _PLAIN) -> str:
    """One value under one Printf verb; Go applies the verb to each element of a container."""
    if verb == "T":
        return _pad(go_type(v), sp)
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
        s = _fmt_str(go_quote(v) if verb == "v" and sp.sharp else v, verb, sp)
    elif isinstance(v, (list, tuple, bytes)):
        s = "[" + " ".join(fmt_value(e, verb, sp) for e in v) + "]"
    elif isinstance(v, Mapping):
        s = "map[" + " ".join(f"{fmt_value(k, verb, sp)}:{fmt_value(v[k], verb, sp)}"
                              for k in sorted_keys(v)) + "]"
    elif isinstance(v, GoZero):
        s = _fmt_zero(v, verb, sp)
    elif verb in "vs":
        # A Stringer prints its String(): an object with its own __str__. Other
        # objects print as Go prints a struct, their fields in braces.
        if type(v).__str__ is object.__str__ and hasattr(v, "__dict__"):
            s = _pad("{" + " ".join(fmt_value(x, verb) for x in public_fields(v).values()) + "}",
                     sp)
        else:
            s = _pad(str(v), sp)
    if s is None:
        return f"%!{verb}({go_type(v)}={fmt_value(v, 'v')})"
    return s


def sprint(args: tuple) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(fmt_value(a, "v"))
    return "".join(out)


def sprintln(args: tuple) -> str:
    return " ".join(fmt_value(a, "v") for a in args) + "\n"


_DIGITS = "0123456789"


def _directive(fmt: str, i: int) -> tuple[str, str | None, str | None, str | None, int]:
    """The directive at fmt[i] == "%": flags, width, precision, verb and where it ends.

    The syntax is %[-+# 0]*(\\*|\\d+)?(\\.(\\*|\\d*))?verb; "*" takes the value
    from the arguments, and a verb may be missing at the end of the format.
    """
    n = len(fmt)

    def digits_or_star(k: int) -> tuple[str | None, int]:
        if k < n and fmt[k] == "*":
            return "*", k + 1
        start = k
        while k < n and fmt[k] in _DIGITS:
            k += 1
        return (fmt[start:k] if k > start else None), k

    k = i + 1
    while k < n and fmt[k] in "-+# 0":
        k += 1
    flags = fmt[i + 1:k]
    width, k = digits_or_star(k)
    prec = None
    if k < n and fmt[k] == ".":
        prec, k = digits_or_star(k + 1)
        prec = prec or ""   # "%.f" is precision 0
    if k >= n:
        return flags, width, prec, None, k
    return flags, width, prec, fmt[k], k + 1


def sprintf(fmt: str, args: tuple) -> str:
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
        flags, width, prec, verb, pos = _directive(fmt, j)
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
        else:
            p = star() if prec == "*" else int(prec or 0)
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(fmt_value(args[argi], verb, _Spec(flags, w, p)))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={fmt_value(a, 'v')}"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)

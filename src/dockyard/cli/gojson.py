"""encoding/json's Marshal, as docker's `json` template function calls it.

Part of dockyard.cli.gotemplate (the API is there). Imported only by
templates that call `json`, and itself imports nothing until a value needs
it (base64 for bytes; the json module to check a MarshalJSON's output).
"""

from __future__ import annotations

from _collections_abc import Mapping

from dockyard.cli.gofmt import MISSING, GoZero, exp_form, fixed_form, public_fields, \
    shortest_digits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class MarshalError(ValueError):
    """json.Marshal failed: a NaN or infinite float, or a marshaler's error.

    A MarshalJSON method raises it to return an error, as a Go Marshaler
    does; docker's `json` then prints nothing. Other exceptions are bugs and
    fail the template ("error calling json: ...").
    """


_PLAIN = (str, int, float, bool, list, tuple, dict)   # no MarshalJSON method possible


def json_marshal(v: Any, escape_html: bool = False) -> str:
    """Compact JSON as Go's encoder writes it; Mappings keep their order.

    docker's `json` uses an Encoder with SetEscapeHTML(false), so `<`, `>`
    and `&` stay as they are by default; escape_html=True gives json.Marshal.
    Mapping order is kept because docker marshals structs, whose fields come
    out in declaration order; the callers hand us dicts in that order.
    None and MISSING are null; a GoZero is null, or {} for an empty struct.

    Marshal hook: an object with a MarshalJSON() method is a Go json.Marshaler,
    at any depth, whatever else it is (a Mapping too). Its str or bytes output
    is checked and compacted, and HTML-escaped only under escape_html, as Go's
    encoder does; invalid JSON, or a MarshalError it raises, makes the whole
    marshal fail with MarshalError. docker's formatter contexts are such
    objects (json.Marshal of a map: sorted keys, HTML escaped), which is why
    `{{json .}}` of a listing row escapes `<none>` while `{{json .Tag}}` does not.

    Other objects marshal as their public attributes, like a struct's
    exported fields; raises MarshalError for NaN and infinities, as Go does.
    """
    if v is None or v is MISSING:
        return "null"
    if type(v) not in _PLAIN:
        marshal = getattr(v, "MarshalJSON", None)
        if callable(marshal):
            return _marshaler_output(marshal(), escape_html)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return json_string(v, escape_html)
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{json_string(str(k), escape_html)}:{json_marshal(x, escape_html)}"
                              for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(json_marshal(x, escape_html) for x in v) + "]"
    if isinstance(v, bytes):
        import base64
        return '"' + base64.b64encode(v).decode() + '"'
    if isinstance(v, GoZero):
        return "{}" if v.kind == "struct" else "null"
    if not hasattr(v, "__dict__"):
        return json_string(str(v), escape_html)
    return json_marshal(public_fields(v), escape_html)


# --- strings ----------------------------------------------------------------------------

_ESCAPES: dict[int, str] | None = None
_HTML_ESCAPES: dict[int, str] | None = None


def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """str.translate tables: Go's escapes, and those plus json.Marshal's HTML ones."""
    global _ESCAPES, _HTML_ESCAPES
    if _ESCAPES is None or _HTML_ESCAPES is None:
        table = {c: f"\\u{c:04x}" for c in range(0x20)}
        table.update({ord(k): v for k, v in (("\b", "\\b"), ("\f", "\\f"), ("\n", "\\n"),
                                             ("\r", "\\r"), ("\t", "\\t"), ('"', '\\"'),
                                             ("\\", "\\\\"))})
        table[0x2028], table[0x2029] = "\\u2028", "\\u2029"   # as Go always does
        # A lone surrogate (from JSON text such as "\ud800") is U+FFFD, as in Go.
        table.update(dict.fromkeys(range(0xD800, 0xE000), "\ufffd"))
        _ESCAPES = table
        _HTML_ESCAPES = {**table, ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
    return _ESCAPES, _HTML_ESCAPES


def json_string(s: str, escape_html: bool = False) -> str:
    plain, html = _tables()
    return '"' + s.translate(html if escape_html else plain) + '"'


def _json_float(f: float) -> str:
    """encoding/json's float64: shortest digits, exponent only below 1e-6 or from 1e21."""
    import math
    if math.isnan(f) or math.isinf(f):
        raise MarshalError(f"json: unsupported value: {_go_float_name(f)}")
    a = abs(f)
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if a == 0:
        return sign + "0"
    ds, point = shortest_digits(a)
    if a < 1e-6 or a >= 1e21:
        return sign + exp_form(ds, point, min_exp_digits=1)
    return sign + fixed_form(ds, point)


def _go_float_name(f: float) -> str:
    return "NaN" if f != f else "+Inf" if f > 0 else "-Inf"


# --- Marshaler output -------------------------------------------------------------------

def _reject_constant(name: str) -> None:
    raise ValueError(f"invalid character '{name[0]}'")   # NaN and Infinity are not JSON


def _marshaler_output(out: Any, escape_html: bool) -> str:
    """What encoding/json makes of a MarshalJSON result: checked, then compacted."""
    text = out.decode(errors="replace") if isinstance(out, (bytes, bytearray)) else out
    if not isinstance(text, str):
        raise TypeError(f"MarshalJSON returned {type(out).__name__}, not str or bytes")
    import json
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise MarshalError(f"json: error calling MarshalJSON: {e}") from None
    return compact(text, escape_html)


def compact(text: str, escape_html: bool = False) -> str:
    """json.Compact: the whitespace between tokens dropped, each token kept as written.

    With escape_html, <, >, & and U+2028/U+2029 are escaped as Go's encoder
    does for a Marshaler under SetEscapeHTML(true); `text` must be valid JSON.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if c not in " \t\r\n":
            out.append(c)
        i += 1
    s = "".join(out)
    if escape_html:
        for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                        ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            s = s.replace(ch, esc)
    return s

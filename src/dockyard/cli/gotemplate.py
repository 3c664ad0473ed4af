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
- GoZero(go_type) is a typed nil or an empty struct, for what docker's typed
  structs print and plain data cannot: GoZero("[]string") prints `[]`,
  GoZero("map[string]string") `map[]`, GoZero("struct {}") `{}` (see gofmt);
- values print with fmt's %v: `[a b]`, `map[k:v]` (keys sorted), `true`,
  floats in %g's shortest form (3.0 -> `3`, 1e6 -> `1e+06`); an object with
  its own __str__ is a Stringer, other objects print as structs: `{v1 v2}`;
- an object with a MarshalJSON() method is a json.Marshaler: `json` prints
  its output, compacted (see gojson.json_marshal).

Options, as Go's Template.Option: parse(text, missingkey="error") is
Option("missingkey=error"): a missing map key (or a field of the invalid
value) stops execution with Go's `map has no entry for key "Nope"`.
"default" and "invalid" are Go's default; "zero" is not supported (a Python
map has no element type to take the zero value of).

Not supported: {{define}}, {{template}}, {{block}}, complex numbers, and
custom delimiters; docker's formats do not use them.

The implementation follows Go's own seams, each module loaded when needed:
goparse (lexer and parser), goexec (execution), gofuncs (the functions),
gofmt (Go values and fmt), gojson (encoding/json: only templates that call
`json` load it) and tabwriter (only tables load it).
"""

from __future__ import annotations

from dockyard.cli.goexec import MISSINGKEY, execute
from dockyard.cli.gofmt import MISSING, GoZero
from dockyard.cli.gofuncs import FUNCS, HEADER_FUNCS
from dockyard.cli.goparse import Parser, TemplateError

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; only type checkers need it
if TYPE_CHECKING:
    from typing import Any, Mapping

    from dockyard.cli.gofuncs import FuncSpec
    from dockyard.cli.gojson import json_marshal
    from dockyard.cli.goparse import Node
    from dockyard.cli.tabwriter import tabwrite

__all__ = ["TemplateError", "Template", "parse", "render", "is_table", "table_body",
           "render_table", "tabwrite", "json_marshal", "GoZero", "MISSING"]


class Template:
    """A parsed template; execute() runs it over one value."""

    def __init__(self, text: str, root: list[Node], missingkey: str = "default") -> None:
        self.text = text
        self.missingkey = missingkey
        self._root = root

    def execute(self, data: Any) -> str:
        """The template's output for `data`; raises TemplateError like Go's Execute."""
        out: list[str] = []
        self._run(data, FUNCS, out)
        return "".join(out)

    def write(self, data: Any, out: list[str]) -> None:
        """Execute into `out`, as Go's Execute writes to a stream: what was
        written before an error stays there."""
        self._run(data, FUNCS, out)

    def _run(self, data: Any, funcs: Mapping[str, FuncSpec], out: list[str]) -> None:
        """Write into `out`, which keeps what was written before an error, as Go's writer does."""
        execute(self.text, self._root, data, funcs, out, self.missingkey)


def parse(text: str, missingkey: str = "default") -> Template:
    """Compile a template with docker's functions; TemplateError if it does not parse.

    missingkey is Go's Option("missingkey=..."): "default" (or "invalid"), or
    "error"; any other value is a ValueError, as Go's Option panics.
    """
    if missingkey not in MISSINGKEY:
        raise ValueError(f"unrecognized option: missingkey={missingkey}"
                         + (" (not supported)" if missingkey == "zero" else ""))
    return Template(text, Parser(text, FUNCS).parse(), missingkey)


def render(text: str, data: Any, missingkey: str = "default") -> str:
    return parse(text, missingkey).execute(data)


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


def render_table(fmt_body: str, rows: list, header: Any) -> str:
    """formatter.Context.Write for a table: the rows, under a header, through the tabwriter.

    Each row is the template's output plus a newline; the header is the same
    template run over `header` (field name -> column title) with docker's
    HeaderFunctions, so `{{upper .Name}}` titles "NAME", not "NAME" upper-cased
    twice; `header` may also be an object with methods (formatting.SubHeader).
    As in docker, a row's error fails the whole table while an error in the
    header only cuts the header short.
    """
    from dockyard.cli.tabwriter import tabwrite
    tmpl = parse(fmt_body)
    body = "".join(tmpl.execute(row) + "\n" for row in rows)
    head: list[str] = []
    try:
        tmpl._run(header, HEADER_FUNCS, head)
    except TemplateError:
        pass
    return tabwrite("".join(head) + "\n" + body)


def __getattr__(name: str) -> Any:
    """json_marshal and tabwrite, imported on first use: most templates need neither."""
    if name == "json_marshal":
        from dockyard.cli.gojson import json_marshal
        return json_marshal
    if name == "tabwrite":
        from dockyard.cli.tabwriter import tabwrite
        return tabwrite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

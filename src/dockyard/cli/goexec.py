"""Go's text/template execution: a parsed tree run over Python data.

Part of dockyard.cli.gotemplate (the API and the rules that stand in for
Go's reflection are there). Follows text/template/exec.go, so that a
template fails where Go's fails and with its message and position:
`template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`.
"""

from __future__ import annotations

from _collections_abc import Mapping

from dockyard.cli.gofmt import MISSING, GoZero, fmt_value, go_quote, go_type, sorted_keys, truth
from dockyard.cli.goparse import TemplateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn

    from dockyard.cli.gofuncs import FuncSpec
    from dockyard.cli.goparse import Node

_NOFINAL = object()   # no value piped in from the previous command (Go's missingVal)
_ABSENT = object()
MISSINGKEY = ("default", "invalid", "error")   # Go's missingkey= values we support


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# Receivers whose attributes are Python's, not data: `.upper` on a string is
# "can't evaluate field", as in Go, rather than str.upper.
_NOT_STRUCTS = (str, bytes, bytearray, int, float, complex, list, tuple, set, frozenset)


def execute(text: str, root: list[Node], data: Any, funcs: Mapping[str, FuncSpec],
            out: list[str], missingkey: str = "default") -> None:
    """Run a parsed template over data, writing into `out`.

    `out` keeps what was written before an error, as Go's writer does.
    """
    state = _State(text, funcs, out, missingkey == "error")
    dot = MISSING if data is None else data   # Execute(w, nil): $ and . are invalid
    state.vars.append(["$", dot])
    state.walk(dot, root)


class _State:
    def __init__(self, text: str, funcs: Mapping[str, FuncSpec], out: list[str],
                 missing_is_error: bool) -> None:
        self.text = text
        self.funcs = funcs
        self.out = out
        self.missing_is_error = missing_is_error
        self.vars: list[list[Any]] = []   # [name, value] pairs, innermost last
        self.node: Node | None = None     # where we are, for errors

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
    def walk(self, dot: Any, nodes: list[Node]) -> None:
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
                if truth(value):
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

    def print_value(self, node: Node, value: Any) -> None:
        if callable(value) and not isinstance(value, type) and go_type(value) == "func":
            self.node = node
            self.errorf(f"can't print {node} of type func")
        self.out.append(fmt_value(value, "v"))

    def range(self, dot: Any, node: Node) -> None:
        self.node = node
        mark0 = len(self.vars)
        value = self.pipeline(dot, node.pipe)
        decl = node.pipe.decl
        if value is None or value is MISSING \
                or (isinstance(value, GoZero) and value.kind in ("slice", "map")):
            items: Any = ()
        elif isinstance(value, Mapping):
            items = ((k, value[k]) for k in sorted_keys(value))
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        elif isinstance(value, int) and not isinstance(value, bool):   # Go 1.22: range over n
            if len(decl) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            items = ((i, i) for i in range(value))
        elif isinstance(value, (str, bytes, bool, float, complex)) \
                or not hasattr(value, "__iter__"):
            self.errorf(f"range can't iterate over {fmt_value(value, 'v')}")
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
    def pipeline(self, dot: Any, pipe: Node) -> Any:
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

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if (args and len(args) > 1) or final is not _NOFINAL:
            self.errorf(f"can't give argument to non-function {args[0] if args else ''}")

    def command(self, dot: Any, cmd: Node, final: Any) -> Any:
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

    def variable(self, dot: Any, node: Node, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        value = self.var(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.field_chain(dot, value, node, node.idents[1:], args, final)

    def field_chain(self, dot: Any, receiver: Any, node: Node, idents: list[str],
                    args: list[Node] | None, final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.field(dot, name, node, None, _NOFINAL, receiver)
        return self.field(dot, idents[-1], node, args, final, receiver)

    def field(self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any,
              receiver: Any) -> Any:
        if receiver is MISSING:   # a missing key's fields are missing too
            if self.missing_is_error:
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = bool(args and len(args) > 1) or final is not _NOFINAL
        if isinstance(receiver, Mapping) or (isinstance(receiver, GoZero)
                                             and receiver.kind == "map"):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if isinstance(receiver, Mapping) and name in receiver:
                return receiver[name]
            if self.missing_is_error:
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return MISSING
        if isinstance(receiver, GoZero):
            if receiver.kind == "ptr":
                self.errorf(f"nil pointer evaluating {receiver.type}.{name}")
        elif not isinstance(receiver, _NOT_STRUCTS) and not name.startswith("_"):
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
        self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def invoke(self, node: Node, name: str, fn: Callable[..., Any], argv: list[Any]) -> Any:
        try:
            return fn(*argv)
        except (TemplateError, _Break, _Continue):
            raise
        except Exception as e:   # a function's error, or Go's recovered panic
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def function(self, dot: Any, ident: Node, node: Node, args: list[Node] | None,
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
                if truth(value) == (name == "or"):
                    return value
            return final if final is not _NOFINAL else value
        kinds = list(fixed) + [variadic] * (n_in - len(fixed))
        argv = [self.check(self.arg(dot, a), kinds[i], a) for i, a in enumerate(argnodes)]
        if final is not _NOFINAL:
            argv.append(self.check(final, kinds[-1], node))
        return self.invoke(node, name, fn, argv)

    def check(self, value: Any, kind: str | None, node: Node) -> Any:
        """Go's validateType: how an argument meets the parameter's type."""
        self.node = node
        if kind == "any":
            return None if value is MISSING else value
        if kind == "list":
            if value is None or value is MISSING \
                    or (isinstance(value, GoZero) and value.kind == "slice"):
                return []
            if isinstance(value, (list, tuple)):
                return value
            self.errorf(f"wrong type for value; expected []string; got {go_type(value)}")
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
        self.errorf(f"wrong type for value; expected {gotype[1]}; got {go_type(value)}")

    def arg(self, dot: Any, node: Node) -> Any:
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


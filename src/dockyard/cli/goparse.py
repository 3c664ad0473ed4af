"""Go's text/template parser: template text to a tree of Nodes.

Part of dockyard.cli.gotemplate (the API is there). The lexer follows
text/template/parse/lex.go and the parser parse.go, so that a template that
does not parse fails with Go's message and line: `template: :1: unclosed action`.
Nodes keep the byte offset Go gives them, which execution errors turn into
`:line:col`: an operand followed by fields (.A.B, $x.A, (pipe).A) sits at its
first following field, as Go's parser places the chain.
"""

from __future__ import annotations

from dockyard.cli.gofmt import go_quote, go_rune

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Collection, NoReturn


class TemplateError(ValueError):
    """A template did not parse or did not run; the message is Go's."""


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
        return go_quote(self.val[:10]) + "..." if len(self.val) > 10 else go_quote(self.val)


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
                    err = f"bad character {go_rune(text[pos])}"
            elif c in "+-." or c in _DECIMAL:
                pos, ok = _scan_number(text, pos)
                kind = "number"
                if not ok:
                    err = f"bad number syntax: {go_quote(text[start:pos])}"
            elif c.isalnum() or c == "_":
                pos = ident_end(pos)
                word = text[start:pos]
                kind = (word if word in _KEYWORDS else
                        "bool" if word in ("true", "false") else "ident")
                if pos < n and text[pos] not in _TERMINATORS:
                    err = f"bad character {go_rune(text[pos])}"
            elif c.isascii() and c.isprintable():
                pos += 1
                kind = "char"
            else:
                err = f"unrecognized character in action: {go_rune(c)}"
            if err:
                emit("error", start, start, err)
                return toks
            emit(kind, start, pos)


# --- parser (text/template/parse/parse.go) ----------------------------------------------

class Node:
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


_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


def _all_in(s: str, n: int, chars: Collection[str]) -> bool:
    """s is n characters, all from chars."""
    return len(s) == n and all(c in chars for c in s)


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
        elif _all_in(body[i + 1:i + 4], 3, _OCTAL) and int(body[i + 1:i + 4], 8) < 256:
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        elif size and _all_in(body[i + 2:i + 2 + size], size, _HEX):
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
    unsigned = t[1:] if t[:1] in ("+", "-") else t
    try:
        if len(unsigned) > 1 and unsigned[0] == "0" and unsigned[-1] in _OCTAL \
                and all(c in _OCTAL or c == "_" for c in unsigned):   # Go's legacy octal: 0755
            return int(t, 8)
        return int(t, 0)
    except ValueError:
        pass
    try:
        if unsigned[:2] in ("0x", "0X"):
            return float.fromhex(t.replace("_", ""))
        return float(t.replace("_", ""))
    except ValueError:
        raise ValueError(f"illegal number syntax: {go_quote(t)}") from None


class Parser:
    """parse.Tree: Parser(text, function names).parse() is the list of top-level Nodes."""

    def __init__(self, text: str, funcs: Collection[str]) -> None:
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
    def parse(self) -> list[Node]:
        root = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                self.errorf(f"unexpected {node}")
            root.append(node)
        return root

    def item_list(self) -> tuple[list[Node], Node]:
        """Nodes up to the {{end}} or {{else}} that closes them, returned apart."""
        nodes = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if node.kind in ("end", "else"):
                return nodes, node
            nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind == "text":
            return Node("text", tok.pos, text=tok.val)
        if tok.kind == "ldelim":
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        if tok.kind in ("if", "with", "range"):
            return self.control(tok.kind)
        if tok.kind == "end":
            return Node("end", self.expect("rdelim", "end").pos)
        if tok.kind == "else":
            # "{{else if" / "{{else with": leave the keyword for control() to see.
            if self.peek_non_space().kind in ("if", "with"):
                return Node("else", tok.pos)
            return Node("else", self.expect("rdelim", "else").pos)
        if tok.kind in ("break", "continue"):
            self.expect("rdelim", "{{%s}}" % tok.kind)
            if not self.range_depth:
                self.errorf("{{%s}} outside {{range}}" % tok.kind)
            return Node(tok.kind, tok.pos)
        if tok.kind in ("define", "template", "block"):
            self.errorf("{{%s}} is not supported" % tok.kind)
        self.i -= 1
        return Node("action", tok.pos, pipe=self.pipeline("command", "rdelim"))

    def control(self, context: str) -> Node:
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
        return Node(context, pipe.pos, pipe=pipe, body=body, orelse=orelse)

    def pipeline(self, context: str, end: str) -> Node:
        pipe = Node("pipe", self.peek_non_space().pos, decl=[], assign=False, cmds=[])
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

    def command(self) -> Node:
        cmd = Node("cmd", self.peek_non_space().pos, args=[])
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

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        # Go's chain starts at the first field after the term, and .A.B and $x.A
        # become field and variable nodes there: errors in `.A.B.C` point at `.B`.
        pos = self.peek().pos
        fields = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if node.kind in ("field", "var"):
            return Node(node.kind, pos, idents=node.idents + fields)
        if node.kind in ("bool", "string", "number", "nil", "dot"):
            self.errorf(f"unexpected . after term {go_quote(str(node))}")
        return Node("chain", pos, node=node, fields=fields)

    def term(self) -> Node | None:
        tok = self.next_non_space()
        k, pos = tok.kind, tok.pos
        if k == "error":
            self.unexpected(tok, "operand")
        if k == "ident":
            if tok.val not in self.funcs:
                self.errorf(f"function {go_quote(tok.val)} not defined")
            return Node("ident", pos, name=tok.val)
        if k in ("dot", "nil"):
            return Node(k, pos)
        if k == "var":
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {go_quote(tok.val)}")
            return Node("var", pos, idents=[tok.val])
        if k == "field":
            return Node("field", pos, idents=[tok.val[1:]])
        if k == "bool":
            return Node("bool", pos, value=tok.val == "true")
        try:
            if k in ("number", "char_const"):
                return Node("number", pos, value=_number(tok), text=tok.val)
            if k in ("string", "rawstring"):
                return Node("string", pos, value=_unquote(tok.val), text=tok.val)
        except ValueError as e:
            self.errorf(str(e))
        if k == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        self.i -= 1
        return None

"""The Dockerfile's syntax tree, as docker's parser builds it.

The tree is shallow. The root has one child per instruction. An instruction's
node holds the instruction word as written (`value`, e.g. "FROM" or "from"),
its `--flags`, the line it came from, and its arguments as a chain of `next`
nodes, one per argument: `RUN echo hi` is

    Node("RUN", next=Node("echo hi"))

and `ENV a=1 b=2` is Node("ENV", next=a → 1 → "=" → b → 2 → "="), in triples
of name, value and separator. Only ONBUILD nests: its `next` is a node whose
single child is the instruction it triggers.

`dump()` writes the tree as docker's parser tests do (buildkit's
`Node.Dump()`), one S-expression per instruction:

    (from "busybox")
    (copy ["--from=build"] "/out" "/app")
    (onbuild (run "make"))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.builder.gostrings import lower, quote, quote_list, trim_space
from dockyard.builder.heredoc import Heredoc


@dataclass(eq=False)
class Node:
    value: str = ""
    next: Node | None = None
    children: list[Node] = field(default_factory=list)
    heredocs: list[Heredoc] = field(default_factory=list)
    # "json": the arguments were a JSON array (the exec form).
    attributes: dict[str, bool] = field(default_factory=dict)
    original: str = ""       # the instruction's whole line, continuations joined
    flags: list[str] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    prev_comment: list[str] = field(default_factory=list)  # the comments just above

    @property
    def is_json(self) -> bool:
        return self.attributes.get("json", False)

    def add_child(self, child: Node, start_line: int, end_line: int) -> None:
        child.start_line, child.end_line = start_line, end_line
        if self.start_line < 0:
            self.start_line = start_line
        self.end_line = end_line
        self.children.append(child)

    def dump(self) -> str:
        parts = [lower(self.value)]
        if self.flags:
            parts.append(" " + quote_list(self.flags))
        for child in self.children:
            parts.append("(" + child.dump() + ")\n")
        arg = self.next
        while arg is not None:
            parts.append(" " + (arg.dump() if arg.children else quote(arg.value)))
            arg = arg.next
        return trim_space("".join(parts))

"""The Dockerfile parser: text in, syntax tree out, as docker's (buildkit's
frontend/dockerfile/parser, which dockerd's classic builder uses too).

The text is read line by line:

- Parser directives come first: the comments `# escape=X` (X a backslash or
  a backtick), `# syntax=...` and `# check=...`, each at most once. The first
  line that is not one (any other comment, an empty line, an instruction)
  ends them, and later ones are plain comments.
- `#` starts a comment only at the start of a line (after white space).
  Empty lines and comments are skipped, even in the middle of an instruction
  continued over several lines.
- The escape character (`\\`, or a backtick after that directive) as the last
  character of a line, white space after it aside, continues the instruction
  on the next line. Continuation lines keep their leading white space; an
  empty continuation line is skipped with a warning.
- RUN, COPY and ADD (also under ONBUILD) may open heredocs (`<<EOF`): the
  lines that follow the instruction, up to the delimiter, are their content.

Each instruction line then becomes a node (lineparsers.py). Errors are
DockerfileParseError, with docker's message, which does not name the line:
the line is an attribute. dockerd prefixes the message with
"failed to parse <Dockerfile name>: ".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockyard import errdefs
from dockyard.builder.gostrings import trim_left_space, trim_space
from dockyard.builder.heredoc import HeredocError, heredocs_from_line
from dockyard.builder.lineparsers import LineParseError, new_node_from_line
from dockyard.builder.node import Node

DEFAULT_ESCAPE_TOKEN = "\\"

# bufio.Scanner's default limit: a line and its newline must fit in 64 KiB.
MAX_LINE_BYTES = 64 * 1024 - 1

_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_DIRECTIVE_NAMES = ("syntax", "escape", "check")
# Instructions that may open heredocs, and those whose child instruction may.
_HEREDOC_INSTRUCTIONS = ("add", "copy", "run")
_COMPOUND_INSTRUCTIONS = ("onbuild",)

_EMPTY_CONTINUATION_URL = "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"


class DockerfileParseError(errdefs.InvalidParameter):
    """The Dockerfile's text cannot be parsed. The message is docker's; the
    lines it concerns are start_line..end_line (1-based)."""

    def __init__(self, message: str, start_line: int, end_line: int = 0):
        super().__init__(message)
        self.start_line = start_line
        self.end_line = max(end_line, start_line)


@dataclass
class ParseWarning:
    short: str
    detail: str
    url: str
    line: int


@dataclass
class Result:
    ast: Node
    escape_token: str = DEFAULT_ESCAPE_TOKEN
    warnings: list[ParseWarning] = field(default_factory=list)
    # The parser directives found, by lower-case name: {"syntax": "docker/dockerfile:1"}.
    directives: dict[str, str] = field(default_factory=dict)

    def warning_lines(self) -> list[str]:
        """What dockerd writes to the build's stderr about the warnings."""
        if not self.warnings:
            return []
        return [f"[WARNING]: {w.short}" for w in self.warnings] + [
            "[WARNING]: Empty continuation lines will become errors in a future release."]


def parse(source: str | bytes) -> Result:
    """Parse a Dockerfile. Bytes are read as UTF-8; a byte order mark is dropped."""
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    return _Parse(text).run()


class _Directives:
    """The parser directives at the top of the file, and the escape character
    they set."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}
        self.done = False
        self.set_escape_token(DEFAULT_ESCAPE_TOKEN)

    def set_escape_token(self, token: str) -> None:
        if token not in ("`", "\\"):
            raise ValueError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape_token = token
        # The escape character as the last one on a line, but not escaped
        # itself (a line of only the escape character continues too). Like
        # docker's, this cannot see that `foo \\\\` ends with an escaped one.
        t = re.escape(token)
        self.continuation = re.compile(rf"([^{t}]){t}[ \t]*\Z|^{t}[ \t]*\Z")

    def is_directive(self, line: str) -> bool:
        """Whether line (without its newline or leading white space) is a
        directive; it takes effect at once. Raises ValueError for a directive
        given twice or a bad escape character."""
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        match = _DIRECTIVE.fullmatch(trim_left_space(line[1:]))
        if not match or match[1].lower() not in _DIRECTIVE_NAMES:
            self.done = True
            return False
        name, value = match[1].lower(), match[2]
        if name in self.found:
            raise ValueError(f"only one {name} parser directive can be used")
        self.found[name] = value
        if name == "escape":
            self.set_escape_token(value)
        return True

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """The line without its continuation character, and whether the
        instruction ends with this line."""
        if self.continuation.search(line):
            return self.continuation.sub(r"\1", line), False
        return line, True


class _Scanner:
    """The file's lines, each with its newline, as Go's bufio.Scanner gives
    them.

    At a line too long the scanner stops, as at the end of the file. Go's
    does one more thing, which is kept: asked again after that, it gives
    what its buffer holds, the line's first 64 KiB, and only then stops.
    That happens when the long line continues an instruction: the partial
    line then reads as an instruction of its own.
    """

    def __init__(self, text: str):
        lines = text.split("\n")
        self.lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        self.pos = 0
        self.too_long = False
        self.too_long_line = 0
        self.buffered: str | None = None

    def scan(self) -> str | None:
        if self.too_long:
            rest, self.buffered = self.buffered, None
            return rest
        if self.pos == len(self.lines):
            return None
        line = self.lines[self.pos]
        data = line.rstrip("\n").encode("utf-8", "surrogateescape")
        if len(data) > MAX_LINE_BYTES:
            self.too_long, self.too_long_line = True, self.pos + 1
            self.buffered = data[:MAX_LINE_BYTES + 1].decode("utf-8", "surrogateescape")
            return None
        self.pos += 1
        return line


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return trim_left_space(line).startswith("#")


def _is_empty_continuation_line(line: str) -> bool:
    return not trim_left_space(_trim_newline(line))


def _can_contain_heredoc(node: Node) -> bool:
    if node.value.lower() in _COMPOUND_INSTRUCTIONS and node.next and node.next.children:
        node = node.next.children[0]
    return node.value.lower() in _HEREDOC_INSTRUCTIONS and not node.is_json


class _Parse:
    """One run of the parser over a text (buildkit's Parse)."""

    def __init__(self, text: str):
        self.scanner = _Scanner(text)
        self.directives = _Directives()
        self.root = Node(start_line=-1)
        self.warnings: list[ParseWarning] = []
        self.line_number = 0   # of the last line read

    def run(self) -> Result:
        comments: list[str] = []
        while (raw := self.scanner.scan()) is not None:
            if self.line_number == 0:
                raw = raw.removeprefix("\ufeff")
            if _is_comment(raw):
                # Docker drops the first character of the raw line, not the
                # `#`, and an empty comment forgets those above it.
                comment = trim_space(raw[1:])
                comments = comments + [comment] if comment else []
            line, is_directive = self._process_line(raw, strip_left=True)
            if is_directive:
                comments = comments[:-1]
            self.line_number += 1
            start_line = self.line_number
            line, end_of_line = self.directives.trim_continuation(line)
            if end_of_line and not line:
                continue
            if not end_of_line:
                line = self._continue_line(line)
            self._add_instruction(line, start_line, comments)
            comments = []
        if self.root.start_line < 0:
            raise DockerfileParseError("file with no instructions", self.line_number)
        if self.scanner.too_long:
            raise DockerfileParseError(
                f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                self.scanner.too_long_line)
        return Result(ast=self.root, escape_token=self.directives.escape_token,
                      warnings=self.warnings, directives=dict(self.directives.found))

    def _process_line(self, raw: str, strip_left: bool) -> tuple[str, bool]:
        """The line without newline (and, for the first line of an
        instruction, leading white space); comments become empty."""
        line = _trim_newline(raw)
        if strip_left:
            line = trim_left_space(line)
        try:
            is_directive = self.directives.is_directive(line)
        except ValueError as err:
            # (buildkit's location is the line before; the message names none)
            raise DockerfileParseError(str(err), self.line_number + 1) from None
        return ("" if _is_comment(line) else line), is_directive

    def _continue_line(self, first: str) -> str:
        """The instruction's whole text, continuation lines joined to first."""
        parts = [first]
        has_empty_line = False
        end_of_line = False
        while not end_of_line and (raw := self.scanner.scan()) is not None:
            line, _ = self._process_line(raw, strip_left=False)
            self.line_number += 1
            if _is_comment(raw):
                continue
            if _is_empty_continuation_line(line):
                has_empty_line = True
                continue
            line, end_of_line = self.directives.trim_continuation(line)
            parts.append(line)
        whole = "".join(parts)
        if has_empty_line:
            self.warnings.append(ParseWarning(
                short="Empty continuation line found in: " + whole,
                detail="Empty continuation lines will become errors in a future release",
                url=_EMPTY_CONTINUATION_URL, line=self.line_number))
        return whole

    def _add_instruction(self, line: str, start_line: int, comments: list[str]) -> None:
        try:
            child = new_node_from_line(line, self.directives.escape_token, comments)
        except LineParseError as err:
            raise DockerfileParseError(str(err), start_line, self.line_number) from None
        if _can_contain_heredoc(child) and "<<" in line:
            self._read_heredocs(child, line, start_line)
        self.root.add_child(child, start_line, self.line_number)

    def _read_heredocs(self, node: Node, line: str, start_line: int) -> None:
        """The content of each heredoc the line opens, from the lines after
        it, in the order the heredocs are named."""
        try:
            heredocs = heredocs_from_line(line)
        except HeredocError as err:
            raise DockerfileParseError(str(err), start_line, self.line_number) from None
        for heredoc in heredocs:
            content: list[str] = []
            while (raw := self.scanner.scan()) is not None:
                self.line_number += 1
                candidate = _trim_newline(raw)
                if heredoc.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == heredoc.name:
                    break
                content.append(raw)
            else:
                raise DockerfileParseError("unterminated heredoc", start_line, self.line_number)
            heredoc.content = "".join(content)
            node.heredocs.append(heredoc)

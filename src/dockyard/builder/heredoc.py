"""Heredocs: `RUN <<EOF`, `COPY <<a <<b /dst`, and how docker recognises them.

A heredoc word is `[n]<<[-]NAME`: n a file descriptor, `-` asks for leading
tabs to be stripped from the content ("chomp"), and NAME ends the content
when it appears alone on a line. If any part of NAME is quoted (`<<'EOF'`,
`<<"EOF"`, `<<E'O'F`) the content is not expanded, as in a shell.

Docker finds these words with its shell lexer run in a "raw" mode that keeps
quotes, escapes and unset variables exactly as written, so that quoted text
such as `RUN "<<EOF"` is one word that does not start with `<<`. That mode is
reproduced here (`_RawLexer`) rather than borrowed from shell.py, whose job is
substitution: only the splitting into words matters here, with an empty
environment. The escape character here is always `\\`, whatever the
Dockerfile's escape directive says, as in docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.builder.gostrings import is_space, quote
from dockyard.builder.shell import Scanner

# Go's `^(\d*)<<(-?)\s*([^<]*)$`, where \d and \s are ASCII only.
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_EOF = ""


class HeredocError(ValueError):
    """A heredoc word the lexer cannot read (an unterminated quote, a bad ${})."""


@dataclass
class Heredoc:
    name: str
    file_descriptor: int = 0
    expand: bool = True
    chomp: bool = False
    content: str = ""


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word opens (ParseHeredoc), or None if it opens none."""
    match = _HEREDOC_WORD.fullmatch(word)
    if not match:
        return None
    fd, dash, rest = match.groups()
    if not rest:
        return None
    words = _RawLexer(raw_quotes=False, raw_escapes=False).words(rest)
    if len(words) != 1:  # `<<EOF sh` names no heredoc
        return None
    raw_words = _RawLexer(raw_quotes=True, raw_escapes=False).words(rest)
    if len(raw_words) != len(words):
        raise HeredocError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    # Quotes that the plain reading dropped but the raw one kept were quoting
    # part of the name: the content is then taken literally.
    expand = _count_quotes(words[0]) == _count_quotes(raw_words[0])
    return Heredoc(name=words[0], file_descriptor=_parse_fd(fd), expand=expand,
                   chomp=dash == "-")


def must_parse_heredoc(word: str) -> Heredoc | None:
    """parse_heredoc, with an unreadable word taken as no heredoc."""
    try:
        return parse_heredoc(word)
    except HeredocError:
        return None


def heredocs_from_line(line: str) -> list[Heredoc]:
    """The heredocs an instruction line opens, in order."""
    try:
        words = _RawLexer(raw_quotes=True, raw_escapes=True).words(line)
    except HeredocError:
        words = []  # docker ignores a line it cannot split: it opens no heredoc
    return [doc for doc in map(parse_heredoc, words) if doc is not None]


def chomp_heredoc_content(content: str) -> str:
    """The content of a `<<-` heredoc: leading tabs removed from every line."""
    return _LEADING_TABS.sub("", content)


def _count_quotes(word: str) -> int:
    return word.count("'") + word.count('"')


def _parse_fd(digits: str) -> int:
    # strconv.ParseUint with its error ignored: out of range reads as the maximum.
    return min(int(digits), 2**64 - 1) if digits else 0


class _Words:
    """The words a lexer has split so far (buildkit's wordsStruct).

    The buffer of the current word is shared by the lexer and emptied every
    time it starts reading a `${...}` part: buildkit does the same, so a word
    loses what came before such a part. Kept, to find the same words.
    """

    def __init__(self, buf: list[str]):
        self.buf = buf
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if is_space(ch) and self.in_word:
            if self._pending():
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        elif not is_space(ch):
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def _pending(self) -> bool:
        # Quotes around nothing (`""`) add an empty part: no word yet.
        return any(self.buf)

    def done(self) -> list[str]:
        if self._pending():
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class _RawLexer:
    """buildkit's shell lexer with an empty environment whose unset variables
    stay as written (SkipUnsetEnv), quotes kept or not (RawQuotes), escapes
    kept or not (RawEscapes)."""

    def __init__(self, raw_quotes: bool, raw_escapes: bool):
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self._scanner = Scanner("")
        self.shared_buf: list[str] = []

    def words(self, text: str) -> list[str]:
        self._scanner = Scanner(text)
        try:
            return self._until(_EOF, self.raw_escapes)[1]
        except HeredocError as err:
            raise HeredocError(f"failed to process {quote(text)}: {err}") from None

    def _until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """processStopOn: read up to `stop` (or the end), giving the text read
        and the words it splits into."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._read_until(stop)
        finally:
            self.raw_escapes = saved

    def _read_until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        self.shared_buf.clear()
        words = _Words(self.shared_buf)
        special = {"$": self._dollar, "<": self._possible_heredoc,
                   "'": self._single_quote, '"': self._double_quote}
        while self._scanner.peek() != _EOF:
            ch = self._scanner.peek()
            if stop and ch == stop:
                self._scanner.next()
                return "".join(result), words.done()
            if ch in special:
                part = special[ch]()
                result.append(part)
                if ch == "$":
                    words.add_string(part)
                else:
                    words.add_raw(part)
                continue
            ch = self._scanner.next()
            if ch == "\\":
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self._scanner.next()
                if ch == _EOF:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise HeredocError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.done()

    def _single_quote(self) -> str:
        opening = self._scanner.next()
        result = [opening] if self.raw_quotes else []
        while True:  # nothing escapes inside single quotes
            ch = self._scanner.next()
            if ch == _EOF:
                raise HeredocError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    result.append(ch)
                return "".join(result)
            result.append(ch)

    def _double_quote(self) -> str:
        opening = self._scanner.next()
        result = [opening] if self.raw_quotes else []
        while True:
            ch = self._scanner.peek()
            if ch == _EOF:
                raise HeredocError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._scanner.next()
                if self.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if ch == "$":
                result.append(self._dollar())
                continue
            ch = self._scanner.next()
            if ch == "\\":
                if self.raw_escapes:
                    result.append(ch)
                if self._scanner.peek() == _EOF:
                    continue  # and the loop then finds the quote unterminated
                if self._scanner.peek() in ('"', "$", "\\"):
                    ch = self._scanner.next()
            result.append(ch)

    def _possible_heredoc(self) -> str:
        self._scanner.next()
        if self._scanner.peek() != "<":
            return "<"
        self._scanner.next()
        spaces = []  # `<< EOF` is one word: the spaces belong to it
        while self._scanner.peek() in ("\t", "\r", " "):
            spaces.append(self._scanner.next())
        return "<<" + "".join(spaces)

    def _dollar(self) -> str:
        """A `$` part, which with no variables set stays as written."""
        self._scanner.next()
        if self._scanner.peek() != "{":
            name = self._name()
            return "$" + name
        self._scanner.next()
        if self._scanner.peek() == _EOF:
            raise HeredocError("syntax error: missing '}'")
        if self._scanner.peek() in "{}:":
            raise HeredocError("syntax error: bad substitution")
        name = self._name()
        ch = self._scanner.next()
        modifier = ch or "\ufffd"  # Go's string(scanner.EOF)
        if ch == "}":
            return "${" + name + "}"
        if ch == "/":
            return self._replacement(name)
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self._scanner.next()
            modifier += ch or "\ufffd"
        elif ch not in ("+", "-", "?", "#", "%"):
            raise HeredocError(f"unsupported modifier ({modifier}) in substitution")
        raw = ch in ("#", "%")  # patterns keep their escapes
        if null_is_unset and raw:
            raise HeredocError(f"unsupported modifier ({modifier}) in substitution")
        word = self._closing("}", raw, "syntax error: missing '}'")
        return "${" + name + modifier + word + "}"

    def _replacement(self, name: str) -> str:
        if self._scanner.peek() == "/":
            self._scanner.next()  # `${x//a/b}`: docker writes it back with one slash
        pattern = self._closing("/", True, "syntax error: missing '/' in ${}")
        replacement = self._closing("}", True, "syntax error: missing '}'")
        return "${" + name + "/" + pattern + "/" + replacement + "}"

    def _closing(self, stop: str, raw_escapes: bool, at_end: str) -> str:
        try:
            return self._until(stop, raw_escapes)[0]
        except HeredocError:
            if self._scanner.peek() == _EOF:
                raise HeredocError(at_end) from None
            raise

    def _name(self) -> str:
        name: list[str] = []
        while self._scanner.peek() != _EOF:
            ch = self._scanner.peek()
            if not name and ch.isdecimal():
                while self._scanner.peek() != _EOF and self._scanner.peek().isdecimal():
                    name.append(self._scanner.next())
                return "".join(name)
            if not name and ch in "@*#?-$!0":
                return self._scanner.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self._scanner.next())
        return "".join(name)

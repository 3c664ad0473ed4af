"""Variable substitution and word splitting in Dockerfile instructions.

Docker runs no shell to expand `$VAR` in ENV, ADD, COPY, WORKDIR, EXPOSE and
the other instructions that allow it: it has its own small lexer, a subset of
POSIX sh's rules, and this module is that lexer as docker's classic builder
uses it (buildkit's frontend/dockerfile/shell).

    'text'        taken as it is; nothing escapes inside, not even '
    "text"        $ still expands; the escape token escapes only " $ and itself,
                  before anything else it stays
    \\c            c taken literally; the escape token is \\ or ` (the parser's
                  `# escape=` directive) and is dropped at the end of a word
    $name ${name} the variable's value, nothing when it is unset
    ${name:-word} word when name is unset or empty    ${name-word} only when unset
    ${name:+word} word when name is set and not empty ${name+word} when set
    ${name:?msg}  an error when unset or empty        ${name?msg}  when unset
    ${name#pat}   the value less its shortest prefix matching pat (## the longest)
    ${name%pat}   the value less its shortest suffix matching pat (%% the longest)
    ${name/pat/replacement}   the first match of pat replaced (// every match)

A name is letters, digits and `_`; or a run of digits, or one of sh's special
parameters (`@ * # ? - $ ! 0`): a Dockerfile has neither positional nor special
parameters, so those are simply unset. There is no `${#name}`: `#` is read as
that special parameter, and `${#name}` fails as an unsupported modifier.

`process_word` gives the expanded text; `process_words` splits it into words
at whitespace, as EXPOSE needs, except whitespace that came from quotes or
escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from dockyard.builder.gostrings import as_go_runes, is_space, quote

Env = Mapping[str, str] | Iterable[str]

_EOF = ""
# What Go's string(rune) gives for the end-of-input marker, which docker's
# messages print when a word ends in the middle of ${...}.
_RUNE_ERROR = "\ufffd"
_HEREDOC_SPACE = frozenset("\t\r ")
_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")
_UNTERMINATED = "unexpected end of statement while looking for matching "


class ShellError(ValueError):
    """A word the lexer refuses; the message is docker's."""


class Lexer:
    """Expands words with docker's rules, given the Dockerfile's escape
    token: "\\", or "`" after an `# escape=` directive."""

    def __init__(self, escape_token: str = "\\"):
        self.escape_token = escape_token

    def process_word(self, word: str, env: Env) -> str:
        """The word with its quotes and escapes removed and its variables
        expanded; `env` is a mapping or a list of "KEY=value" (later wins)."""
        return self._process(word, env)[0]

    def process_words(self, word: str, env: Env) -> list[str]:
        """The expanded word split into words at whitespace outside quotes."""
        return self._process(word, env)[1]

    def _process(self, word: str, env: Env) -> tuple[str, list[str]]:
        expansion = _Expansion(word, self.escape_token, _environment(env))
        try:
            return expansion.process_until(None, raw_escapes=False)
        except ShellError as err:
            raise ShellError(f"failed to process {quote(word)}: {err}") from None


def _environment(env: Env) -> dict[str, str]:
    if isinstance(env, Mapping):
        return dict(env)
    values = {}
    for entry in env:
        # An entry without "=" sets the name to the empty string.
        key, _, value = entry.partition("=")
        values[key] = value
    return values


class Scanner:
    """Go's text/scanner as the lexer uses it: one character at a time, _EOF
    at the end. Like Go's, it skips a byte order mark at the very start, and
    reads a byte that is not UTF-8 as U+FFFD."""

    def __init__(self, text: str):
        text = as_go_runes(text)
        self._text = text[1:] if text.startswith("\ufeff") else text
        self._pos = 0

    def peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self._pos += 1
        return ch


class _Words:
    """The words of an expansion. Whitespace ends a word only when it is
    added as plain text (`add_text`); quoted or escaped text is `add_raw`."""

    def __init__(self) -> None:
        self._words: list[str] = []
        self._word = ""

    def add_text(self, text: str) -> None:
        for ch in text:
            if not is_space(ch):
                self._word += ch
            elif self._word:
                self._words.append(self._word)
                self._word = ""

    def add_raw(self, text: str) -> None:
        self._word += text

    def finish(self) -> list[str]:
        # Empty quotes ("") add nothing, so they make no word of their own.
        if self._word:
            self._words.append(self._word)
            self._word = ""
        return self._words


class _Expansion:
    """One word being expanded: the reading position and the variables."""

    def __init__(self, word: str, escape_token: str, env: dict[str, str]):
        self.scanner = Scanner(word)
        self.escape_token = escape_token
        self.env = env
        # Inside ${name#pat}, ${name%pat} and ${name/pat/repl} escapes are kept,
        # for the pattern to see which characters were escaped.
        self.raw_escapes = False

    def process_until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Reads up to the `stop` character (consumed) or, with None, to the
        end: the expanded text and its words."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._process_until(stop)
        finally:
            self.raw_escapes = saved

    def _process_until(self, stop: str | None) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.scanner.peek()) != _EOF:
            if ch == stop:
                self.scanner.next()
                return "".join(result), words.finish()
            if ch == "$":
                text = self._dollar()
                words.add_text(text)      # a variable's value is split at its spaces
            elif ch == "'":
                text = self._single_quoted()
                words.add_raw(text)
            elif ch == '"':
                text = self._double_quoted()
                words.add_raw(text)
            elif ch == "<":
                text = self._possible_heredoc()
                words.add_raw(text)
            else:
                text = self._plain_character(words)
            result.append(text)
        if stop is not None:
            raise ShellError(_UNTERMINATED + stop)
        return "".join(result), words.finish()

    def _plain_character(self, words: _Words) -> str:
        """A character outside quotes, or an escaped one with its escape token
        dropped (kept when `raw_escapes`). An escape token that ends the input
        escapes nothing."""
        ch = self.scanner.next()
        if ch != self.escape_token:
            words.add_text(ch)
            return ch
        text = (ch if self.raw_escapes else "") + self.scanner.next()
        words.add_raw(text)
        return text

    def _single_quoted(self) -> str:
        self.scanner.next()
        text = []
        while (ch := self.scanner.next()) != "'":
            if ch == _EOF:
                raise ShellError(_UNTERMINATED + "single-quote")
            text.append(ch)
        return "".join(text)

    def _double_quoted(self) -> str:
        self.scanner.next()
        text = []
        while (ch := self.scanner.peek()) != '"':
            if ch == _EOF:
                raise ShellError(_UNTERMINATED + "double-quote")
            if ch == "$":
                text.append(self._dollar())
                continue
            ch = self.scanner.next()
            if ch == self.escape_token:
                if self.raw_escapes:
                    text.append(ch)
                following = self.scanner.peek()
                if following == _EOF:
                    continue              # the missing quote is reported next
                if following in ('"', "$", self.escape_token):
                    ch = self.scanner.next()
                # before any other character the escape token stays, as in sh
            text.append(ch)
        self.scanner.next()
        return "".join(text)

    def _possible_heredoc(self) -> str:
        """`<<` (and the blanks after it) stays one raw piece, so that the
        parser still finds a heredoc's marker after expansion."""
        self.scanner.next()
        if self.scanner.peek() != "<":
            return "<"
        self.scanner.next()
        text = ["<<"]
        while self.scanner.peek() in _HEREDOC_SPACE:
            text.append(self.scanner.next())
        return "".join(text)

    # -- $name and ${...} ---------------------------------------------------------

    def _dollar(self) -> str:
        self.scanner.next()
        if self.scanner.peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.scanner.next()
        if self.scanner.peek() == _EOF:
            raise ShellError("syntax error: missing '}'")
        if self.scanner.peek() in ("{", "}", ":"):
            raise ShellError("syntax error: bad substitution")
        name = self._name()
        ch = self.scanner.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "/":
            return self._replace(name)
        modifier = ch or _RUNE_ERROR
        if ch == ":":
            # ${name:-word} and the like also treat an empty value as unset
            ch = self.scanner.next()
            modifier += ch or _RUNE_ERROR
            if ch in ("#", "%"):
                raise ShellError(f"unsupported modifier ({modifier}) in substitution")
        elif ch not in ("+", "-", "?", "#", "%"):
            raise ShellError(f"unsupported modifier ({modifier}) in substitution")
        word = self._operand("}", raw_escapes=ch in ("#", "%"), missing="'}'")
        return self._apply(name, ch, modifier, word)

    def _name(self) -> str:
        first = self.scanner.peek()
        if first.isdecimal():             # Go's unicode.IsDigit
            digits = []
            while self.scanner.peek().isdecimal():
                digits.append(self.scanner.next())
            return "".join(digits)
        if first in _SPECIAL_PARAMETERS:
            return self.scanner.next()
        name = []
        while (ch := self.scanner.peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            name.append(self.scanner.next())
        return "".join(name)

    def _operand(self, stop: str, raw_escapes: bool, missing: str) -> str:
        """The word inside ${...} up to `stop`; running off the end of the
        input is reported as the missing delimiter."""
        try:
            return self.process_until(stop, raw_escapes)[0]
        except ShellError:
            if self.scanner.peek() == _EOF:
                raise ShellError(f"syntax error: missing {missing}") from None
            raise

    def _apply(self, name: str, op: str, modifier: str, word: str) -> str:
        is_set = name in self.env
        value = self.env.get(name, "")
        null_is_unset = modifier.startswith(":")
        present = is_set and not (null_is_unset and value == "")
        if op == "-":
            return value if present else word
        if op == "+":
            return word if present else ""
        if op == "?":
            if not is_set:
                raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
            if not present:
                raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op in ("#", "%"):
            greedy = word.startswith(op)          # ## and %% take the longest match
            pattern = word[1:] if greedy else word
            if op == "#":
                return _trim_prefix(pattern, value, greedy)
            return _trim_suffix(pattern, value, greedy)
        raise ShellError(f"unsupported modifier ({modifier}) in substitution")

    def _replace(self, name: str) -> str:
        replace_all = self.scanner.peek() == "/"
        if replace_all:
            self.scanner.next()
        pattern = self._operand("/", raw_escapes=True, missing="'/' in ${}")
        replacement = self._operand("}", raw_escapes=True, missing="'}'")
        value = self.env.get(name, "")
        regex = _compile(pattern, greedy=True, anchored=False)
        if replace_all:
            return _replace_all(regex, value, replacement)
        match = regex.search(value)
        if match is None:
            return value
        return value[:match.start()] + replacement + value[match.end():]


# -- patterns ---------------------------------------------------------------------

def _compile(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A ${...} pattern as a regular expression: `*` is any run of characters
    (the longest when greedy, else the shortest), `?` any one character, `\\`
    escapes `*`, `?` and `\\`, and is dropped before `}` and `/`, which must be
    escaped inside ${...}. Everything else is literal: no bracket expressions."""
    scanner = Scanner(pattern)
    out = ["^"] if anchored else []
    while (ch := scanner.next()) != _EOF:
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            if scanner.peek() in ("}", "/"):
                continue
            escaped = scanner.next()
            if escaped not in ("*", "?", "\\"):
                raise ShellError(f"invalid pattern ({pattern}) in substitution: "
                                 f"invalid escape '\\{escaped or _RUNE_ERROR}'")
            out.append(re.escape(escaped))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _compile(pattern, greedy, anchored=True).search(value)
    return value[match.end():] if match else value


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regular expression finds the leftmost match, not the shortest one that
    # ends the string: so match the reversed pattern against the reversed value.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _reverse_pattern(pattern: str) -> str:
    """The pattern backwards, each escape still before the character it escapes
    (a\\*c becomes c\\*a)."""
    out = [""] * len(pattern)
    last = len(pattern) - 1
    i = 0
    while i <= last:
        if pattern[i] == "\\" and i != last:
            out[last - i - 1], out[last - i] = "\\", pattern[i + 1]
            i += 2
        else:
            out[last - i] = pattern[i]
            i += 1
    return "".join(out)


def _replace_all(regex: re.Pattern[str], value: str, template: str) -> str:
    """Go's Regexp.ReplaceAllString: unlike re.sub, an empty match right after
    a match is not replaced, and `$` in the replacement is expanded."""
    out = []
    last_end = search_from = 0
    while search_from <= len(value):
        match = regex.search(value, search_from)
        if match is None:
            break
        out.append(value[last_end:match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(_expand_template(template, match))
        last_end = match.end()
        search_from = max(search_from + 1, match.end())
    out.append(value[last_end:])
    return "".join(out)


def _expand_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: `$$` is `$`; `$name` or `${name}` is a capture group.
    Our patterns capture nothing, so only `$0` (the whole match) has a value,
    other names expand to nothing, and a `$` not followed by a name stays."""
    out = []
    rest = template
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        name, after = _template_name(rest)
        if name is None:
            out.append("$")
            continue
        rest = after
        if name == "0":
            out.append(match.group(0))


def _template_name(text: str) -> tuple[str | None, str]:
    braced = text.startswith("{")
    body = text[1:] if braced else text
    end = 0
    while end < len(body) and (body[end].isalpha() or body[end].isdecimal() or body[end] == "_"):
        end += 1
    if end == 0 or (braced and body[end:end + 1] != "}"):
        return None, text
    return body[:end], body[end + 1 if braced else end:]

"""The .dockerignore file: which files of a build context are sent, and how.

A .dockerignore holds one pattern a line (moby/patternmatcher's rules):

    # comment          only where the line starts with "#"
    *.md               * is any run of characters but "/", ? one character but "/"
    **/*.go            ** is any number of directories, even none
    [a-c]x  \\*x        character classes, and escapes
    docs               a directory's pattern covers everything under it
    !docs/README.md    a "!" pattern takes back what an earlier pattern excluded

Patterns are cleaned (`./a/../b/` is `b`), a leading "/" is dropped (patterns
are relative to the context) and so are the spaces around them; the last
pattern that matches a path decides for it.

How a classic `docker build` uses them, in order:

1. The CLI reads the file (`read_dockerignore`) and adds "!" patterns for the
   Dockerfile and the .dockerignore (`trim_build_files_from_excludes`): the
   daemon must read both even when they are excluded.
2. It archives the context without what the patterns exclude (`walk_context`,
   go-archive's TarWithOptions), never entering a directory that no "!"
   pattern could reach into.
3. The daemon reads the Dockerfile, then deletes from the context those of
   the two that the patterns exclude (`build_files_to_remove`), so that
   `COPY . /` does not copy them.

Paths are relative to the context, "/"-separated, and compared as the
strings they are: case-sensitive, as on Linux.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from typing import NamedTuple

from dockyard.builder.gostrings import trim_space

_UTF8_BOM = b"\xef\xbb\xbf"

# The parent directories' results that matches_using_parent_results takes:
# one bool per pattern, whether the directory (or one of its own parents)
# matched that pattern. The empty tuple means "not known".
MatchInfo = tuple[bool, ...]


class PatternError(ValueError):
    """A pattern docker refuses; the message is docker's."""


BAD_PATTERN = "syntax error in pattern"          # Go's filepath.ErrBadPattern


# -- the file -----------------------------------------------------------------------

def parse_dockerignore(content: bytes | str) -> list[str]:
    """The patterns of a .dockerignore's content (ignorefile.ReadAll)."""
    if isinstance(content, bytes):
        # Undecodable bytes stay as surrogates, as os.fsdecode gives file names.
        content = content.removeprefix(_UTF8_BOM).decode("utf-8", "surrogateescape")
    else:
        content = content.removeprefix("\ufeff")
    lines = content.split("\n")
    patterns = []
    for line in lines:
        line = line.removesuffix("\r")
        # A comment starts the line: "  # x" is the pattern "# x".
        if line.startswith("#"):
            continue
        pattern = trim_space(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = trim_space(pattern[1:])
        if pattern:
            pattern = _clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def read_dockerignore(context_dir: str) -> list[str]:
    """The patterns of the context's .dockerignore; none when it has none."""
    try:
        with open(os.path.join(context_dir, ".dockerignore"), "rb") as f:
            return parse_dockerignore(f.read())
    except FileNotFoundError:
        return []


# -- one pattern --------------------------------------------------------------------

class MatchType(Enum):
    """How a pattern is matched; patterns that need no regular expression
    are matched as strings."""
    EXACT = "exact"        # no wildcards
    PREFIX = "prefix"      # dir/**
    SUFFIX = "suffix"      # **/name, **name
    REGEXP = "regexp"


class Pattern:
    """One cleaned pattern, "!" removed (`exclusion` says it had one)."""

    def __init__(self, cleaned: str, exclusion: bool):
        self.cleaned = cleaned
        self.exclusion = exclusion
        self.dirs = cleaned.split("/")
        # Set by _compile(), at the first match, as patternmatcher does: a
        # pattern whose regular expression is refused fails only then.
        self.match_type: MatchType | None = None
        self.regexp_source = ""
        self._regexp: re.Pattern[str] | None = None

    def __str__(self) -> str:
        return self.cleaned

    def __repr__(self) -> str:
        return f"Pattern({'!' if self.exclusion else ''}{self.cleaned!r})"

    def match(self, path: str) -> bool:
        if self.match_type is None:
            self._compile()
        if self.match_type is MatchType.EXACT:
            return path == self.cleaned
        if self.match_type is MatchType.PREFIX:
            return path.startswith(self.cleaned[:-2])
        if self.match_type is MatchType.SUFFIX:
            suffix = self.cleaned[2:]
            # **/foo also matches "foo" itself
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self._regexp is not None
        return self._regexp.match(path) is not None

    def _compile(self) -> None:
        """Translates the pattern as patternmatcher does, into Go regexp
        syntax (kept in `regexp_source`). Python's re reads it alike, but
        for POSIX classes ("[[:digit:]]"), which it does not know, and the
        escapes of letters, which are refused."""
        source, kind = ["^"], MatchType.EXACT
        p, i = self.cleaned, 0
        unsupported = False
        while i < len(p):
            ch, at_start = p[i], i == 0
            i += 1
            if ch == "*" and p[i:i + 1] == "*":
                i += 1
                if p[i:i + 1] == "/":            # **/ is **
                    i += 1
                if i == len(p):                  # a final ** is everything
                    if kind is MatchType.EXACT:
                        kind = MatchType.PREFIX
                    else:
                        source.append(".*")
                        kind = MatchType.REGEXP
                else:                            # any number of directories
                    source.append("(.*/)?")
                    kind = MatchType.REGEXP
                if at_start:
                    kind = MatchType.SUFFIX
            elif ch == "*":
                source.append("[^/]*")
                kind = MatchType.REGEXP
            elif ch == "?":
                source.append("[^/]")
                kind = MatchType.REGEXP
            elif ch in ".+()|{}$":
                source.append("\\" + ch)
            elif ch == "\\":
                # Docker hands the escape to Go's regexp, which reads "\"
                # before ASCII punctuation as that character, as Python's re does.
                escaped = p[i:i + 1]
                source.append("\\" + escaped)
                i += 1
                kind = MatchType.REGEXP
                if not escaped.isascii() or escaped.isalnum():
                    # Go's regexp gives a few escaped letters a meaning of their
                    # own (\d, \t, \x41) and refuses the others and every
                    # non-ASCII character: we refuse them all.
                    unsupported = True
            elif ch in "[]":
                source.append(ch)
                kind = MatchType.REGEXP
            else:
                source.append(ch)
        if kind is MatchType.REGEXP:
            self.regexp_source = "".join(source) + "$"
            if unsupported:
                raise PatternError(BAD_PATTERN)
            # Go's "$" is the end of the text; Python's also matches before a
            # final newline, and "\Z" does not.
            try:
                with warnings.catch_warnings():
                    # "[[" and the like: Python warns that they may one day
                    # mean nested sets; today they mean what Go reads.
                    warnings.simplefilter("ignore", FutureWarning)
                    self._regexp = re.compile("".join(source) + r"\Z")
            except re.error:
                raise PatternError(BAD_PATTERN) from None
        self.match_type = kind


def _check_syntax(pattern: str) -> None:
    """Raises PatternError where Go's filepath.Match would report the
    pattern malformed: an unclosed or empty class, a range missing an end,
    "-" or "]" where a class member should be, a "\\" ending the pattern."""
    for chunk in _chunks(pattern):
        i = 0
        while i < len(chunk):
            if chunk[i] == "\\":
                if i + 1 == len(chunk):
                    raise PatternError(BAD_PATTERN)
                i += 2
            elif chunk[i] == "[":
                i = _check_class(chunk, i + 1)
            else:
                i += 1


def _chunks(pattern: str) -> Iterator[str]:
    """filepath.Match's chunks: the text between stars, a star inside
    brackets being text."""
    i, in_class = 0, False
    while True:
        while i < len(pattern) and pattern[i] == "*":
            i += 1
        start = i
        while i < len(pattern) and (pattern[i] != "*" or in_class):
            if pattern[i] == "\\":
                i += 1 if i + 1 == len(pattern) else 2
                continue
            if pattern[i] == "[":
                in_class = True
            elif pattern[i] == "]":
                in_class = False
            i += 1
        if start == i:
            return
        yield pattern[start:i]


def _check_class(chunk: str, i: int) -> int:
    """Checks the class whose "[" is before `i`; returns the index after its "]"."""
    if chunk[i:i + 1] == "^":
        i += 1
    members = 0
    while not (chunk[i:i + 1] == "]" and members):
        i = _class_member(chunk, i)
        if chunk[i] == "-":
            i = _class_member(chunk, i + 1)
        members += 1
    return i + 1


def _class_member(chunk: str, i: int) -> int:
    """filepath.Match's getEsc: one possibly escaped character of a class,
    which must not be the class's end."""
    if i >= len(chunk) or chunk[i] in "-]":
        raise PatternError(BAD_PATTERN)
    if chunk[i] == "\\":
        i += 1
    i += 1
    if i >= len(chunk):
        raise PatternError(BAD_PATTERN)
    return i


# -- a list of patterns -------------------------------------------------------------

class PatternMatcher:
    """The patterns of a .dockerignore, checked for syntax, in their order."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns: list[Pattern] = []
        for text in patterns:
            text = trim_space(text)
            if not text:
                continue
            text = _clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                text = text[1:]
            _check_syntax(text)
            self.patterns.append(Pattern(text, exclusion))

    @property
    def exclusions(self) -> bool:
        """Whether any pattern is a "!" pattern."""
        return any(p.exclusion for p in self.patterns)

    def matches(self, file: str) -> bool:
        """Whether the file is excluded, looking at one parent directory
        only: the one as deep as each pattern. Patternmatcher deprecates this
        (**/dir misses dir's grandchildren), but the CLI still decides with it
        whether to keep the Dockerfile and .dockerignore."""
        matched = False
        parent = _dir(file)
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            # Only a "!" pattern can change an exclusion, and only a plain one
            # a non-exclusion.
            if pattern.exclusion != matched:
                continue
            match = pattern.match(file)
            if not match and parent != "." and len(pattern.dirs) <= len(parent_dirs):
                match = pattern.match("/".join(parent_dirs[:len(pattern.dirs)]))
            if match:
                matched = not pattern.exclusion
        return matched

    def matches_or_parent_matches(self, file: str) -> bool:
        """Whether the file is excluded: the last pattern that matches it or
        any of its parent directories decides."""
        matched = False
        parent = _dir(file)
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(file) or (parent != "." and _matches_a_parent(pattern, parent))
            if match:
                matched = not pattern.exclusion
        return matched

    def matches_using_parent_results(self, file: str,
                                     parent: MatchInfo = ()) -> tuple[bool, MatchInfo]:
        """The walk's matching, which knows its parent directory's results:
        whether the file is excluded, and the results to pass for its
        children if it is a directory. Without the parent's results, the
        parents are matched one by one, as in matches_or_parent_matches.

        With them, the answer can differ: a pattern that was skipped for the
        parent (a "!" pattern while nothing was excluded yet) counts as not
        matching it, so ["a/x", "!a"] excludes a/x here and not there."""
        if parent and len(parent) != len(self.patterns):
            raise PatternError("wrong number of values in parentMatched")
        matched = False
        info = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            # A pattern the parent matched matches its children: no need to look.
            match = bool(parent) and parent[i]
            if not match:
                if pattern.exclusion != matched:
                    continue
                match = pattern.match(file)
                if not match and not parent and _dir(file) != ".":
                    match = _matches_a_parent(pattern, _dir(file))
            info[i] = match
            if match:
                matched = not pattern.exclusion
        return matched, tuple(info)


def _matches_a_parent(pattern: Pattern, parent: str) -> bool:
    dirs = parent.split("/")
    return any(pattern.match("/".join(dirs[:n])) for n in range(1, len(dirs) + 1))


def matches(file: str, patterns: Sequence[str]) -> bool:
    """PatternMatcher(patterns).matches(file), the context's root excepted."""
    file = _clean(file)
    matcher = PatternMatcher(patterns)
    # Excluding the whole context makes no sense, so "." is never excluded.
    return file != "." and matcher.matches(file)


def matches_or_parent_matches(file: str, patterns: Sequence[str]) -> bool:
    """PatternMatcher(patterns).matches_or_parent_matches(file), the
    context's root excepted."""
    file = _clean(file)
    matcher = PatternMatcher(patterns)
    return file != "." and matcher.matches_or_parent_matches(file)


# -- the build context --------------------------------------------------------------

def trim_build_files_from_excludes(excludes: Sequence[str], dockerfile: str,
                                   dockerfile_from_stdin: bool = False) -> list[str]:
    """The patterns the CLI archives the context with: the user's, then
    "!.dockerignore" and "!<dockerfile>" for those of the two they exclude,
    since the daemon needs them (a Dockerfile given on stdin is not in the
    context). Patterns that do not compile count as not excluding."""
    excludes = list(excludes)
    if _quietly(matches, ".dockerignore", excludes):
        excludes.append("!.dockerignore")
    if _quietly(matches, dockerfile, excludes) and not dockerfile_from_stdin:
        excludes.append("!" + dockerfile)
    return excludes


def build_files_to_remove(excludes: Sequence[str], dockerfile: str) -> list[str]:
    """Those of the .dockerignore and the Dockerfile that the daemon deletes
    from a received context once it has read them: the ones the patterns
    exclude, as `COPY . /` must not see them."""
    return [f for f in (".dockerignore", dockerfile)
            if _quietly(matches_or_parent_matches, f, excludes)]


def _quietly(check: Callable[[str, Sequence[str]], bool], file: str,
             patterns: Sequence[str]) -> bool:
    try:
        return check(file, patterns)
    except PatternError:
        return False


class _Directory(NamedTuple):
    excluded: bool          # by the patterns, or because the walk never gets here
    match_info: MatchInfo   # the results its children are matched with
    pruned: bool            # the walk does not enter it


class ContextExcludes:
    """What the CLI leaves out of a context's archive, path by path, as
    go-archive's TarWithOptions decides while it walks the context: each
    path with its parent directory's results, and an excluded directory
    not entered at all unless a "!" pattern names something under it."""

    def __init__(self, excludes: Sequence[str]):
        self.matcher = PatternMatcher(excludes)
        self._directories: dict[str, _Directory] = {}

    def excluded(self, path: str) -> bool:
        """Whether the path is not in the archive: the patterns exclude it,
        or the walk never enters its directory. An excluded directory may
        still have files in the archive, but not its own entry."""
        path = _clean(path)
        if path == ".":
            return False
        parent = _dir(path)
        if parent != "." and self._directory(parent).pruned:
            return True
        return self._match(path, parent)[0]

    def prunes(self, directory: str) -> bool:
        """Whether nothing under the directory is in the archive."""
        directory = _clean(directory)
        return directory != "." and self._directory(directory).pruned

    def _directory(self, directory: str) -> _Directory:
        # Decided top down from the nearest known parent: in a walk, the
        # parent is always known already.
        unknown = []
        ancestor = directory
        while ancestor != "." and ancestor not in self._directories:
            unknown.append(ancestor)
            ancestor = _dir(ancestor)
        for d in reversed(unknown):
            self._directories[d] = self._decide(d)
        return self._directories[directory]

    def _decide(self, directory: str) -> _Directory:
        parent = _dir(directory)
        if parent != "." and self._directories[parent].pruned:
            return _Directory(excluded=True, match_info=(), pruned=True)
        excluded, info = self._match(directory, parent)
        return _Directory(excluded, info, pruned=excluded and not self._reopened(directory))

    def _match(self, path: str, parent: str) -> tuple[bool, MatchInfo]:
        parent_info = self._directory(parent).match_info if parent != "." else ()
        return self.matcher.matches_using_parent_results(path, parent_info)

    def _reopened(self, directory: str) -> bool:
        """Whether a "!" pattern may take back something under the excluded
        directory. Like docker, this only looks at the patterns' text: a "!"
        pattern reaches into the directory only if it starts with its path,
        so "!**/keep" takes back nothing from an excluded directory."""
        return any(p.exclusion and (p.cleaned + "/").startswith(directory + "/")
                   for p in self.matcher.patterns)


def walk_context(root: str, excludes: Sequence[str]) -> Iterator[str]:
    """The paths under `root` that the CLI puts in the context's archive, in
    its order (depth first, names sorted bytewise): relative, "/"-separated,
    directories without a trailing "/" and listed before their contents.
    Symbolic links are entries, never followed; a directory that cannot be
    read raises its OSError. Pass the excludes through
    trim_build_files_from_excludes first, as the CLI does."""
    rules = ContextExcludes(excludes)
    pending = [_entries(root, "")]
    while pending:
        entry = next(pending[-1], None)
        if entry is None:
            pending.pop()
            continue
        path, is_dir = entry
        if not rules.excluded(path):
            yield path
        if is_dir and not rules.prunes(path):
            pending.append(_entries(root, path))


def _entries(root: str, directory: str) -> Iterator[tuple[str, bool]]:
    """A directory's entries, sorted as Go's os.ReadDir sorts them: by the
    bytes of their names."""
    with os.scandir(os.path.join(root, directory)) as listing:
        entries = sorted(listing, key=lambda e: os.fsencode(e.name))
    for e in entries:
        path = f"{directory}/{e.name}" if directory else e.name
        yield path, e.is_dir(follow_symlinks=False)


# -- Go's path functions --------------------------------------------------------------

def _clean(path: str) -> str:
    """Go's path.Clean: the shortest equivalent path ("//x" is "/x", which
    posixpath.normpath keeps)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part == ".." and rooted:
            continue
        else:
            parts.append(part)
    cleaned = "/".join(parts)
    return "/" + cleaned if rooted else cleaned or "."


def _dir(path: str) -> str:
    """Go's path.Dir: all but the last element, cleaned; "." for none."""
    return _clean(path[:path.rfind("/") + 1])

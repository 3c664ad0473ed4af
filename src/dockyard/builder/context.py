"""The build context as the daemon holds it: the tar stream of POST /build
unpacked into a directory, and the lookups the classic builder makes in it.

The body is read as dockerd 20.10 reads it (remotecontext.FromArchive): its
compression is sniffed (gzip, bzip2, xz), then Go's archive/tar walks it and
chrootarchive.Untar writes every entry, owners, modes and symlinks as they
come. Two details of Go's reader matter to clients:

- the stream may end anywhere in the padding after the last file's data,
  with no end-of-archive blocks: the docker CLI sends exactly that when it
  adds a Dockerfile read from stdin or from outside the context (`-f -`);
- a body that ends inside a header or inside a file's data is refused with
  io.ErrUnexpectedEOF's text, "unexpected EOF" (a short non-tar body such as
  a bare Dockerfile gets this too), and a block that is not a header with
  "archive/tar: invalid tar header".

Python's tarfile in stream mode wants the padding and stops quietly at a
damaged header, so `_Framing` follows the tar blocks itself while passing
the bytes on, and gives tarfile what Go's reader would have accepted.

Paths in the context are resolved the way the builder does
(symlink.FollowSymlinkInScope): a symlink, absolute or relative, is
followed as if the context were "/", so nothing is ever read from outside.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
from typing import BinaryIO, NamedTuple

from dockyard import errdefs
from dockyard.builder import dockerignore
from dockyard.linux import inroot
from dockyard.storage import archive, compression

DEFAULT_DOCKERFILE = "Dockerfile"
_BLOCK = 512
UNEXPECTED_EOF = "unexpected EOF"                    # Go's io.ErrUnexpectedEOF
INVALID_HEADER = "archive/tar: invalid tar header"   # Go's tar.ErrHeader


class ContextError(errdefs.System):
    """The body is not a tar stream dockerd would accept (HTTP 500 there)."""


class DockerfileNotFound(errdefs.System):
    """dockerd answers 500 for a missing Dockerfile, not 404."""


class SourceNotFound(errdefs.NotFound):
    """A COPY/ADD source that is not in the context."""


class ForbiddenPath(errdefs.InvalidParameter):
    """A COPY/ADD source that climbs out of the context with "..". """


# --- receiving the stream ----------------------------------------------------------

def receive(stream: BinaryIO, directory: str) -> None:
    """Unpack the build context `stream` (read in chunks, possibly
    compressed) into the existing `directory`. An empty body is an empty
    context, as in dockerd."""
    destfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        framed = io.BufferedReader(_Framing(compression.open_decompressed(stream)),
                                   buffer_size=1 << 20)
        if not framed.peek(1):
            return
        archive.Extractor(destfd, directory).extract(framed)
    except (_FramingError, compression.CorruptStream) as e:
        raise ContextError(str(e) if isinstance(e, _FramingError) else UNEXPECTED_EOF) from e
    except errdefs.InvalidParameter as e:
        # tarfile's own complaint about a stream _Framing let through: it
        # can only be a short read, which Go reports as an unexpected EOF.
        cause = e.__cause__
        if isinstance(cause, _FramingError):
            raise ContextError(str(cause)) from e
        raise ContextError(UNEXPECTED_EOF) from e
    except OSError as e:  # an entry that cannot be made (a dangling link in its way)
        raise ContextError(str(e)) from e
    finally:
        os.close(destfd)


class _FramingError(Exception):
    pass


class _Framing(io.RawIOBase):
    """Passes a tar stream through unchanged while following its blocks:

    header (512 bytes) → data (size rounded up to 512) → header ...

    EOF inside a header or inside data raises "unexpected EOF"; EOF inside
    the padding after data is the end of the archive, and the missing
    padding and two zero blocks are supplied for tarfile. A header whose
    checksum is wrong raises Go's "invalid tar header". After the first zero
    block everything is passed on unexamined, as Go stops reading there.
    """

    def __init__(self, source: BinaryIO):
        self._source = source
        self._header = b""       # the part of the current header read so far
        self._data_left = 0      # bytes of the current entry's data still to come
        self._pad_left = 0       # bytes of padding after it
        self._pax_size: int | None = None
        self._pax = b""          # a PAX header's records, to learn a "size" override
        self._in_pax = False
        self._tail = b""         # what we supply after an early, acceptable EOF
        self._done = False       # past the end-of-archive block

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._tail:
            n = min(len(b), len(self._tail))
            b[:n] = self._tail[:n]
            self._tail = self._tail[n:]
            return n
        n = self._source.readinto(b)
        if not n:
            self._at_eof()
            return self.readinto(b) if self._tail else 0
        if not self._done:
            self._follow(memoryview(b)[:n])
        return n

    def _at_eof(self) -> None:
        if self._done:
            return
        self._done = True
        if self._header or self._data_left:
            raise _FramingError(UNEXPECTED_EOF)
        self._tail = b"\0" * (self._pad_left + 2 * _BLOCK)

    def _follow(self, view: memoryview) -> None:
        while view and not self._done:
            if self._data_left:
                n = min(self._data_left, len(view))
                if self._in_pax:
                    self._pax += bytes(view[:n])
                self._data_left -= n
                view = view[n:]
                if not self._data_left and self._in_pax:
                    self._pax_size = _pax_size(self._pax)
                    self._in_pax, self._pax = False, b""
            elif self._pad_left:
                n = min(self._pad_left, len(view))
                self._pad_left -= n
                view = view[n:]
            else:
                n = min(_BLOCK - len(self._header), len(view))
                self._header += bytes(view[:n])
                view = view[n:]
                if len(self._header) == _BLOCK:
                    self._start_entry(self._header)
                    self._header = b""

    def _start_entry(self, header: bytes) -> None:
        if header == b"\0" * _BLOCK:
            self._done = True
            return
        try:
            checksum = tarfile.nti(header[148:156])
            size = tarfile.nti(header[124:136])
        except tarfile.HeaderError:
            raise _FramingError(INVALID_HEADER) from None
        if checksum not in tarfile.calc_chksums(header):
            raise _FramingError(INVALID_HEADER)
        kind = header[156:157]
        if kind in (b"x", b"g"):
            self._in_pax = kind == b"x"
        elif self._pax_size is not None:
            size, self._pax_size = self._pax_size, None
        if kind in (b"1", b"2", b"3", b"4", b"5", b"6"):
            size = 0  # links, devices, directories and fifos carry no data
        self._data_left = size
        self._pad_left = -size % _BLOCK
        if not size and self._in_pax:
            self._in_pax = False


def _pax_size(records: bytes) -> int | None:
    """The "size" record of a PAX extended header (files over 8 GiB)."""
    for line in records.split(b"\n"):
        _, _, record = line.partition(b" ")
        key, _, value = record.partition(b"=")
        if key == b"size" and value.isdigit():
            return int(value)
    return None


# --- the Dockerfile ----------------------------------------------------------------

class Dockerfile(NamedTuple):
    name: str   # as the builder names it in messages and removes it
    path: str   # on the host, inside the context directory


def locate_dockerfile(directory: str, name: str = "") -> Dockerfile:
    """The Dockerfile the `dockerfile` query parameter names (a path
    relative to the context, "Dockerfile" by default), resolved inside the
    context; for the default name a lowercase "dockerfile" also does."""
    name = name or DEFAULT_DOCKERFILE
    path = inroot.secure_join(directory, name)
    if not os.path.exists(path):
        if name == DEFAULT_DOCKERFILE:
            lower = inroot.secure_join(directory, name.lower())
            if os.path.exists(lower):
                return _check_not_empty(Dockerfile(name.lower(), lower))
        raise DockerfileNotFound(f"Cannot locate specified Dockerfile: {name}")
    return _check_not_empty(Dockerfile(name, path))


def _check_not_empty(dockerfile: Dockerfile) -> Dockerfile:
    try:
        with open(dockerfile.path, "rb") as f:
            first = f.read(1)
    except IsADirectoryError as e:
        raise errdefs.System(f"unexpected error reading Dockerfile: read {dockerfile.path}: "
                             "is a directory") from e
    if not first:
        raise errdefs.InvalidParameter(f"the Dockerfile ({dockerfile.name}) cannot be empty")
    return dockerfile


def remove_build_files(directory: str, dockerfile_name: str) -> list[str]:
    """Once the Dockerfile is read, delete it and the .dockerignore from the
    context where the .dockerignore's patterns exclude them (the daemon does
    not filter the context otherwise: the CLI did). Returns what was removed."""
    excludes = dockerignore.read_dockerignore(directory)
    if not excludes:
        return []
    removed = []
    for name in dockerignore.build_files_to_remove(excludes, dockerfile_name):
        path = inroot.secure_join(directory, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)  # removes links, never follows them
        else:
            os.unlink(path)
        removed.append(name)
    return removed


# --- COPY/ADD sources --------------------------------------------------------------

def resolve_source(directory: str, source: str) -> list[str]:
    """The context paths (relative, "/"-separated, symlinks not yet
    followed) a COPY/ADD source names: one for a plain path, those that
    match for a pattern (Go's filepath.Match, tried against every path in
    the context), possibly none. A leading "/" or "./" is dropped: sources
    are relative to the context.

    Use `follow` for where each one's contents are."""
    if source.startswith("/") and len(source) > 1:
        source = source[1:]
    source = source.removeprefix("./")
    if has_wildcards(source):
        return [rel for rel in _walk(directory) if go_match(source, rel)]
    follow(directory, source)
    return [source]


def follow(directory: str, rel: str) -> str:
    """The host path of the context path `rel` with its symlinks followed
    inside the context. A path that leaves the context lexically is
    forbidden; one that does not exist (a dangling link, or a link whose
    target is outside and so not in the context) is not found."""
    cleaned = posixpath.normpath(rel) if rel else "."
    if cleaned == ".." or cleaned.startswith("../"):
        # dockerd's message, with the scoped path that failed to resolve: none.
        raise ForbiddenPath(f"forbidden path outside the build context: {rel} ()")
    try:
        path = inroot.secure_join(directory, rel)
        os.stat(path)
    except FileNotFoundError as e:
        raise SourceNotFound("file not found in build context or excluded by .dockerignore: "
                             f"stat {rel}: file does not exist") from e
    except OSError as e:  # a symlink loop, a component that is not a directory
        raise SourceNotFound("file not found in build context or excluded by .dockerignore: "
                             f"stat {rel}: {os.strerror(e.errno or 0).lower()}") from e
    return path


def has_wildcards(source: str) -> bool:
    """The builder's containsWildcards: "*", "?" or "[" not escaped by "\\"."""
    i = 0
    while i < len(source):
        if source[i] == "\\":
            i += 1
        elif source[i] in "*?[":
            return True
        i += 1
    return False


def _walk(directory: str):
    """Every path in the context, Go's filepath.Walk order, links not followed."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in archive.walk_children(fd, ".", ""):
            yield entry.path
    finally:
        os.close(fd)


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: "*" and "?" never match "/", classes "[a-z]" and
    "[^a-z]", "\\" escapes. A malformed pattern matches nothing (the builder
    ignores Match's error)."""
    try:
        return _match(pattern, name)
    except _BadPattern:
        return False


class _BadPattern(Exception):
    pass


def _match(pattern: str, name: str) -> bool:
    if not pattern:
        return not name
    c = pattern[0]
    if c == "*":
        rest = pattern.lstrip("*")
        for i in range(len(name) + 1):
            if _match(rest, name[i:]):
                return True
            if i < len(name) and name[i] == "/":
                break
        return False
    if not name:
        return False
    if c == "?":
        return name[0] != "/" and _match(pattern[1:], name[1:])
    if c == "[":
        ok, end = _match_class(pattern, name[0])
        return ok and _match(pattern[end:], name[1:])
    if c == "\\":
        if len(pattern) < 2:
            raise _BadPattern
        return name[0] == pattern[1] and _match(pattern[2:], name[1:])
    return name[0] == c and _match(pattern[1:], name[1:])


def _match_class(pattern: str, ch: str) -> tuple[bool, int]:
    """Whether `ch` is in the class at the start of `pattern`, and where the
    class ends."""
    i = 1
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    matched = False
    first = True
    while True:
        if i < len(pattern) and pattern[i] == "]" and not first:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        if lo <= ch <= hi:
            matched = True
        first = False
    return matched != negated, i


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise _BadPattern
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise _BadPattern
    return pattern[i], i + 1


"""The storage driver interface: what the registry needs from a place to keep bytes.

A driver stores files under paths and knows nothing of blobs, manifests or
repositories (that is `layout.py` and `storage.py`). The interface follows
distribution's `StorageDriver`, trimmed to what the registry uses, so that a
driver over an object store (S3 through boto3) is as natural as the filesystem:

Paths
    Absolute, "/"-separated, of components `[A-Za-z0-9_-][A-Za-z0-9._-]*`
    (so never "." or "..", and never a dot-file: names starting with a dot
    are the driver's own, such as temp files); anything else is `InvalidPath`. There are no empty
    directories: a directory exists while some file exists below it (on a
    filesystem, empty directories are pruned or ignored; in S3 they never were).

Whole files
    `get_content(path)` returns the bytes; `put_content(path, data)` replaces
    them atomically: a reader sees the old content or the new, never a mix, and
    once it returns the data is durable. For small files (links, records).

Streams
    `reader(path, offset)` opens a file for reading from `offset` (a binary
    file object: read(n), close(); `PathNotFound` if absent, `InvalidOffset`
    beyond the end). `writer(path, append)` returns a `FileWriter` that streams
    into `path` (truncating unless `append`); the bytes may be visible at
    `path` before commit, so writers are only opened in the uploads area. The
    writer's lifecycle:

        w = driver.writer(path)           # or writer(path, append=True) to resume
        w.write(chunk) ...                # any number of times; w.size grows
        w.close()                         # keep what was written, to append later
        -- or --
        w.commit()                        # durable (fsync'd) and complete, then closed
        w.cancel()                        # discard everything written at path

    After commit() or close(), `stat(path).size == w.size`.

Metadata
    `stat(path)` → `FileInfo` (size, mtime, is_dir); `list(path)` → the full
    paths of the direct children of a directory, sorted; both raise
    `PathNotFound`. A file's mtime is when it was last written (put, or a
    writer's close or commit), as seconds since the epoch; upload purging
    ages sessions by it.

Moving and deleting
    `move(src, dst)` renames a file, replacing `dst`; a reader sees `dst` either
    absent/old or complete, never partial (a rename on a filesystem, a
    server-side copy then delete in S3). This is how a verified upload becomes
    a blob. `delete(path)` removes a file or a whole directory tree.

Serving
    `local_path(path)` is the path of the file on this host when there is one
    (the filesystem driver), so blobs can be sent with sendfile(2); others
    return None and are streamed through `reader()`. An S3 driver would
    stream too (or, later, redirect to a presigned URL).

Drivers are synchronous and thread-safe: the HTTP layer calls them from worker
threads, so a slow disk or network never blocks the event loop.
`tests/unit/registry/test_driver_contract.py` is the shared test suite every
driver must pass.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import BinaryIO

from dockyard import errdefs

_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)


class PathNotFound(errdefs.NotFound):
    pass


class InvalidPath(errdefs.InvalidParameter):
    pass


class InvalidOffset(errdefs.InvalidParameter):
    pass


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


def check_path(path: str) -> str:
    """`path` if it is a valid driver path, else InvalidPath."""
    if not path.startswith("/") or path == "/":
        raise InvalidPath(f"invalid storage path {path!r}")
    for part in path[1:].split("/"):
        if not _COMPONENT.fullmatch(part):
            raise InvalidPath(f"invalid storage path {path!r}")
    return path


def check_dir_path(path: str) -> str:
    """Like check_path, but "/" (the root) is allowed: directories can be listed."""
    return path if path == "/" else check_path(path)


class FileWriter(abc.ABC):
    """A stream into one path; see the module docstring for its lifecycle."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes in the file so far (including what was there when appending)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Stop writing; what was written stays, to be appended to later."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the content durable and complete; then closed."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Discard the file; then closed."""


class StorageDriver(abc.ABC):
    """Files under paths; see the module docstring for the contract."""

    name: str = "driver"

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def put_content(self, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    @abc.abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abc.abstractmethod
    def list(self, path: str) -> list[str]: ...

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None: ...

    @abc.abstractmethod
    def delete(self, path: str) -> None: ...

    def local_path(self, path: str) -> str | None:
        return None

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except PathNotFound:
            return False
        return True

"""Crash-safe writes: temp file + fsync + rename + fsync of the directory.

rename(2) within one filesystem is atomic: a reader (or a daemon starting after
a crash) sees either the old file or the new one, never half of each. The fsync
of the file before the rename makes sure the new name never points at data the
kernel has not yet written; the fsync of the directory makes the rename itself
durable.

`durable=False` keeps the rename and drops both fsyncs: for records that are
only hints (a crash may leave the old file, or an empty one, which their
readers skip), written where a few milliseconds each would show.
"""

from __future__ import annotations

import contextlib
import json
import os

TYPE_CHECKING = False  # typing (~4 ms) and tempfile (~10 ms, with random and shutil)
if TYPE_CHECKING:       # are imported when needed: the shim imports this module
    from typing import Any, Iterator


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str, mode: int = 0o644, durable: bool = True) -> Iterator[Any]:
    """Yield a binary file that replaces `path` only if the block succeeds."""
    import tempfile

    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(directory)


def write_bytes(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    with atomic_file(path, mode, durable) as f:
        f.write(data)


def write_json(path: str, obj: Any) -> None:
    write_bytes(path, json.dumps(obj, indent=None, separators=(",", ":")).encode())


def read_json(path: str) -> Any:
    with open(path, "rb") as f:
        return json.load(f)


def remove_stale_temps(directory: str) -> None:
    """Delete temp files a crash left behind in `directory` (startup repair)."""
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))

"""The content store: blobs addressed by their digest.

A blob is written in three steps, as containerd's content writer does: bytes are
streamed into `content/ingest/<id>/data` and hashed on the way; on commit the
digest is compared with the one the caller expected; only then is the file
fsynced, made read-only and renamed to `content/blobs/sha256/<hex>`. A reader
therefore never sees a blob whose bytes do not match its name, and a crash
leaves at most an ingest directory, which startup removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import BinaryIO, Iterator

from dockyard import errdefs
from dockyard.store.atomic import fsync_dir
from dockyard.store.layout import Layout

CHUNK = 1 << 20


class DigestMismatch(errdefs.InvalidParameter):
    pass


class NoSuchBlob(errdefs.NotFound):
    pass


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Writer:
    """An open ingest: write() bytes, then commit() them under their digest."""

    def __init__(self, store: "ContentStore"):
        self._store = store
        self._dir = tempfile.mkdtemp(dir=store.layout.ingest)
        self._path = os.path.join(self._dir, "data")
        self._file = open(self._path, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def copy_from(self, src: BinaryIO) -> None:
        while chunk := src.read(CHUNK):
            self.write(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        digest = self.digest
        if expected is not None and expected != digest:
            self.abort()
            raise DigestMismatch(f"digest mismatch: expected {expected}, got {digest}")
        self._file.flush()
        os.fsync(self._file.fileno())
        os.fchmod(self._file.fileno(), 0o444)
        self._file.close()
        final = self._store.layout.blob(digest)
        if os.path.exists(final):
            # Someone committed the same bytes first; ours are identical, drop them.
            self.abort()
            return digest
        os.rename(self._path, final)
        fsync_dir(self._store.layout.blobs)
        shutil.rmtree(self._dir, ignore_errors=True)
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ContentStore:
    def __init__(self, layout: Layout):
        self.layout = layout

    def repair(self) -> None:
        """Remove ingests a crash left half-written."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.layout.ingest):
                shutil.rmtree(os.path.join(self.layout.ingest, name), ignore_errors=True)

    def path(self, digest: str) -> str:
        return self.layout.blob(digest)

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.layout.blob(digest))

    def size(self, digest: str) -> int:
        return os.stat(self._existing(digest)).st_size

    def _existing(self, digest: str) -> str:
        path = self.layout.blob(digest)
        if not os.path.exists(path):
            raise NoSuchBlob(f"blob {digest} not found")
        return path

    def read(self, digest: str) -> bytes:
        with open(self._existing(digest), "rb") as f:
            return f.read()

    def open(self, digest: str) -> BinaryIO:
        return open(self._existing(digest), "rb")

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        """A writer that is aborted unless the block commits it."""
        w = Writer(self)
        try:
            yield w
        finally:
            if not w._file.closed:
                w.abort()

    def put(self, data: bytes, expected: str | None = None) -> str:
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.blob(digest))

    def walk(self) -> Iterator[str]:
        for name in os.listdir(self.layout.blobs):
            if len(name) == 64:
                yield "sha256:" + name

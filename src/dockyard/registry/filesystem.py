"""The filesystem storage driver: driver paths are files under one directory.

Whole files are written as everywhere in dockyard (`store/atomic.py`): a temp
file, fsync, rename over the name, fsync of the directory. Temp files live in
`<root>/.tmp/`, on the same filesystem as everything else (so rename(2) is
atomic) but out of sight of `list()`. Streams (`writer()`) write in place; the
registry opens them only in its uploads area and makes a blob of one by
`move()`, an fsync'd file renamed into place, which readers see whole or not
at all. Directories that become empty are removed, as the driver contract has
no empty directories; a writer racing that removal retries once it finds its
parent gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from typing import BinaryIO

from dockyard.registry.driver import (FileInfo, FileWriter, InvalidOffset, PathNotFound,
                                      StorageDriver, check_dir_path, check_path)
from dockyard.store.atomic import fsync_dir

_ATTEMPTS = 5  # parent directories re-made at most this often against a racing prune


class _Writer(FileWriter):
    def __init__(self, driver: "FilesystemDriver", path: str, append: bool):
        self._driver = driver
        self._path = path
        self._file = driver._open_creating(path, "ab" if append else "wb")
        self._size = self._file.tell()

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._size += len(data)
        return len(data)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def cancel(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        self._driver._prune(os.path.dirname(self._path))


class FilesystemDriver(StorageDriver):
    name = "filesystem"

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._tmp = os.path.join(self.root, ".tmp")
        os.makedirs(self._tmp, exist_ok=True)

    def _real(self, path: str) -> str:
        return os.path.join(self.root, check_path(path)[1:])

    def _open_creating(self, real: str, mode: str):
        for _ in range(_ATTEMPTS):
            os.makedirs(os.path.dirname(real), exist_ok=True)
            try:
                return open(real, mode)
            except FileNotFoundError:
                continue  # a prune removed the parent after makedirs; make it again
        raise FileNotFoundError(errno.ENOENT, "parent directory keeps vanishing", real)

    def _prune(self, directory: str) -> None:
        """Remove `directory` and its parents while they are empty (never the root)."""
        while directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return  # not empty (or gone): its parents are not empty either
            directory = os.path.dirname(directory)

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._real(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise PathNotFound(f"{path} not found") from e

    def put_content(self, path: str, data: bytes) -> None:
        real = self._real(path)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._rename_into(tmp, real)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _rename_into(self, src: str, real: str) -> None:
        for _ in range(_ATTEMPTS):
            os.makedirs(os.path.dirname(real), exist_ok=True)
            try:
                os.replace(src, real)
                break
            except FileNotFoundError:
                if not os.path.exists(src):
                    raise
        else:
            raise FileNotFoundError(errno.ENOENT, "parent directory keeps vanishing", real)
        fsync_dir(os.path.dirname(real))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self._real(path), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise PathNotFound(f"{path} not found") from e
        size = os.fstat(f.fileno()).st_size
        if offset < 0 or offset > size:
            f.close()
            raise InvalidOffset(f"offset {offset} outside {path} ({size} bytes)")
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return _Writer(self, self._real(path), append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._real(path))
        except (FileNotFoundError, NotADirectoryError) as e:
            raise PathNotFound(f"{path} not found") from e
        is_dir = os.path.isdir(self._real(path))
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        check_dir_path(path)
        real = self.root if path == "/" else self._real(path)
        try:
            names = os.listdir(real)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise PathNotFound(f"{path} not found") from e
        prefix = path.rstrip("/")
        return sorted(f"{prefix}/{n}" for n in names if not n.startswith("."))

    def move(self, src: str, dst: str) -> None:
        real_src, real_dst = self._real(src), self._real(dst)
        if not os.path.isfile(real_src):
            raise PathNotFound(f"{src} not found")
        self._rename_into(real_src, real_dst)
        self._prune(os.path.dirname(real_src))

    def delete(self, path: str) -> None:
        real = self._real(path)
        try:
            if os.path.isdir(real) and not os.path.islink(real):
                shutil.rmtree(real)
            else:
                os.unlink(real)
        except FileNotFoundError as e:
            raise PathNotFound(f"{path} not found") from e
        self._prune(os.path.dirname(real))

    def local_path(self, path: str) -> str | None:
        return self._real(path)

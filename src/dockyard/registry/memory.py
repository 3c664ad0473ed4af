"""An in-memory storage driver: the contract with nothing but a dict behind it.

As distribution's `inmemory` driver, it is here as an example and for tests: it
runs the shared driver suite and the HTTP tests that must not depend on a
filesystem (it has no `local_path`, so blobs are streamed as an S3 driver's
would be). Everything is lost when the process ends.
"""

from __future__ import annotations

import io
import threading
import time
from typing import BinaryIO

from dockyard.registry.driver import (FileInfo, FileWriter, InvalidOffset, PathNotFound,
                                      StorageDriver, check_dir_path, check_path)


class _Writer(FileWriter):
    def __init__(self, driver: "MemoryDriver", path: str, append: bool):
        self._driver = driver
        self._path = path
        with driver._lock:
            old = driver._files.get(path, (b"", 0.0))[0] if append else b""
            self._buffer = bytearray(old)
            driver._files[path] = (bytes(self._buffer), time.time())

    @property
    def size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def close(self) -> None:
        with self._driver._lock:
            self._driver._files[self._path] = (bytes(self._buffer), time.time())

    commit = close

    def cancel(self) -> None:
        with self._driver._lock:
            self._driver._files.pop(self._path, None)


class MemoryDriver(StorageDriver):
    name = "inmemory"

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def get_content(self, path: str) -> bytes:
        with self._lock:
            try:
                return self._files[check_path(path)][0]
            except KeyError as e:
                raise PathNotFound(f"{path} not found") from e

    def put_content(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[check_path(path)] = (bytes(data), time.time())

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        data = self.get_content(path)
        if offset < 0 or offset > len(data):
            raise InvalidOffset(f"offset {offset} outside {path} ({len(data)} bytes)")
        f = io.BytesIO(data)
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return _Writer(self, check_path(path), append)

    def _children(self, path: str) -> set[str]:
        prefix = "/" if path == "/" else path + "/"
        return {prefix + p[len(prefix):].split("/", 1)[0]
                for p in self._files if p.startswith(prefix)}

    def stat(self, path: str) -> FileInfo:
        check_path(path)
        with self._lock:
            if path in self._files:
                data, mtime = self._files[path]
                return FileInfo(path, len(data), mtime, False)
            if self._children(path):
                return FileInfo(path, 0, 0.0, True)
        raise PathNotFound(f"{path} not found")

    def list(self, path: str) -> list[str]:
        check_dir_path(path)
        with self._lock:
            children = self._children(path)
        if not children and path != "/":
            raise PathNotFound(f"{path} not found")
        return sorted(children)

    def move(self, src: str, dst: str) -> None:
        check_path(src), check_path(dst)
        with self._lock:
            try:
                self._files[dst] = self._files.pop(src)
            except KeyError as e:
                raise PathNotFound(f"{src} not found") from e

    def delete(self, path: str) -> None:
        check_path(path)
        with self._lock:
            doomed = [p for p in self._files if p == path or p.startswith(path + "/")]
            if not doomed:
                raise PathNotFound(f"{path} not found")
            for p in doomed:
                del self._files[p]

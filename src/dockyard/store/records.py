"""Records: one JSON document per object, in its own directory, with an index in memory.

`<dir>/<id>/<filename>` is rewritten whole and atomically on every change, so a
crash leaves either the old record or the new one. The in-memory dict is rebuilt
from disk at start; the disk stays the truth.
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import Any, Iterator

from dockyard.store import atomic


class RecordStore:
    def __init__(self, directory: str, filename: str):
        self.directory = directory
        self.filename = filename
        self._lock = threading.Lock()
        os.makedirs(directory, exist_ok=True)

    def path(self, record_id: str) -> str:
        return os.path.join(self.directory, record_id, self.filename)

    def dir(self, record_id: str) -> str:
        return os.path.join(self.directory, record_id)

    def load_all(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every readable record; a directory without one is a half-made object
        (a crash between mkdir and the first write) and is yielded as None."""
        for record_id in sorted(os.listdir(self.directory)):
            path = self.path(record_id)
            atomic.remove_stale_temps(self.dir(record_id))
            try:
                yield record_id, atomic.read_json(path)
            except (FileNotFoundError, ValueError):
                yield record_id, None

    def save(self, record_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            os.makedirs(self.dir(record_id), exist_ok=True)
            atomic.write_json(self.path(record_id), record)

    def delete(self, record_id: str) -> None:
        """Remove the record first (so a crash mid-way leaves no record of a
        half-removed object), then the rest of its directory."""
        with self._lock:
            try:
                os.unlink(self.path(record_id))
            except FileNotFoundError:
                pass
            shutil.rmtree(self.dir(record_id), ignore_errors=True)

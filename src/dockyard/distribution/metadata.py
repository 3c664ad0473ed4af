"""What pushes and pulls learn about where a layer lives, kept across restarts.

dockerd's v2 metadata service: for each diff_id, the blobs it went to or came
from a registry as, each with the repository that holds it. A push reads it
to ask the registry before sending anything ("Layer already exists", or
"Mounted from <repo>" when another repository of the same registry has the
blob), and to know what an uncompressed local layer compressed to last time.

    <data-root>/images/distribution/
      v2metadata-by-diffid/sha256/<hex>   [{"Digest", "SourceRepository", "Size",
                                            "MediaType"}, ...], oldest first

`SourceRepository` is the registry host and path ("127.0.0.1:5000/app",
"docker.io/library/busybox"), as dockerd writes it. dockerd also keeps the
reverse index, diffid-by-digest; nothing here asks that question, so there
is none. A diff_id's file is read the first time a push or pull asks about
it, not at start: a daemon with many layers starts no slower.

Each file is replaced atomically (temp + rename) but not fsynced: a push
writes one per layer, and an fsync each would show in its time. A file that
cannot be read back (emptied or torn by a crash, edited by hand) is skipped:
what it knew is only a shortcut, and the next push or pull records it again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass

from dockyard.store import atomic

log = logging.getLogger(__name__)

# Entries kept per diff_id, the oldest dropped first (dockerd's maxMetadata).
MAX_PER_DIFF_ID = 50


@dataclass(frozen=True)
class V2Metadata:
    """One blob a layer was pushed or pulled as, and the repository holding it."""
    Digest: str
    SourceRepository: str
    Size: int = 0
    MediaType: str = ""

    @property
    def registry(self) -> str:
        return self.SourceRepository.partition("/")[0]

    @property
    def path(self) -> str:
        return self.SourceRepository.partition("/")[2]


def source_repository(registry: str, path: str) -> str:
    return f"{registry}/{path}"


class V2MetadataStore:
    """diff_id -> the V2Metadata known for it. `root` None keeps it in memory
    only (a service without a data root, as some tests build it)."""

    def __init__(self, root: str | None):
        self.root = root
        self._by_diff_id: dict[str, list[V2Metadata]] = {}  # read so far
        self._lock = threading.Lock()
        if root is not None:
            os.makedirs(self._dir, mode=0o700, exist_ok=True)
            atomic.remove_stale_temps(self._dir)

    @property
    def _dir(self) -> str:
        return os.path.join(self.root, "v2metadata-by-diffid", "sha256")

    def _file(self, diff_id: str) -> str:
        algo, _, hexpart = diff_id.partition(":")
        if algo != "sha256" or len(hexpart) != 64 or not _is_hex(hexpart):
            raise ValueError(f"not a sha256 diff_id: {diff_id!r}")
        return os.path.join(self._dir, hexpart)

    def _entries(self, diff_id: str) -> list[V2Metadata]:
        """What is known of `diff_id`, read from its file the first time (lock held)."""
        if diff_id not in self._by_diff_id:
            entries: list[V2Metadata] = []
            if self.root is not None:
                try:
                    entries = _read_entries(self._file(diff_id))
                except ValueError as e:
                    log.warning("layer metadata: %s", e)
            self._by_diff_id[diff_id] = entries
        return self._by_diff_id[diff_id]

    def get(self, diff_id: str) -> list[V2Metadata]:
        """Newest first: the blob a layer went as last is the likeliest still there."""
        with self._lock:
            return list(reversed(self._entries(diff_id)))

    def add(self, diff_id: str, entry: V2Metadata) -> None:
        """Remember (or refresh, as newest) that `diff_id` is `entry.Digest` in
        `entry.SourceRepository`."""
        with self._lock:
            old = self._entries(diff_id)
            entries = ([e for e in old if not _same(e, entry)] + [entry])[-MAX_PER_DIFF_ID:]
            if entries != old:
                self._save(diff_id, entries)

    def remove(self, diff_id: str, digest: str, repository: str) -> None:
        """Forget one blob in one repository (a mount from it failed)."""
        with self._lock:
            old = self._entries(diff_id)
            entries = [e for e in old if (e.Digest, e.SourceRepository) != (digest, repository)]
            if entries != old:
                self._save(diff_id, entries)

    def _save(self, diff_id: str, entries: list[V2Metadata]) -> None:
        self._by_diff_id[diff_id] = entries
        if self.root is None:
            return
        try:
            path = self._file(diff_id)
            if entries:
                # Not fsynced: a push writes one per layer, and a record a
                # crash empties is skipped like a torn one (a shortcut lost).
                atomic.write_bytes(path, json.dumps([asdict(e) for e in entries]).encode(),
                                   0o600, durable=False)
            else:
                os.unlink(path)
        except (OSError, ValueError) as e:
            # A shortcut lost, not a push failed: the registry is still asked.
            log.warning("recording where layer %s lives: %s", diff_id, e)


def _same(a: V2Metadata, b: V2Metadata) -> bool:
    return (a.Digest, a.SourceRepository) == (b.Digest, b.SourceRepository)


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def _read_entries(path: str) -> list[V2Metadata]:
    """The entries of one file; none if it is unreadable or not what we write."""
    try:
        doc = atomic.read_json(path)
        return [V2Metadata(Digest=str(e["Digest"]), SourceRepository=str(e["SourceRepository"]),
                           Size=int(e.get("Size", 0)), MediaType=str(e.get("MediaType", "")))
                for e in doc]
    except FileNotFoundError:
        return []  # nothing recorded yet
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("ignoring unreadable layer metadata %s: %s", path, e)
        return []

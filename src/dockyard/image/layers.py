"""The layer store: one record per layer chain, each backed by a committed snapshot.

A layer arrives as a blob (compressed or not). Registering it unpacks it once
into an overlay snapshot named by its chain ID, so every image that shares the
same first layers shares their snapshots. The record keeps the blob descriptor so
that `save` can hand out the exact layer again and prove it with its diff_id.

Write order, for crash safety: the blob is in the content store before the
snapshot is prepared; the snapshot is committed under its chain ID before the
record is written. Startup (`repair`) removes what a crash left between steps:
extraction snapshots never committed, committed snapshots without a record.

A layer is removed (`release`) when no image needs it. A pull registers its
layers before the image that names them exists, so for that while it takes a
*hold* on the chain IDs and blobs it counts on (dockerd's layer references):
`release` leaves a held layer, and the blob of a held digest, in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

from dockyard import errdefs
from dockyard.image.content import ContentStore
from dockyard.storage.compression import open_decompressed
from dockyard.storage.layer import apply_layer, chain_ids
from dockyard.storage.snapshots import Snapshotter
from dockyard.store import atomic
from dockyard.store.layout import Layout

EXTRACT_PREFIX = "extract-"
# A build's working snapshots (COPY's new layer, a `--from` view): never
# wanted after the daemon that made them is gone.
SCRATCH_PREFIX = "build-"


class LayerMismatch(errdefs.InvalidParameter):
    pass


@dataclass
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None  # chain ID of the layer below
    blob_digest: str  # the blob in the content store this layer was unpacked from
    media_type: str
    blob_size: int
    size: int  # bytes of regular files once unpacked


class _HashingReader:
    """Passes reads through while hashing them: the diff_id of a layer is the
    sha256 of its uncompressed tar, so it is computed as the tar is unpacked."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        # tarfile stops at the end-of-archive blocks; the padding after them is
        # still part of the bytes the diff_id covers.
        while self.read(1 << 20):
            pass


class LayerStore:
    def __init__(self, layout: Layout, content: ContentStore, snapshots: Snapshotter):
        self.layout = layout
        self.content = content
        self.snapshots = snapshots
        self._layers: dict[str, Layer] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._mutex = threading.Lock()
        # Chain IDs and blob digests held by pulls, counted (two pulls may
        # hold the same base). Taken and checked under one lock, so a hold
        # either comes before a release looks or after it is done.
        self._held: Counter[str] = Counter()
        self._holds_lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        for name in os.listdir(self.layout.layers):
            if name.endswith(".json"):
                layer = Layer(**atomic.read_json(os.path.join(self.layout.layers, name)))
                self._layers[layer.chain_id] = layer

    def repair(self) -> None:
        atomic.remove_stale_temps(self.layout.layers)
        for info in list(self.snapshots.walk()):
            if info.key.startswith((EXTRACT_PREFIX, SCRATCH_PREFIX)):
                self.snapshots.remove(info.key)
        for chain_id, layer in list(self._layers.items()):
            if not self._snapshot_exists(chain_id):
                self._forget(layer)
        for info in sorted(self.snapshots.walk(), key=lambda i: -i.n):
            if info.kind == "committed" and info.key.startswith("sha256:") \
                    and info.key not in self._layers and not self._has_children(info.key):
                self.snapshots.remove(info.key)

    def _snapshot_exists(self, key: str) -> bool:
        try:
            self.snapshots.stat(key)
            return True
        except errdefs.NotFound:
            return False

    def _has_children(self, key: str) -> bool:
        return any(i.parent == key for i in self.snapshots.walk())

    def get(self, chain_id: str) -> Layer:
        try:
            return self._layers[chain_id]
        except KeyError:
            raise errdefs.NotFound(f"layer {chain_id} does not exist") from None

    def has(self, chain_id: str) -> bool:
        return chain_id in self._layers

    def __iter__(self) -> Iterator[Layer]:
        return iter(list(self._layers.values()))

    def chain(self, diff_ids: list[str]) -> list[Layer]:
        return [self.get(c) for c in chain_ids(diff_ids)]

    def _lock(self, chain_id: str) -> threading.Lock:
        with self._mutex:
            return self._locks.setdefault(chain_id, threading.Lock())

    @contextlib.contextmanager
    def hold(self, chains: Iterable[str], blobs: Iterable[str] = ()) -> Iterator[None]:
        """Keep these layers (present or still to come) and blobs while the
        block runs, whatever `release` is asked meanwhile."""
        keys = list(chains) + list(blobs)
        with self._holds_lock:
            self._held.update(keys)
        try:
            yield
        finally:
            with self._holds_lock:
                self._held.subtract(keys)
                self._held = +self._held  # drop the zero counts

    def register(self, blob_digest: str, media_type: str, diff_id: str | None,
                 parent: str | None,
                 watch: Callable[[BinaryIO], BinaryIO] | None = None) -> Layer:
        """Unpack the blob on top of `parent` (a chain ID), once per chain.

        `diff_id` is what the image config promises; the uncompressed bytes
        must hash to it or the layer is refused and nothing of it is kept.
        `watch` wraps the blob as it is read (a pull shows its progress).
        """
        if diff_id is not None:
            chain_id = chain_ids([parent, diff_id])[1] if parent else diff_id
            if chain_id in self._layers:
                return self._layers[chain_id]
            lock = self._lock(chain_id)
        else:
            lock = contextlib.nullcontext()
        with lock:
            if diff_id is not None and chain_id in self._layers:
                return self._layers[chain_id]
            return self._unpack(blob_digest, media_type, diff_id, parent, watch)

    def _unpack(self, blob_digest: str, media_type: str, diff_id: str | None,
                parent: str | None, watch: Callable[[BinaryIO], BinaryIO] | None) -> Layer:
        key = EXTRACT_PREFIX + uuid.uuid4().hex
        self.snapshots.prepare(key, parent)
        try:
            with self.content.open(blob_digest) as raw:
                reader = _HashingReader(open_decompressed(watch(raw) if watch else raw))
                apply_layer(reader, self.snapshots.fs_path(key))
                reader.drain()
            actual = "sha256:" + reader.hash.hexdigest()
            if diff_id is not None and actual != diff_id:
                raise LayerMismatch(
                    f"layer {blob_digest} does not match its diff_id: "
                    f"expected {diff_id}, got {actual}")
            chain_id = chain_ids([parent, actual])[1] if parent else actual
            if chain_id in self._layers:  # imported twice: keep the first copy
                self.snapshots.remove(key)
                return self._layers[chain_id]
            # Sized as dockerd sizes a layer: apparent sizes of files and
            # symlinks, hard links once, directories not at all.
            size = self.snapshots.usage(key)
            self.snapshots.commit(chain_id, key)
        except BaseException:
            with contextlib.suppress(errdefs.NotFound):
                self.snapshots.remove(key)
            raise
        layer = Layer(chain_id=chain_id, diff_id=actual, parent=parent,
                      blob_digest=blob_digest, media_type=media_type,
                      blob_size=self.content.size(blob_digest), size=size)
        atomic.write_json(self.layout.layer(chain_id), asdict(layer))
        self._layers[chain_id] = layer
        return layer

    def open_uncompressed(self, layer: Layer) -> BinaryIO:
        return open_decompressed(self.content.open(layer.blob_digest))

    def release(self, chain_id: str, in_use: set[str]) -> list[str]:
        """Remove the chain top-down while no image in `in_use` (chain IDs still
        referenced) needs it, no pull holds it and no other snapshot builds on it."""
        removed = []
        current: str | None = chain_id
        with self._holds_lock:
            while current and current not in in_use and current in self._layers:
                if self._held[current] or self._has_children_layers(current) or \
                        self._has_active_children(current):
                    break
                layer = self._layers[current]
                self._forget(layer)
                removed.append(current)
                current = layer.parent
        return removed

    def _has_children_layers(self, chain_id: str) -> bool:
        return any(l.parent == chain_id for l in self._layers.values())

    def _has_active_children(self, key: str) -> bool:
        return any(i.parent == key for i in self.snapshots.walk())

    def _forget(self, layer: Layer) -> None:
        # Record first: a crash after this leaves an orphan snapshot, which
        # repair() removes; the reverse order would leave a record of nothing.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.layer(layer.chain_id))
        self._layers.pop(layer.chain_id, None)
        with contextlib.suppress(errdefs.NotFound):
            self.snapshots.remove(layer.chain_id)
        # A pull holding the digest has the blob in the content store, about
        # to be unpacked on another parent.
        if not self._held[layer.blob_digest] and \
                not any(l.blob_digest == layer.blob_digest for l in self._layers.values()):
            self.content.delete(layer.blob_digest)

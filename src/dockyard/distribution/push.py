"""Push: a local image's layers, config and a Docker schema2 manifest to a registry.

dockerd 20.10's v2 pusher, with its messages:

1. "Preparing" for every layer, top of the stack first (items are named by
   the diff_id's first 12 hex digits); at most `max_uploads` (5, as dockerd)
   go at once, the rest are "Waiting".
2. Each layer: if the registry already has its blob ("HEAD" first) it is
   "Layer already exists"; if another repository of the same registry has it,
   it is mounted from there ("Mounted from <repo>"); else it is uploaded
   ("Pushing" with counts, then "Pushed").
3. The config blob, silently; then the manifest under the tag, and
   "<tag>: digest: sha256:... size: N" with an aux message
   {"Tag", "Digest", "Size"} for clients that want them.

Layers go as gzip, as dockerd sends them. A layer we keep gzipped (as it
was pulled or loaded) is sent as it is, so its digest stays the one every
registry already knows, monolithically (one PUT). A layer we keep
uncompressed (made by commit or build) is compressed while it is sent,
which means its digest is known only at the end: it goes as one streamed
PATCH closed by `PUT ?digest=`. What it compressed to is remembered for the
daemon's life, so the next push of it can ask the registry first. An
uncompressed layer that was pulled from this registry goes as it is (its
blob is already there, to mount or skip).
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

from dockyard.distribution import progress
from dockyard.distribution.repository import Repository
from dockyard.image import mediatypes as mt
from dockyard.image.content import ContentStore
from dockyard.image.layers import Layer
from dockyard.storage.compression import detect, open_decompressed

MAX_UPLOADS = 5
CHUNK = 1 << 20


class Cancelled(Exception):
    pass


@dataclass
class PushSource:
    """What a push needs of the local stores, given by the daemon."""
    content: ContentStore
    layers_of: Callable[[str], list[Layer]]          # image ID -> its layers, bottom first
    # blob digest -> repository paths on the same registry that hold it
    mount_sources: Callable[[str], list[str]]
    # diff_id -> (digest, size) of the gzip we sent before (shared, daemon-wide)
    compressed: dict[str, tuple[str, int]]


def schema2_manifest(config_digest: str, config_size: int, layers: list[dict]) -> bytes:
    """The manifest as docker's schema2 builder writes it (MarshalIndent, 3 spaces)."""
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
           "config": {"mediaType": mt.DOCKER_CONFIG, "size": config_size,
                      "digest": config_digest},
           "layers": layers}
    return json.dumps(doc, indent=3).encode()


class Pusher:
    def __init__(self, repo: Repository, source: PushSource, emit: progress.Emit,
                 cancelled: threading.Event, max_uploads: int = MAX_UPLOADS):
        self.repo = repo
        self.source = source
        self._emit = emit
        self.cancelled = cancelled
        self.max_uploads = max_uploads
        self._lock = threading.Lock()

    def emit(self, msg: dict) -> None:
        if self.cancelled.is_set():
            raise Cancelled("push cancelled")
        self._emit(msg)

    def push(self, tag: str, image_id: str) -> tuple[str, int]:
        """Push one tag; (manifest digest, manifest size)."""
        layers = self.source.layers_of(image_id)
        descriptors = self._push_layers(layers)
        config_raw = self.source.content.read(image_id)
        if self.repo.blob_size(image_id) is None:
            location = self.repo.start_upload()
            self.repo.put_blob(location, config_raw, image_id, len(config_raw))
        raw = schema2_manifest(image_id, len(config_raw), descriptors)
        digest = self.repo.put_manifest(tag, raw, mt.DOCKER_MANIFEST)
        self.emit(progress.message(f"{tag}: digest: {digest} size: {len(raw)}"))
        self.emit(progress.aux({"Tag": tag, "Digest": digest, "Size": len(raw)}))
        return digest, len(raw)

    def _push_layers(self, layers: list[Layer]) -> list[dict]:
        pool = ThreadPoolExecutor(max_workers=self.max_uploads, thread_name_prefix="layer-push")
        futures: dict[str, Future] = {}
        try:
            for layer in reversed(layers):
                self.emit(progress.update(progress.short_id(layer.diff_id), "Preparing"))
                if layer.diff_id in futures:
                    continue
                futures[layer.diff_id] = pool.submit(self._push_layer, layer)
                if len(futures) > self.max_uploads:
                    self.emit(progress.update(progress.short_id(layer.diff_id), "Waiting"))
            return [futures[l.diff_id].result() for l in layers]
        except BaseException:
            self.cancelled.set()
            for f in futures.values():
                f.cancel()
            raise
        finally:
            pool.shutdown(wait=True)

    def _push_layer(self, layer: Layer) -> dict:
        id = progress.short_id(layer.diff_id)
        with self.source.content.open(layer.blob_digest) as f:
            gzipped = detect(f.read(4)) == "gzip"
        media_type = mt.DOCKER_LAYER_GZIP
        if gzipped:
            digest, size = layer.blob_digest, layer.blob_size
        elif self.source.mount_sources(layer.blob_digest):
            # An uncompressed blob this registry already has (it was pulled
            # from there): it goes as it is, so it can be mounted or skipped,
            # as dockerd does from what it remembers of its pulls.
            digest, size, media_type = layer.blob_digest, layer.blob_size, mt.DOCKER_LAYER
        else:
            with self._lock:
                digest, size = self.source.compressed.get(layer.diff_id, ("", 0))
        descriptor = {"mediaType": media_type, "size": size, "digest": digest}
        if digest and self.repo.blob_size(digest) is not None:
            self.emit(progress.update(id, "Layer already exists"))
            return descriptor
        location = ""
        if digest:
            for source in self.source.mount_sources(digest):
                if source == self.repo.path:
                    continue
                mounted, location = self.repo.mount_blob(digest, source)
                if mounted:
                    # Named by its path on the registry, as dockerd names it.
                    self.emit(progress.update(id, f"Mounted from {source}"))
                    return descriptor
                break  # the registry opened an upload instead: use it
        location = location or self.repo.start_upload()
        if gzipped or media_type == mt.DOCKER_LAYER:
            with self.source.content.open(layer.blob_digest) as f:
                reader = progress.Reader(f, self.emit, id, "Pushing", size)
                self.repo.put_blob(location, _chunks(reader, self.cancelled), digest, size)
        else:
            digest, size = self._stream_gzip(layer, location, id)
            descriptor.update(size=size, digest=digest)
        self.emit(progress.update(id, "Pushed"))
        return descriptor

    def _stream_gzip(self, layer: Layer, location: str, id: str) -> tuple[str, int]:
        """Compress the layer's tar while sending it; its digest and size."""
        hasher = hashlib.sha256()
        sent = [0]

        def body() -> Iterator[bytes]:
            compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip framing
            with open_decompressed(self.source.content.open(layer.blob_digest)) as tar:
                reader = progress.Reader(tar, self.emit, id, "Pushing", layer.size)
                for chunk in _chunks(reader, self.cancelled):
                    out = compressor.compress(chunk)
                    if out:
                        hasher.update(out)
                        sent[0] += len(out)
                        yield out
            out = compressor.flush()
            hasher.update(out)
            sent[0] += len(out)
            yield out

        digest = self.repo.stream_blob(location, body(), lambda: "sha256:" + hasher.hexdigest())
        with self._lock:
            self.source.compressed[layer.diff_id] = (digest, sent[0])
        return digest, sent[0]


def _chunks(reader, cancelled: threading.Event) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK):
        if cancelled.is_set():
            raise Cancelled("push cancelled")
        yield chunk

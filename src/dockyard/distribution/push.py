"""Push: a local image's layers, config and a Docker schema2 manifest to a registry.

dockerd 20.10's v2 pusher, with its messages:

1. "Preparing" for every layer, top of the stack first (items are named by
   the diff_id's first 12 hex digits); at most `max_uploads` (5, as dockerd)
   go at once, the rest are "Waiting".
2. Each layer: if the registry already has one of the blobs it is known as
   ("HEAD" first) it is "Layer already exists"; if another repository of the
   same registry has one, it is mounted from there ("Mounted from <repo>");
   else it is uploaded ("Pushing" with counts, then "Pushed").
3. The config blob, silently; then the manifest under the tag, and
   "<tag>: digest: sha256:... size: N" with an aux message
   {"Tag", "Digest", "Size"} for clients that want them.

Layers go as gzip, as dockerd sends them. A layer we keep gzipped (as it
was pulled or loaded) is sent as it is, so its digest stays the one every
registry already knows, monolithically (one PUT). A layer we keep
uncompressed (made by commit or build) is compressed while it is sent,
which means its digest is known only at the end: it goes as one streamed
PATCH closed by `PUT ?digest=`. An uncompressed layer that was pulled from
this registry is looked for there as it is (to skip or mount it); only if
it is not found is it compressed and sent.

What a layer went as, and to which repository, is recorded in the v2
metadata store (`metadata.py`, on disk, as dockerd's), after every layer
pushed, found or mounted. That record is what the next push asks the
registry about, after a restart too: the blob an uncompressed layer
compressed to, and the repositories to mount it from (same registry, the
closest path first), beside those the images' RepoDigests name.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from dockyard.distribution import progress
from dockyard.distribution.metadata import V2Metadata, V2MetadataStore, source_repository
from dockyard.distribution.repository import Repository
from dockyard.image import mediatypes as mt
from dockyard.image.content import ContentStore
from dockyard.image.layers import Layer
from dockyard.storage.compression import detect, open_decompressed

MAX_UPLOADS = 5
# Registry round trips spent on a layer before sending it (dockerd's
# maxExistenceCheckAttempts and maxMountAttempts).
MAX_EXISTENCE_CHECKS = 3
MAX_MOUNT_ATTEMPTS = 3
CHUNK = 1 << 20
# zlib level for the layers compressed as they are sent. On a host's files
# (binaries, libraries, sources) level 2 compresses at ~60 MiB/s a core
# against level 6's ~20 (dockerd's Go default: ~23), for output ~9% larger
# than level 6's (39.0% of the tar against 35.9%; Go's default 36.6%);
# level 1 is hardly faster (~63) and larger again (40.1%). zlib releases the
# GIL, so the uploads compress on every core at once.
GZIP_LEVEL = 2


class Cancelled(Exception):
    pass


@dataclass
class PushSource:
    """What a push needs of the local stores, given by the daemon."""
    content: ContentStore
    layers_of: Callable[[str], list[Layer]]          # image ID -> its layers, bottom first
    # blob digest -> repository paths on the same registry that hold it (RepoDigests)
    mount_sources: Callable[[str], list[str]]
    # diff_id -> the blobs it was pushed or pulled as, and where (daemon-wide, on disk)
    metadata: V2MetadataStore
    registry: str  # the host the push goes to, as references name it ("docker.io")


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
        pool = ThreadPoolExecutor(max_workers=self.max_uploads or max(1, len(layers)),  # 0: no limit
                                  thread_name_prefix="layer-push")
        futures: dict[str, Future] = {}
        try:
            for layer in reversed(layers):
                self.emit(progress.update(progress.short_id(layer.diff_id), "Preparing"))
                if layer.diff_id in futures:
                    continue
                futures[layer.diff_id] = pool.submit(self._push_layer, layer)
                if 0 < self.max_uploads < len(futures):
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
        local = self._local_blob(layer)
        known = self._known_blobs(layer, local)
        for blob in _unique_digests(([local] if local else []) + known)[:MAX_EXISTENCE_CHECKS]:
            size = self.repo.blob_size(blob.Digest)
            if size is not None:
                self.emit(progress.update(id, "Layer already exists"))
                return self._pushed(layer, blob.Digest, size, blob.MediaType)
        location = ""
        for blob in self._mount_candidates(known):
            mounted, opened = self.repo.mount_blob(blob.Digest, blob.path)
            if mounted:
                # Named by its path on the registry, as dockerd names it.
                self.emit(progress.update(id, f"Mounted from {blob.path}"))
                size = blob.Size or self.repo.blob_size(blob.Digest) or 0
                return self._pushed(layer, blob.Digest, size, blob.MediaType)
            # Gone from there (deleted, collected, or not ours to read): not a
            # candidate again.
            self.source.metadata.remove(layer.diff_id, blob.Digest, blob.SourceRepository)
            if location:
                self._cancel_upload(opened)
            location = location or opened  # the registry opened an upload instead: use it
        location = location or self.repo.start_upload()
        if local and local.MediaType == mt.DOCKER_LAYER_GZIP:
            self._put_as_is(layer, local, location, id)
            digest, size, media_type = local.Digest, local.Size, local.MediaType
        else:
            digest, size = self._stream_gzip(layer, location, id)
            media_type = mt.DOCKER_LAYER_GZIP
        self.emit(progress.update(id, "Pushed"))
        return self._pushed(layer, digest, size, media_type)

    def _local_blob(self, layer: Layer) -> V2Metadata | None:
        """The blob we keep, if the registry may know its digest: gzipped (as
        pulled or loaded; it is sent as it is), or uncompressed but named by
        RepoDigests of this registry (pulled from there, so it may be found or
        mounted; if it is not, it is gzipped and sent like any other)."""
        with self.source.content.open(layer.blob_digest) as f:
            gzipped = detect(f.read(4)) == "gzip"
        if not gzipped and not self.source.mount_sources(layer.blob_digest):
            return None
        return V2Metadata(layer.blob_digest, self._here(), layer.blob_size,
                          mt.DOCKER_LAYER_GZIP if gzipped else mt.DOCKER_LAYER)

    def _known_blobs(self, layer: Layer, local: V2Metadata | None) -> list[V2Metadata]:
        """What the layer is known as on this registry, and where: first the
        repositories our images' RepoDigests name (images held now, so the
        freshest word), then the metadata store's record, newest first."""
        recorded = [replace(m, MediaType=m.MediaType or mt.DOCKER_LAYER_GZIP)
                    for m in self.source.metadata.get(layer.diff_id)
                    if m.registry == self.source.registry]
        if not local:
            return recorded
        # A push records what the layer became there: a repository we pushed
        # an uncompressed layer to holds its gzip, not the bytes we keep.
        sent_otherwise = {m.path for m in recorded if m.Digest != local.Digest}
        held = [V2Metadata(local.Digest, source_repository(self.source.registry, path),
                           local.Size, local.MediaType)
                for path in self.source.mount_sources(local.Digest)
                if local.MediaType == mt.DOCKER_LAYER_GZIP or path not in sent_otherwise]
        return held + recorded

    def _mount_candidates(self, known: list[V2Metadata]) -> list[V2Metadata]:
        """Other repositories of this registry holding one of the layer's blobs,
        those whose path shares most with ours first (dockerd's order)."""
        ours = self.repo.path.split("/")
        seen: set[str] = set()
        found = []
        for m in known:
            if m.path != self.repo.path and m.SourceRepository not in seen:
                seen.add(m.SourceRepository)
                found.append(m)
        found.sort(key=lambda m: -_common_prefix(m.path.split("/"), ours))
        return found[:MAX_MOUNT_ATTEMPTS]

    def _here(self) -> str:
        return source_repository(self.source.registry, self.repo.path)

    def _pushed(self, layer: Layer, digest: str, size: int, media_type: str) -> dict:
        """Remember where the layer now is; its manifest descriptor."""
        self.source.metadata.add(layer.diff_id, V2Metadata(digest, self._here(), size,
                                                            media_type))
        return {"mediaType": media_type, "size": size, "digest": digest}

    def _put_as_is(self, layer: Layer, blob: V2Metadata, location: str, id: str) -> None:
        with self.source.content.open(layer.blob_digest) as f:
            reader = progress.Reader(f, self.emit, id, "Pushing", blob.Size)
            self.repo.put_blob(location, _chunks(reader, self.cancelled), blob.Digest, blob.Size)

    def _cancel_upload(self, location: str) -> None:
        """Drop an upload a failed mount opened, as dockerd does (the registry
        would purge it in time anyway)."""
        try:
            self.repo.cancel_upload(location)
        except Exception:  # noqa: BLE001 - nothing was sent to it; the push goes on
            pass

    def _stream_gzip(self, layer: Layer, location: str, id: str) -> tuple[str, int]:
        """Compress the layer's tar while sending it; its digest and size."""
        hasher = hashlib.sha256()
        sent = [0]

        def body() -> Iterator[bytes]:
            compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
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
        return digest, sent[0]


def _chunks(reader, cancelled: threading.Event) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK):
        if cancelled.is_set():
            raise Cancelled("push cancelled")
        yield chunk


def _unique_digests(blobs: list[V2Metadata]) -> list[V2Metadata]:
    seen: set[str] = set()
    return [b for b in blobs if not (b.Digest in seen or seen.add(b.Digest))]


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n

"""Pull: a reference's manifest, config and layers from a registry into the stores.

dockerd's v2 puller, step by step, with its progress messages:

1. Fetch the manifest by tag or digest (errors here are the request's HTTP
   status: nothing has been written yet). "<tag>: Pulling from <name>".
2. An index (OCI) or manifest list (Docker) is resolved to the entry for
   the host's platform, or the one asked for; that manifest is fetched by
   its digest.
3. If the image (its config digest) is already here, nothing is downloaded.
   Otherwise the config comes first (it is small, and its diff_ids tell
   which layers are already unpacked: "Already exists" for that prefix of
   the stack). It is tried up to 5 times, 250 ms apart and doubling, and
   a failure reads "error pulling image configuration: ...".
4. Every other layer: "Pulling fs layer"; at most `max_downloads` (3, as
   dockerd) download at once, the others are "Waiting". A download streams
   into the content store, hashed on the way ("Downloading" with counts),
   and is refused unless its digest matches ("Verifying Checksum",
   "Download complete"). A body broken mid-blob is resumed with a range
   request, silently, a few times; an attempt that still fails is tried
   again, up to 5 more times, after "Retrying in N seconds" counted down
   (5 s, then 10 s, ...), unless no retry can help (see should_retry: a
   blob's 404 is "unknown blob", and final).
5. Layers are unpacked in stack order as soon as each and all below it are
   in ("Extracting" with the counts of the blob read so far, "Pull
   complete"), while later ones still download.
6. The config is stored (the image now exists), "Digest: <manifest
   digest>", and the references are set: the tag (or digest) and
   name@<manifest digest>. Whether the tag moved decides the final
   "Status: Downloaded newer image" or "Image is up to date", which the
   caller writes.

A failure cancels the downloads still running and removes the blobs that
no layer took; layers already unpacked stay (a retry finds them "Already
exists"), as with dockerd.

From the "Already exists" check until the image is stored, no image names
the layers a pull found or unpacked; the pull holds their chain IDs and
blobs in the layer store meanwhile (dockerd holds layer references), so an
`rmi` or `image prune` run then leaves them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from dockyard import errdefs
from dockyard.distribution import platforms, progress
from dockyard.distribution.errors import (ConfigPullFailed, LayerVerificationFailed,
                                          RegistryFailure, RequestFailed, should_retry)
from dockyard.distribution.repository import MAX_MANIFEST_SIZE, Manifest, Repository
from dockyard.image import mediatypes as mt
from dockyard.image import reference
from dockyard.image.content import ContentStore, DigestMismatch, Writer
from dockyard.image.layers import LayerStore
from dockyard.storage.compression import detect
from dockyard.storage.layer import chain_ids

MAX_DOWNLOADS = 3
MAX_RESUMES = 5  # an attempt broken mid-blob more often than this has failed
# dockerd's default --max-download-attempts (5), which counts the attempts
# after the first: a layer is tried at most 6 times.
MAX_DOWNLOAD_RETRIES = 5
RETRY_STEP = 5  # seconds: each failed attempt waits this much longer than the last
# The config blob is tried as dockerd's pullSchema2Config tries it: 5 times,
# 250 ms before the second attempt and twice as long before each next one.
CONFIG_ATTEMPTS = 5
CONFIG_BACKOFF = 0.25
CHUNK = 1 << 20

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The client went away; the pull stops."""


@dataclass
class ImageTarget:
    """What a pull needs of the image store, given by the daemon."""
    content: ContentStore
    layers: LayerStore
    has_image: Callable[[str], bool]
    add_image: Callable[[bytes], str]                      # config bytes -> image ID
    # (reference, manifest digest, image ID) -> whether the reference moved
    set_references: Callable[[reference.Reference, str, str], bool]
    # (diff_id, blob digest, size, media type): a layer this repository holds
    # as that blob, for pushes to mount or skip later (dockerd's v2 metadata)
    learned: Callable[[str, str, int, str], None] = lambda *args: None


@dataclass
class Layer:
    digest: str
    size: int
    media_type: str
    diff_id: str

    @property
    def id(self) -> str:
        return progress.short_id(self.digest)


class Puller:
    def __init__(self, repo: Repository, target: ImageTarget, emit: progress.Emit,
                 cancelled: threading.Event, platform: platforms.Platform | None = None,
                 max_downloads: int = MAX_DOWNLOADS,
                 max_download_retries: int = MAX_DOWNLOAD_RETRIES, retry_tick: float = 1.0):
        self.repo = repo
        self.target = target
        self._emit = emit
        self.cancelled = cancelled
        self.platform = platform
        self.max_downloads = max_downloads
        self.max_download_retries = max_download_retries
        # One second of the retry countdown (dockerd's waitDuration); shorter
        # only where nobody is watching a clock.
        self.retry_tick = retry_tick

    def emit(self, msg: dict) -> None:
        if self.cancelled.is_set():
            raise Cancelled("pull cancelled")
        self._emit(msg)

    # -- one tag or digest ------------------------------------------------------------
    def fetch_manifest(self, ref: reference.Reference) -> Manifest:
        if ref.digest:
            return self.repo.get_manifest(ref.digest)
        tag = ref.tag or reference.DEFAULT_TAG
        digest = self.repo.resolve_tag(tag)
        return self.repo.get_manifest(digest or tag)

    def pull(self, ref: reference.Reference, manifest: Manifest | None = None) -> bool:
        """Pull one tag or digest; True if its reference now names another image."""
        if manifest is None:
            manifest = self.fetch_manifest(ref)
        tag_or_digest = str(ref) if ref.digest else (ref.tag or reference.DEFAULT_TAG)
        # dockerd names the repository by its path on the registry ("library/busybox").
        self.emit(progress.message(f"Pulling from {ref.path}", tag_or_digest))
        top_digest = manifest.digest
        if manifest.is_index:
            manifest = self._resolve_index(manifest)
        image_id = self._pull_manifest(manifest)
        self.emit(progress.message(f"Digest: {top_digest}"))
        return self.target.set_references(ref, top_digest, image_id)

    def _resolve_index(self, index: Manifest) -> Manifest:
        wanted = self.platform or platforms.host()
        entry = platforms.choose(index.doc.get("manifests") or [], wanted)
        if entry is None:
            raise RegistryFailure(f"no matching manifest for {wanted.os}/{wanted.architecture}"
                                  " in the manifest list entries")
        child = self.repo.get_manifest(entry["digest"])
        if child.is_index:
            raise RegistryFailure("unsupported manifest format: an index inside an index")
        return child

    def _pull_manifest(self, manifest: Manifest) -> str:
        if manifest.media_type not in mt.MANIFESTS:
            raise RegistryFailure(f"unsupported manifest media type {manifest.media_type}")
        config_desc = manifest.doc.get("config") or {}
        config_digest = config_desc.get("digest", "")
        if self.target.has_image(config_digest):
            return config_digest
        descs = manifest.doc.get("layers") or []
        try:
            config_raw = self._config(config_digest)
        except ConfigPullFailed:
            # dockerd fetches the config while the layers start: theirs is
            # the first word, the config's error the last.
            for d in descs:
                self.emit(progress.update(progress.short_id(d.get("digest", "")),
                                          "Pulling fs layer"))
            raise
        config = json.loads(config_raw)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(descs) != len(diff_ids):
            raise RegistryFailure("layers from manifest don't match image configuration")
        if config.get("os", "linux") != "linux":
            raise errdefs.InvalidParameter(
                f"image operating system \"{config.get('os')}\" cannot be used on this platform")
        layers = [Layer(d["digest"], int(d.get("size", 0)), d.get("mediaType", ""), diff_id)
                  for d, diff_id in zip(descs, diff_ids)]
        # Until the image names them, nothing but this hold keeps a
        # concurrent rmi or prune from freeing the layers found or unpacked.
        with self.target.layers.hold(chain_ids(diff_ids), {l.digest for l in layers}):
            self._pull_layers(layers)
            image_id = self.target.add_image(config_raw)
        for layer in layers:
            self.target.learned(layer.diff_id, layer.digest, layer.size, layer.media_type)
        return image_id

    def _config(self, digest: str) -> bytes:
        """pullSchema2Config: the config blob, attempt after attempt unless no
        retry can help, then verified; its errors worded as dockerd's."""
        delay = CONFIG_BACKOFF
        for attempt in range(1, CONFIG_ATTEMPTS + 1):
            try:
                raw = self.repo.read_blob(digest, MAX_MANIFEST_SIZE)
                break
            except Exception as e:  # noqa: BLE001 - should_retry sorts them
                if not should_retry(e):
                    raise ConfigPullFailed(f"download failed after attempts={attempt}: {e}") from e
                if attempt == CONFIG_ATTEMPTS:
                    # dockerd's count, one more than it made when every one failed
                    raise ConfigPullFailed(
                        f"download failed after attempts={attempt + 1}: {e}") from e
                if self.cancelled.wait(delay * self.retry_tick):
                    raise Cancelled("pull cancelled") from None
                delay *= 2
        if len(raw) > MAX_MANIFEST_SIZE:
            raise ConfigPullFailed(f"blob {digest} is too big to be a config")
        if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
            raise ConfigPullFailed(f"image config verification failed for digest {digest}")
        return raw

    # -- layers ---------------------------------------------------------------------------
    def _pull_layers(self, layers: list[Layer]) -> None:
        chains = chain_ids([l.diff_id for l in layers])
        present = 0
        while present < len(layers) and self.target.layers.has(chains[present]):
            self.emit(progress.update(layers[present].id, "Already exists"))
            present += 1
        parent = chains[present - 1] if present else None
        missing = layers[present:]
        if not missing:
            return
        downloaded: set[str] = set()
        registered: set[str] = set()
        pool = ThreadPoolExecutor(max_workers=self.max_downloads or len(missing),  # 0: no limit
                                  thread_name_prefix="layer-download")
        try:
            futures: dict[str, Future] = {}
            for n, layer in enumerate(missing):
                if layer.digest in futures:
                    continue  # the same blob twice in one stack: fetched once
                self.emit(progress.update(layer.id, "Pulling fs layer"))
                futures[layer.digest] = pool.submit(self._download, layer, downloaded)
                if 0 < self.max_downloads < len(futures):
                    self.emit(progress.update(layer.id, "Waiting"))
            for layer in missing:
                futures[layer.digest].result()
                parent = self._register(layer, parent)
                registered.add(layer.digest)
        except BaseException:
            self.cancelled.set()
            for f in futures.values():
                f.cancel()
            pool.shutdown(wait=True)
            self._drop_unregistered(downloaded - registered)
            raise
        finally:
            pool.shutdown(wait=True)

    def _download(self, layer: Layer, downloaded: set[str]) -> None:
        """The layer's blob into the content store, attempt after attempt as
        dockerd's download manager goes: the bytes one attempt got stay, and
        the next asks for the rest (dockerd keeps its temp file the same way)."""
        content = self.target.content
        if content.exists(layer.digest):
            self.emit(progress.update(layer.id, "Download complete"))
            return
        with contextlib.ExitStack() as ingest:
            w = ingest.enter_context(content.writer())
            failures = 0
            while True:
                try:
                    self._fetch(layer, w)
                    break
                except Exception as e:  # noqa: BLE001 - should_retry sorts them
                    if self.cancelled.is_set():
                        raise
                    failures += 1
                    if not should_retry(e) or failures > self.max_download_retries:
                        log.error("Download failed after %d attempts: %s", failures, e)
                        raise
                    log.info("Download failed, retrying (%d/%d): %s", failures,
                             self.max_download_retries, e)
                    self._count_down(layer, failures * RETRY_STEP)
                    if isinstance(e, LayerVerificationFailed):
                        w = ingest.enter_context(content.writer())  # its bytes are bad: anew
        downloaded.add(layer.digest)
        self.emit(progress.update(layer.id, "Download complete"))

    def _count_down(self, layer: Layer, seconds: int) -> None:
        """dockerd's "Retrying in N seconds", redrawn every second down to 1.
        A client gone meanwhile ends the wait at once."""
        for left in range(seconds, 0, -1):
            self.emit(progress.update(layer.id, f"Retrying in {left} second"
                                                f"{'s' if left != 1 else ''}"))
            if self.cancelled.wait(self.retry_tick):
                raise Cancelled("download cancelled during retry delay")

    def _fetch(self, layer: Layer, w: Writer) -> None:
        """One attempt: the blob from where `w` stands to its end, verified
        and committed."""
        offset = w.size
        try:
            response = self._reopen(layer.digest, offset) if offset else \
                self.repo.open_blob(layer.digest)
        except Exception:
            # dockerd's size query of a fresh blob fails quietly, and its
            # progress reader's first read reports the failure, without
            # counts; a resumed one fails before that reader exists
            if not offset:
                self.emit(progress.update(layer.id, "Downloading"))
            raise
        total = layer.size or int(response.header("Content-Length") or 0)
        resumes = 0
        try:
            reader = progress.Reader(response, self.emit, layer.id, "Downloading", total,
                                     start=offset)
            while True:
                try:
                    chunk = reader.read(CHUNK)
                    if not chunk and layer.size and w.size < layer.size:
                        raise RequestFailed("GET", layer.digest, "body ended early")
                except RequestFailed:
                    # The connection broke mid-blob: go on from where it stopped
                    # (dockerd's reader seeks the same way), a few times at most.
                    if resumes >= MAX_RESUMES or self.cancelled.is_set():
                        raise
                    resumes += 1
                    response.close(reuse=False)
                    response = self._reopen(layer.digest, w.size)
                    reader = progress.Reader(response, self.emit, layer.id, "Downloading",
                                             total, start=w.size)
                    continue
                if not chunk:
                    break
                if self.cancelled.is_set():
                    raise Cancelled("pull cancelled")
                w.write(chunk)
                if layer.size and w.size > layer.size:
                    raise LayerVerificationFailed(layer.digest, bool(offset or resumes))
            self.emit(progress.update(layer.id, "Verifying Checksum"))
            try:
                w.commit(layer.digest)
            except DigestMismatch:
                raise LayerVerificationFailed(layer.digest, bool(offset or resumes)) from None
        finally:
            response.close(reuse=False)

    def _reopen(self, digest: str, offset: int):
        """The blob again from `offset`: a range request, or (a registry that
        ignores ranges) the whole body with its first `offset` bytes skipped."""
        response = self.repo.open_blob(digest, {"Range": f"bytes={offset}-"})
        if response.status == 200:
            left = offset
            while left:
                skipped = response.read(min(left, CHUNK))
                if not skipped:
                    raise RequestFailed("GET", digest, "body ended early")
                left -= len(skipped)
        return response

    def _register(self, layer: Layer, parent: str | None) -> str:
        content, layers = self.target.content, self.target.layers
        size = content.size(layer.digest)
        with content.open(layer.digest) as f:
            media_type = mt.layer_media_type(detect(f.read(4)))
        # The bar follows the compressed bytes as the layer store unpacks
        # them, as dockerd's "Extracting" reader does.
        extracting: list[progress.Reader] = []

        def watch(blob):
            extracting.append(progress.Reader(blob, self.emit, layer.id, "Extracting", size))
            return extracting[-1]

        try:
            registered = layers.register(layer.digest, media_type, layer.diff_id, parent,
                                         watch)
        except errdefs.DockyardError as e:
            raise RegistryFailure(f"failed to register layer: {e}") from e
        if extracting:
            # A decompressor may stop short of the blob's end; the bar is full.
            extracting[-1].finish()
        else:
            # Unpacked already (another pull of the same layer): a full bar, once.
            self.emit(progress.update(layer.id, "Extracting", size, size))
        self.emit(progress.update(layer.id, "Pull complete"))
        return registered.chain_id

    def _drop_unregistered(self, digests: set[str]) -> None:
        in_use = {l.blob_digest for l in self.target.layers}
        for digest in digests - in_use:
            self.target.content.delete(digest)

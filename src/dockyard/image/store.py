"""The image store: image records by ID, and the references that name them.

An image *is* its config: the ID is the sha256 digest of the config bytes, exactly
as docker computes it, and the config blob lives in the content store. What the
config does not say (when this daemon got the image, which image it was built
on) lives in `images/meta/<hex>.json`; the meta file is written last, so an image
exists once its meta exists. References (tags such as `busybox:latest` and
digests such as `busybox@sha256:...`) map to image IDs in one JSON file,
rewritten atomically on every change.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from dockyard import errdefs
from dockyard.image import reference
from dockyard.image.content import ContentStore
from dockyard.store import atomic
from dockyard.store.layout import Layout


class NoSuchImage(errdefs.NotFound):
    pass


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Image:
    id: str
    config: dict[str, Any]  # the parsed config blob
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def container_config(self) -> dict[str, Any]:
        return self.config.get("config") or {}

    @property
    def created(self) -> str:
        return self.config.get("created") or self.meta.get("loaded", "")

    @property
    def parent(self) -> str:
        return self.meta.get("parent", "")


class ImageStore:
    def __init__(self, layout: Layout, content: ContentStore):
        self.layout = layout
        self.content = content
        self._images: dict[str, Image] = {}
        self._refs: dict[str, str] = {}  # full reference string -> image ID
        self._lock = threading.RLock()
        self._load()

    # -- loading and repair -----------------------------------------------
    def _load(self) -> None:
        for name in os.listdir(self.layout.image_meta_dir):
            if not name.endswith(".json") or name.startswith(".tmp-"):
                continue
            image_id = "sha256:" + name[:-5]
            try:
                config = json.loads(self.content.read(image_id))
            except errdefs.NotFound:
                continue  # repair() drops the meta of an image whose config is gone
            meta = atomic.read_json(os.path.join(self.layout.image_meta_dir, name))
            self._images[image_id] = Image(image_id, config, meta)
        if os.path.exists(self.layout.repositories):
            self._refs = dict(atomic.read_json(self.layout.repositories).get("refs", {}))

    def repair(self, layer_exists) -> None:
        """Forget images whose config or layers a crash left missing."""
        atomic.remove_stale_temps(self.layout.image_meta_dir)
        for name in os.listdir(self.layout.image_meta_dir):
            image_id = "sha256:" + name[:-5]
            if name.endswith(".json") and image_id not in self._images:
                os.unlink(os.path.join(self.layout.image_meta_dir, name))
        for image in list(self._images.values()):
            if not layer_exists(image.diff_ids):
                self.remove(image.id)
        dangling_refs = [r for r, i in self._refs.items() if i not in self._images]
        if dangling_refs:
            for r in dangling_refs:
                del self._refs[r]
            self._save_refs()

    # -- images ----------------------------------------------------------------
    def add(self, config_bytes: bytes, meta: dict[str, Any] | None = None) -> Image:
        """Store an image whose layers are already registered."""
        image_id = self.content.put(config_bytes)
        with self._lock:
            if image_id in self._images:
                return self._images[image_id]
            config = json.loads(config_bytes)
            meta = {"loaded": now_rfc3339(), **(meta or {})}
            atomic.write_json(self.layout.image_meta(image_id), meta)
            image = Image(image_id, config, meta)
            self._images[image_id] = image
            return image

    def set_meta(self, image_id: str, **changes: Any) -> None:
        with self._lock:
            image = self._images[image_id]
            image.meta.update(changes)
            atomic.write_json(self.layout.image_meta(image_id), image.meta)

    def remove(self, image_id: str) -> None:
        with self._lock:
            for ref in [r for r, i in self._refs.items() if i == image_id]:
                del self._refs[ref]
            self._save_refs()
            try:
                os.unlink(self.layout.image_meta(image_id))
            except FileNotFoundError:
                pass
            self._images.pop(image_id, None)
            self.content.delete(image_id)

    def __iter__(self) -> Iterator[Image]:
        return iter(list(self._images.values()))

    def __len__(self) -> int:
        return len(self._images)

    def get(self, image_id: str) -> Image:
        try:
            return self._images[image_id]
        except KeyError:
            raise NoSuchImage(f"No such image: {image_id}") from None

    def children(self, image_id: str) -> list[Image]:
        return [i for i in self._images.values() if i.parent == image_id]

    def lookup(self, ref_or_id: str) -> Image:
        """Find an image by reference, full ID or unambiguous ID prefix, in
        that order, as dockerd's GetImage does."""
        try:
            parsed = reference.parse_any(ref_or_id)
        except reference.ReferenceError:
            parsed = None
        if isinstance(parsed, str):  # a full ID
            if parsed in self._images:
                return self._images[parsed]
            raise NoSuchImage(f"No such image: {ref_or_id}")
        if parsed is not None:
            ref = parsed.tagged_or_latest()
            image_id = self._refs.get(str(ref))
            if image_id in self._images:
                return self._images[image_id]
        prefix = ref_or_id.removeprefix("sha256:")
        if reference.is_id_prefix(ref_or_id):
            found = [i for i in self._images if i[7:].startswith(prefix)]
            if len(found) == 1:
                return self._images[found[0]]
            if len(found) > 1:
                raise errdefs.InvalidParameter(
                    f"multiple IDs found with provided prefix: {prefix}")
        if parsed is not None:
            raise NoSuchImage(f"No such image: {parsed.tagged_or_latest().familiar()}")
        raise NoSuchImage(f"No such image: {ref_or_id}")

    # -- references ------------------------------------------------------------
    def _save_refs(self) -> None:
        atomic.write_json(self.layout.repositories, {"refs": self._refs})

    def tag(self, image_id: str, ref: reference.Reference) -> str | None:
        """Point `ref` at the image; return the image it pointed at before."""
        with self._lock:
            previous = self._refs.get(str(ref))
            self._refs[str(ref)] = image_id
            self._save_refs()
            self.set_meta(image_id, last_tag_time=now_rfc3339())
            return previous

    def untag(self, ref: reference.Reference) -> str:
        with self._lock:
            image_id = self._refs.pop(str(ref), None)
            if image_id is None:
                raise NoSuchImage(f"No such image: {ref.familiar()}")
            self._save_refs()
            return image_id

    def refs_of(self, image_id: str) -> list[reference.Reference]:
        return [reference.parse_normalized(r) for r, i in sorted(self._refs.items())
                if i == image_id]

    def repo_tags(self, image_id: str) -> list[str]:
        return [r.familiar() for r in self.refs_of(image_id) if r.tag and not r.digest]

    def repo_digests(self, image_id: str) -> list[str]:
        return [r.familiar() for r in self.refs_of(image_id) if r.digest]

"""The image store: image records by ID, and the references that name them.

An image *is* its config: the ID is the sha256 digest of the config bytes, exactly
as docker computes it, and the config blob lives in the content store. What the
config does not say (when this daemon got the image, which image it was built
on) lives in `images/meta/<hex>.json`; the meta file is written last, so an image
exists once its meta exists. References (tags such as `busybox:latest` and
digests such as `busybox@sha256:...`) map to image IDs in one JSON file,
rewritten atomically on every change.

Listing asks for every image's references and children; both are indexed in
memory (parsed once) and the indexes are dropped whenever a reference, an
image or a parent link changes, then rebuilt on the next read.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Iterator

from dockyard import errdefs, timefilter
from dockyard.image import reference
from dockyard.image.content import ContentStore
from dockyard.storage.layer import chain_ids
from dockyard.store import atomic
from dockyard.store.layout import Layout

AMBIGUOUS_TAG = "refusing to create an ambiguous tag using digest algorithm as name"


class NoSuchImage(errdefs.NotFound):
    pass


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_taggable(ref: reference.Reference) -> None:
    """dockerd's reference store refuses a repository named like a digest
    algorithm: `sha256:<hex>` would then read as both a tag and an image ID."""
    if ref.familiar_name == "sha256":
        raise errdefs.InvalidParameter(AMBIGUOUS_TAG)


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

    # The config never changes (the ID is its digest), so what is derived from
    # it is computed once.
    @cached_property
    def created_ns(self) -> int:
        """`created` in unix nanoseconds (0 when missing or unreadable)."""
        return timefilter.rfc3339_ns(self.created)

    @cached_property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def top_chain(self) -> str | None:
        return self.chain_ids[-1] if self.chain_ids else None


@dataclass(frozen=True)
class Names:
    """An image's references, sorted as dockerd sorts them (by full string)."""
    refs: tuple[reference.Reference, ...] = ()
    tags: tuple[str, ...] = ()  # familiar `name:tag`
    digests: tuple[str, ...] = ()  # familiar `name@digest`


NO_NAMES = Names()


class ImageStore:
    def __init__(self, layout: Layout, content: ContentStore):
        self.layout = layout
        self.content = content
        self._images: dict[str, Image] = {}
        self._refs: dict[str, str] = {}  # full reference string -> image ID
        self._lock = threading.RLock()
        # Indexes derived from the above, rebuilt on read after a change.
        self._parsed: dict[str, reference.Reference] = {}
        self._names: dict[str, Names] | None = None
        self._children: dict[str, list[Image]] | None = None
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
        self._changed()

    def _changed(self) -> None:
        self._names = None
        self._children = None

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
            self._changed()
            return image

    def set_meta(self, image_id: str, **changes: Any) -> None:
        with self._lock:
            image = self._images[image_id]
            image.meta.update(changes)
            atomic.write_json(self.layout.image_meta(image_id), image.meta)
            if "parent" in changes:
                self._children = None

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
            self._changed()
            self.content.delete(image_id)

    def __iter__(self) -> Iterator[Image]:
        return iter(list(self._images.values()))

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._images

    def get(self, image_id: str) -> Image:
        try:
            return self._images[image_id]
        except KeyError:
            raise NoSuchImage(f"No such image: {image_id}") from None

    def children(self, image_id: str) -> list[Image]:
        index = self._children
        if index is None:
            with self._lock:
                index = {}
                for image in self._images.values():
                    if image.parent:
                        index.setdefault(image.parent, []).append(image)
                self._children = index
        return list(index.get(image_id, ()))

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
        check_taggable(ref)
        with self._lock:
            previous = self._refs.get(str(ref))
            self._refs[str(ref)] = image_id
            self._changed()
            self._save_refs()
            self.set_meta(image_id, last_tag_time=now_rfc3339())
            return previous

    def untag(self, ref: reference.Reference) -> str:
        with self._lock:
            image_id = self._refs.pop(str(ref), None)
            if image_id is None:
                raise NoSuchImage(f"No such image: {ref.familiar()}")
            self._changed()
            self._save_refs()
            return image_id

    def names(self, image_id: str) -> Names:
        """The image's references, tags and digests, from the index."""
        index = self._names
        if index is None:
            index = self._index_names()
        return index.get(image_id, NO_NAMES)

    def _index_names(self) -> dict[str, Names]:
        with self._lock:
            grouped: dict[str, list[reference.Reference]] = {}
            for text in sorted(self._refs):
                ref = self._parsed.get(text)
                if ref is None:
                    ref = self._parsed[text] = reference.parse_normalized(text)
                grouped.setdefault(self._refs[text], []).append(ref)
            for text in [t for t in self._parsed if t not in self._refs]:
                del self._parsed[text]
            index = {
                image_id: Names(tuple(refs),
                                tuple(r.familiar() for r in refs if r.tag and not r.digest),
                                tuple(r.familiar() for r in refs if r.digest))
                for image_id, refs in grouped.items()}
            self._names = index
            return index

    def refs_of(self, image_id: str) -> list[reference.Reference]:
        return list(self.names(image_id).refs)

    def repo_tags(self, image_id: str) -> list[str]:
        return list(self.names(image_id).tags)

    def repo_digests(self, image_id: str) -> list[str]:
        return list(self.names(image_id).digests)

    def by_name(self, name: str) -> list[tuple[reference.Reference, str]]:
        """Every (reference, image ID) of a repository (canonical name), sorted."""
        found = [(ref, image_id) for image_id, names in
                 (self._names or self._index_names()).items()
                 for ref in names.refs if ref.name == name]
        return sorted(found, key=lambda pair: str(pair[0]))

    def resolve(self, ref: reference.Reference) -> str | None:
        """The image ID a tag or digest reference points at, if any. A
        reference with both is looked up by its digest, as dockerd does."""
        if ref.digest:
            ref = reference.Reference(ref.domain, ref.path, None, ref.digest)
        return self._refs.get(str(ref.tagged_or_latest()))

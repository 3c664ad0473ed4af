"""Which earlier image a build step may reuse: the classic builder's cache,
which is the image store itself (moby's image/cache).

`find(parent, step_config)` answers for one step; builder/imagecache.py
compares step records.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from dockyard import errdefs
from dockyard.builder.imagecache import newest_match
from dockyard.image.store import Image

if TYPE_CHECKING:
    from dockyard.daemon.images import ImageService


class BuildCache:
    """Which image a step can reuse (moby's image/cache):

    - with `nocache`, none;
    - else the newest child of the current image whose step record matches
      (builder/imagecache.py);
    - with `cache-from` images, such a child only if it is one of theirs
      (an ancestor of one of them); else a `cache-from` image whose history
      continues the current image's with this very step: the last step
      returns that image itself, an earlier one an image rebuilt from its
      history and layers. So `--cache-from` works with images that were
      pulled or loaded, which have no parent chain here.
    """

    def __init__(self, images: ImageService, no_cache: bool, cache_from: list[str]):
        self.images = images
        self.disabled = no_cache
        self.sources: list[Image] | None = None
        if cache_from:
            self.sources = []
            for ref in cache_from:
                with contextlib.suppress(errdefs.NotFound, errdefs.InvalidParameter):
                    self.sources.append(images.get(ref))

    def find(self, parent_id: str, config: dict[str, Any]) -> str | None:
        if self.disabled:
            return None
        store = self.images.images
        # On scratch: images without a parent, of one step (an image loaded
        # or imported has the history of its own build).
        children = store.children(parent_id) if parent_id else \
            [i for i in store if not i.parent and len(i.config.get("history") or []) == 1]
        match = newest_match(children, config)
        if self.sources is None:
            return match.id if match is not None else None
        if match is not None and any(self._leads_to(match.id, s.id) for s in self.sources):
            return match.id
        return self._from_sources(parent_id, config)

    def _leads_to(self, image_id: str, target: str) -> bool:
        """Whether `target` is `image_id` or built on it."""
        store = self.images.images
        current = target
        while current:
            if current == image_id:
                return True
            try:
                current = store.get(current).parent
            except errdefs.NotFound:
                return False
        return False

    def _from_sources(self, parent_id: str, config: dict[str, Any]) -> str | None:
        store = self.images.images
        parent = store.get(parent_id) if parent_id else None
        done = len(parent.config.get("history") or []) if parent else 0
        record = " ".join(config.get("Cmd") or [])
        for target in self.sources or []:
            history = target.config.get("history") or []
            if not _continues(target, parent) or len(history) <= done or \
                    history[done].get("created_by", "") != record:
                continue
            if len(history) - 1 == done:
                if parent is not None:
                    store.set_meta(target.id, parent=parent.id)
                return target.id
            self.sources = [target]  # do not wander to another chain
            return self._restore(parent, target, config, done).id
        return None

    def _restore(self, parent: Image | None, target: Image, config: dict[str, Any],
                 index: int) -> Image:
        """The image of step `index` of `target`'s history, on `parent`."""
        from dockyard.image.config import container_config

        entry = (target.config.get("history") or [])[index]
        diff_ids = parent.diff_ids if parent else []
        if not entry.get("empty_layer"):
            layer_index = sum(1 for h in (target.config.get("history") or [])[:index]
                              if not h.get("empty_layer"))
            diff_ids = [*diff_ids, target.diff_ids[layer_index]]
        restored = {
            "architecture": target.config.get("architecture", ""),
            "config": container_config(config),
            "container_config": container_config(),
            "created": entry.get("created", ""),
            "history": [*(parent.config.get("history") or [] if parent else []), entry],
            "os": target.config.get("os", "linux"),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if target.config.get("author"):
            restored["author"] = target.config["author"]
        data = json.dumps(dict(sorted(restored.items())), separators=(",", ":")).encode()
        return self.images.images.add(data, {"parent": parent.id} if parent else {})


def _continues(image: Image, parent: Image | None) -> bool:
    """moby's isValidParent: `image`'s history and layers start with `parent`'s."""
    history = image.config.get("history") or []
    if not history:
        return False
    if parent is None:
        return True
    parent_history = parent.config.get("history") or []
    if not parent_history and not parent.diff_ids:
        return True
    if len(parent_history) >= len(history) or len(parent.diff_ids) > len(image.diff_ids):
        return False
    return history[:len(parent_history)] == parent_history and \
        image.diff_ids[:len(parent.diff_ids)] == parent.diff_ids

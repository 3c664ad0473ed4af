"""The image service: what the Engine API's /images endpoints do.

It holds the rules (what `rmi` untags and what it deletes, which images a filter
keeps) and shapes records into the Engine API's JSON. Storage is the stores'.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime
from typing import Any, BinaryIO, Callable

from dockyard import errdefs
from dockyard.image import reference
from dockyard.image.archive import Loaded, Loader, Saver, spool_to_file
from dockyard.image.config import container_config
from dockyard.image.content import ContentStore
from dockyard.image.importer import import_rootfs
from dockyard.image.layers import LayerStore
from dockyard.image.store import Image, ImageStore, NoSuchImage
from dockyard.storage.layer import chain_ids
from dockyard.storage.snapshots import Snapshotter
from dockyard.store.layout import Layout

IMAGE_FILTERS = {"dangling", "label", "before", "since", "reference"}


def unix_time(rfc3339: str) -> int:
    if not rfc3339:
        return 0
    # Go writes nanoseconds; fromisoformat takes at most microseconds.
    text = rfc3339.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        frac = "".join(c for c in rest if c.isdigit())
        tz = rest[len(frac):]
        text = f"{head}.{frac[:6]:0<6}{tz}"
    return int(datetime.fromisoformat(text).timestamp())


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class ImageService:
    def __init__(self, layout: Layout, events: Callable[..., None] | None = None):
        self.layout = layout
        self.content = ContentStore(layout)
        self.snapshots = Snapshotter(layout)
        self.layers = LayerStore(layout, self.content, self.snapshots)
        self.images = ImageStore(layout, self.content)
        self._events = events or (lambda *a, **k: None)
        self._lock = threading.RLock()
        # Set by the container service: image ID -> ID of a container using it.
        self.container_using: Callable[[str], str | None] = lambda image_id: None

    def repair(self) -> None:
        self.content.repair()
        self.layers.repair()
        self.images.repair(lambda diff_ids: all(self.layers.has(c) for c in chain_ids(diff_ids)))

    # -- lookups ---------------------------------------------------------------
    def get(self, name: str) -> Image:
        return self.images.lookup(name)

    def size(self, image: Image) -> int:
        return sum(l.size for l in self.layers.chain(image.diff_ids))

    def chains_in_use(self) -> set[str]:
        return {c for image in self.images for c in chain_ids(image.diff_ids)}

    # -- API shapes ------------------------------------------------------------
    def summary(self, image: Image) -> dict[str, Any]:
        tags = self.images.repo_tags(image.id)
        digests = self.images.repo_digests(image.id)
        size = self.size(image)
        return {
            "Containers": -1,
            "Created": unix_time(image.created),
            "Id": image.id,
            "Labels": image.container_config.get("Labels"),
            "ParentId": image.parent,
            "RepoDigests": digests or (["<none>@<none>"] if not tags else None),
            "RepoTags": tags or ["<none>:<none>"],
            "SharedSize": -1,
            "Size": size,
            "VirtualSize": size,
        }

    def inspect(self, name: str) -> dict[str, Any]:
        image = self.get(name)
        cfg = image.config
        layers = self.layers.chain(image.diff_ids)
        size = sum(l.size for l in layers)
        lower = [self.snapshots.fs_path(l.chain_id) for l in reversed(layers)]
        graph: dict[str, Any] = {"Data": None, "Name": "overlay2"}
        if lower:
            graph["Data"] = {"LowerDir": ":".join(lower[1:])} if len(lower) > 1 else {}
            graph["Data"]["UpperDir"] = lower[0]
            graph["Data"] = {k: graph["Data"][k] for k in sorted(graph["Data"])}
        return {
            "Id": image.id,
            "RepoTags": self.images.repo_tags(image.id),
            "RepoDigests": self.images.repo_digests(image.id),
            "Parent": image.parent,
            "Comment": cfg.get("comment", ""),
            "Created": image.created,
            "Container": cfg.get("container", ""),
            "ContainerConfig": container_config(cfg.get("container_config")),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": container_config(cfg.get("config")),
            "Architecture": cfg.get("architecture", ""),
            **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
            "Os": cfg.get("os", ""),
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": image.diff_ids},
            "Metadata": {"LastTagTime": image.meta.get("last_tag_time",
                                                        "0001-01-01T00:00:00Z")},
        }

    def history(self, name: str) -> list[dict[str, Any]]:
        """Newest first; only the top entry (and local parents) carry an ID."""
        image = self.get(name)
        layers = self.layers.chain(image.diff_ids)
        entries = list(image.config.get("history") or [])
        out = []
        layer_index = 0
        for entry in entries:
            size = 0
            if not entry.get("empty_layer"):
                if layer_index < len(layers):
                    size = layers[layer_index].size
                layer_index += 1
            out.append({"Comment": entry.get("comment", ""),
                        "Created": unix_time(entry.get("created", "")),
                        "CreatedBy": entry.get("created_by", ""),
                        "Id": "<missing>", "Size": size, "Tags": None})
        if not out:
            out.append({"Comment": "", "Created": unix_time(image.created), "CreatedBy": "",
                        "Id": "<missing>", "Size": self.size(image), "Tags": None})
        out.reverse()
        # Walk the local parent chain (images built here) to name the entries.
        current: Image | None = image
        i = 0
        while current is not None and i < len(out):
            out[i]["Id"] = current.id
            out[i]["Tags"] = self.images.repo_tags(current.id) or None
            i += 1
            current = self.images._images.get(current.parent) if current.parent else None
        return out

    # -- list and filters ------------------------------------------------------
    def list(self, filters: dict[str, list[str]], all_images: bool = False) -> list[dict]:
        for key in filters:
            if key not in IMAGE_FILTERS:
                raise errdefs.InvalidParameter(f"invalid filter '{key}'")
        selected = [i for i in self.images if self._keep(i, filters, all_images)]
        selected.sort(key=lambda i: unix_time(i.created), reverse=True)
        return [self.summary(i) for i in selected]

    def _keep(self, image: Image, filters: dict[str, list[str]], all_images: bool) -> bool:
        tags = self.images.repo_tags(image.id)
        digests = self.images.repo_digests(image.id)
        if not all_images and not tags and not digests and self.images.children(image.id):
            return False  # intermediate build images are listed with -a only
        for value in filters.get("dangling", []):
            if value not in ("true", "false", "1", "0"):
                raise errdefs.InvalidParameter(f"Invalid filter 'dangling={value}'")
            dangling = not tags and not digests
            if dangling != (value in ("true", "1")):
                return False
        if "label" in filters and not _labels_match(
                image.container_config.get("Labels") or {}, filters["label"]):
            return False
        created = unix_time(image.created)
        for value in filters.get("before", []):
            if created >= unix_time(self.get(value).created):
                return False
        for value in filters.get("since", []):
            if created <= unix_time(self.get(value).created):
                return False
        if "reference" in filters:
            refs = self.images.refs_of(image.id)
            if not any(_reference_matches(r, pattern)
                       for r in refs for pattern in filters["reference"]):
                return False
        return True

    # -- tag, delete, prune ----------------------------------------------------
    def tag(self, name: str, repo: str, tag: str | None) -> None:
        image = self.get(name)
        try:
            ref = reference.parse_normalized(repo)
        except reference.ReferenceError as e:
            raise errdefs.InvalidParameter(str(e)) from e
        if tag:
            try:
                reference.validate_tag(tag)
            except reference.ReferenceError as e:
                raise errdefs.InvalidParameter(str(e)) from e
            ref = ref.with_tag(tag)
        if ref.digest:
            raise errdefs.InvalidParameter("refusing to create a tag with a digest reference")
        ref = ref.tagged_or_latest()
        self.images.tag(image.id, ref)
        self._events("image", "tag", image.id, {"name": ref.familiar()})

    def delete(self, name: str, force: bool = False) -> list[dict]:
        """`rmi`: a reference names one tag, which goes; the image goes with its
        last reference. An ID names the image with all its references."""
        with self._lock:
            image = self.get(name)
            refs = self.images.refs_of(image.id)
            user = self.container_using(image.id)
            named = _names_reference(name, image)
            if named is not None:
                if len(refs) > 1:
                    self.images.untag(named)
                    self._events("image", "untag", image.id, {"name": named.familiar()})
                    return [{"Untagged": named.familiar()}]
                if user and not force:
                    raise errdefs.Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force)'
                        f" - container {short_id(user)} is using its referenced image "
                        f"{short_id(image.id)}")
            else:
                if len({r.name for r in refs}) > 1 and not force:
                    raise errdefs.Conflict(
                        f"conflict: unable to delete {short_id(image.id)} (must be forced) - "
                        "image is referenced in multiple repositories")
                if user and not force:
                    raise errdefs.Conflict(
                        f"conflict: unable to delete {short_id(image.id)} (must be forced) - "
                        f"image is being used by stopped container {short_id(user)}")
            if self.images.children(image.id):
                raise errdefs.Conflict(
                    f"conflict: unable to delete {short_id(image.id)} (cannot be forced) - "
                    "image has dependent child images")
            out: list[dict] = []
            for ref in refs:
                self.images.untag(ref)
                out.append({"Untagged": ref.familiar()})
                self._events("image", "untag", image.id, {"name": ref.familiar()})
            if user:
                return out  # forced: the references go, the image stays for its container
            out.extend(self._remove_image(image))
            return out

    def _remove_image(self, image: Image) -> list[dict]:
        parent = image.parent
        self.images.remove(image.id)
        top = chain_ids(image.diff_ids)[-1] if image.diff_ids else None
        if top:
            self.layers.release(top, self.chains_in_use() | self._container_chains())
        self._events("image", "delete", image.id, {"name": image.id})
        out = [{"Deleted": image.id}]
        # Untagged parents left without children go too (dockerd's prune of parents).
        if parent and parent in {i.id for i in self.images}:
            p = self.images.get(parent)
            if not self.images.repo_tags(p.id) and not self.images.children(p.id) \
                    and not self.container_using(p.id):
                out.extend(self._remove_image(p))
        return out

    def _container_chains(self) -> set[str]:
        """Snapshots that containers build on (their parents must stay)."""
        return {i.parent for i in self.snapshots.walk() if i.kind == "active" and i.parent}

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in ("dangling", "until", "label", "label!"):
                raise errdefs.InvalidParameter(f"invalid filter '{key}'")
        dangling_only = filters.get("dangling", ["true"])[-1] in ("true", "1")
        deleted: list[dict] = []
        reclaimed = 0
        with self._lock:
            for image in sorted(self.images, key=lambda i: -unix_time(i.created)):
                if image.id not in {i.id for i in self.images}:
                    continue  # removed as a parent meanwhile
                if dangling_only and self.images.refs_of(image.id):
                    continue
                if self.container_using(image.id) or self.images.children(image.id):
                    continue
                labels = image.container_config.get("Labels") or {}
                if "label" in filters and not _labels_match(labels, filters["label"]):
                    continue
                if "label!" in filters and _labels_match(labels, filters["label!"]):
                    continue
                if "until" in filters and unix_time(image.created) >= _until(filters["until"][-1]):
                    continue
                size = self.size(image)
                for ref in self.images.refs_of(image.id):
                    self.images.untag(ref)
                    deleted.append({"Untagged": ref.familiar()})
                deleted.extend(self._remove_image(image))
                reclaimed += size
        self._events("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- load, save, import ----------------------------------------------------
    def load(self, src: BinaryIO) -> list[str]:
        """Load an archive; return the lines docker prints."""
        path = spool_to_file(src, self.layout.tmp)
        try:
            loader = Loader(self.content, self.layers, self.images, self.chains_in_use)
            with self._lock:
                loaded = loader.load(path)
                return self._tag_loaded(loaded)
        finally:
            os.unlink(path)

    def _tag_loaded(self, loaded: list[Loaded]) -> list[str]:
        lines = []
        for item in loaded:
            if not item.tags:
                lines.append(f"Loaded image ID: {item.image.id}")
            for ref in item.tags:
                previous = self.images.tag(item.image.id, ref)
                if previous and previous != item.image.id:
                    lines.append(f"The image {ref.familiar()} already exists, renaming the old "
                                 f"one with ID {previous} to empty string")
                lines.append(f"Loaded image: {ref.familiar()}")
            self._events("image", "load", item.image.id, {"name": item.image.id})
        return lines

    def resolve_for_save(self, names: list[str]) -> list[tuple[Image, list[reference.Reference]]]:
        """Each name picks an image with that tag, or (a bare repository) every
        tag of the repository, or (an ID) the image without tags."""
        picked: dict[str, list[reference.Reference]] = {}
        for name in names:
            refs: list[reference.Reference] = []
            try:
                parsed = reference.parse_any(name)
            except reference.ReferenceError:
                parsed = None
            if isinstance(parsed, reference.Reference) and not parsed.tag and not parsed.digest:
                repo_refs = [r for i in self.images for r in self.images.refs_of(i.id)
                             if r.name == parsed.name and r.tag]
                if repo_refs:
                    for r in repo_refs:
                        picked.setdefault(self.images.lookup(str(r)).id, []).append(r)
                    continue
            image = self.get(name)
            if isinstance(parsed, reference.Reference) and \
                    any(str(r) == str(parsed.tagged_or_latest()) for r in self.images.refs_of(image.id)):
                refs.append(parsed.tagged_or_latest())
            bucket = picked.setdefault(image.id, [])
            bucket.extend(r for r in refs if str(r) not in {str(b) for b in bucket})
        return [(self.images.get(i), refs) for i, refs in picked.items()]

    def save(self, selection: list[tuple[Image, list[reference.Reference]]], out: BinaryIO) -> None:
        Saver(self.content, self.layers, self.layout.tmp).save(selection, out)
        for image, _ in selection:
            self._events("image", "save", image.id, {"name": image.id})

    def import_(self, src: BinaryIO, repo: str, tag: str, changes: list[str],
                message: str) -> Image:
        ref = None
        if repo:
            try:
                ref = reference.parse_normalized(repo)
                if tag:
                    reference.validate_tag(tag)
                    ref = ref.with_tag(tag)
            except reference.ReferenceError as e:
                raise errdefs.InvalidParameter(str(e)) from e
            ref = ref.tagged_or_latest()
        with self._lock:
            image = import_rootfs(src, self.content, self.layers, self.images, changes,
                                  message or "Imported from -")
            if ref is not None:
                self.images.tag(image.id, ref)
        self._events("image", "import", image.id, {"name": image.id})
        return image


def _names_reference(name: str, image: Image) -> reference.Reference | None:
    """The reference `name` spells, unless it is an ID or ID prefix of `image`."""
    try:
        parsed = reference.parse_any(name)
    except reference.ReferenceError:
        return None
    if isinstance(parsed, str):
        return None
    if reference.is_id_prefix(name) and image.id[7:].startswith(name.removeprefix("sha256:")):
        return None
    return parsed.tagged_or_latest()


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never match a slash."""
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                    for c in pattern)
    return re.fullmatch(regex, name) is not None


def _reference_matches(ref: reference.Reference, pattern: str) -> bool:
    """dockerd matches `reference=` against the familiar name, with and
    without the tag."""
    return _path_match(pattern, ref.familiar()) or _path_match(pattern, ref.familiar_name)


def _until(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        return unix_time(value)


__all__ = ["ImageService", "NoSuchImage"]

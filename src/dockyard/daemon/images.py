"""The image service: what the Engine API's /images endpoints do.

It holds the rules (what `rmi` untags and what it deletes, which images a filter
keeps) and shapes records into the Engine API's JSON. Storage is the stores'.

Listing is the hot path (`docker images`, compose, IDEs poll it): references and
children come from the image store's indexes, and each image's size (the sum of
its layers, which never change) is computed once and kept until it is deleted.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, BinaryIO, Callable

from dockyard import errdefs, timefilter
from dockyard.daemon.filtering import bool_filter, invalid_filter, labels_match
from dockyard.image import reference
from dockyard.image.archive import (Loaded, Loader, Saver, layer_failure, spool_to_file,
                                    tar_failure)
from dockyard.image.config import container_config
from dockyard.image.content import ContentStore
from dockyard.image.importer import import_rootfs
from dockyard.image.layers import LayerStore
from dockyard.image.store import Image, ImageStore, NoSuchImage, check_taggable
from dockyard.storage.compression import CorruptStream
from dockyard.storage.layer import InvalidLayer, chain_ids
from dockyard.storage.snapshots import Snapshotter
from dockyard.store.layout import Layout

IMAGE_FILTERS = {"dangling", "label", "before", "since", "reference"}
PRUNE_FILTERS = {"dangling", "until", "label", "label!"}
# Architectures a one-part `platform` may name (it then means linux/<arch>).
_ARCHITECTURES = {"386", "amd64", "arm", "arm64", "mips64le", "ppc64le", "riscv64", "s390x",
                  "x86_64", "x86-64", "aarch64", "armhf", "armel", "i386", "i686"}


def unix_time(rfc3339: str) -> int:
    """Unix seconds of an RFC 3339 time (Go's Time.Unix: rounded down)."""
    return timefilter.rfc3339_ns(rfc3339) // timefilter.NS


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class PatternError(errdefs.System):
    """A `reference=` pattern Go's path.Match refuses; dockerd returns it
    untyped, hence 500."""


class ImageService:
    def __init__(self, layout: Layout, events: Callable[..., None] | None = None):
        self.layout = layout
        self.content = ContentStore(layout)
        self.snapshots = Snapshotter(layout)
        self.layers = LayerStore(layout, self.content, self.snapshots)
        self.images = ImageStore(layout, self.content)
        self._events = events or (lambda *a, **k: None)
        self._lock = threading.RLock()
        self._sizes: dict[str, int] = {}  # image ID -> bytes of its layers
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
        size = self._sizes.get(image.id)
        if size is None:
            size = sum(self.layers.get(c).size for c in image.chain_ids)
            self._sizes[image.id] = size
        return size

    def chains_in_use(self) -> set[str]:
        return {c for image in self.images for c in image.chain_ids}

    # -- API shapes ------------------------------------------------------------
    def summary(self, image: Image, tags: tuple[str, ...] | list[str] | None = None,
                digests: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
        """An image as GET /images/json lists it; `tags`/`digests` narrow its
        names (a `reference=` filter), all of them by default."""
        if tags is None or digests is None:
            names = self.images.names(image.id)
            tags, digests = names.tags, names.digests
        if tags or digests:  # Go leaves the empty one nil: null
            repo_tags, repo_digests = list(tags) or None, list(digests) or None
        else:
            repo_tags, repo_digests = ["<none>:<none>"], ["<none>@<none>"]
        size = self.size(image)
        return {
            "Containers": -1,
            "Created": image.created_ns // timefilter.NS,
            "Id": image.id,
            "Labels": image.container_config.get("Labels"),
            "ParentId": image.parent,
            "RepoDigests": repo_digests,
            "RepoTags": repo_tags,
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
        names = self.images.names(image.id)
        return {
            "Id": image.id,
            "RepoTags": list(names.tags),
            "RepoDigests": list(names.digests),
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
            parent = current.parent
            current = self.images.get(parent) if parent and parent in self.images else None
        return out

    # -- list and filters ------------------------------------------------------
    def list(self, filters: dict[str, list[str]], all_images: bool = False) -> list[dict]:
        """GET /images/json, in the order and with the rules of dockerd's Images()."""
        for key in filters:
            if key not in IMAGE_FILTERS:
                raise invalid_filter(key)
        dangling = bool_filter(filters, "dangling", None)
        before = since = None
        for value in filters.get("before", []):
            before = self.get(value)
        for value in filters.get("since", []):
            since = self.get(value)
        labels = filters.get("label")
        patterns = filters.get("reference")
        out = []
        for image in self.images:
            if dangling and self.images.children(image.id):
                continue  # dangling=true looks at heads only
            created = image.created_ns
            if before is not None and created >= before.created_ns:
                continue
            if since is not None and created <= since.created_ns:
                continue
            if labels is not None and not labels_match(
                    image.container_config.get("Labels") or {}, labels):
                continue
            names = self.images.names(image.id)
            tags, digests = names.tags, names.digests
            if patterns is not None:  # only the names that match are shown
                refs = [r for r in names.refs if any(familiar_match(p, r) for p in patterns)]
                tags = [r.familiar() for r in refs if r.tag and not r.digest]
                digests = [r.familiar() for r in refs if r.digest]
            if not tags and not digests:
                if not all_images and self.images.children(image.id):
                    continue  # intermediate build images are listed with -a only
                if dangling is False or patterns is not None:
                    continue
            elif dangling and tags:
                continue
            try:
                out.append(self.summary(image, tags, digests))
            except errdefs.NotFound:
                continue  # deleted while we listed
        out.sort(key=lambda s: s["Created"], reverse=True)
        return out

    # -- tag, delete, prune ----------------------------------------------------
    def tag(self, name: str, repo: str, tag: str | None) -> None:
        image = self.get(name)
        ref = tag_reference(repo, tag)
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
            out: list[dict] = []
            if named is not None:
                if len(refs) > 1:
                    out = self._untag(image, named)
                    refs = [r for r in refs if r != named]
                    # dockerd: with a repository's last tag gone, its digest
                    # references (`name@sha256:...` of a pull) go too
                    if not named.digest and not any(
                            not r.digest and r.name == named.name for r in refs):
                        for ref in [r for r in refs if r.digest and r.name == named.name]:
                            out += self._untag(image, ref)
                            refs.remove(ref)
                    if refs:
                        return out
                    if user:
                        return out  # the image stays for its container
                elif user and not force:
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
                if named is not None:
                    # dockerd: with a reference given the conflict is quiet; the
                    # image, a parent still, only loses its names
                    for ref in refs:
                        out += self._untag(image, ref)
                    return out
                raise errdefs.Conflict(
                    f"conflict: unable to delete {short_id(image.id)} (cannot be forced) - "
                    "image has dependent child images")
            for ref in refs:
                out += self._untag(image, ref)
            if user:
                return out  # forced: the references go, the image stays for its container
            out.extend(self._remove_image(image))
            return out

    def _untag(self, image: Image, ref: reference.Reference) -> list[dict]:
        self.images.untag(ref)
        self._events("image", "untag", image.id, {"name": ref.familiar()})
        return [{"Untagged": ref.familiar()}]

    def _remove_image(self, image: Image) -> list[dict]:
        """Delete the image and the layers only it held. As dockerd reports it:
        the image ID, then the chain ID of each layer freed, top layer first."""
        parent = image.parent
        self.images.remove(image.id)
        self._sizes.pop(image.id, None)
        freed = []
        if image.top_chain:
            freed = self.layers.release(image.top_chain,
                                        self.chains_in_use() | self._container_chains())
        self._events("image", "delete", image.id, {"name": image.id})
        out = [{"Deleted": image.id}] + [{"Deleted": chain} for chain in freed]
        # Untagged parents left without children go too (dockerd's prune of parents).
        if parent and parent in self.images:
            p = self.images.get(parent)
            if not self.images.refs_of(p.id) and not self.images.children(p.id) \
                    and not self.container_using(p.id):
                out.extend(self._remove_image(p))
        return out

    def add_pulled(self, config: bytes) -> Image:
        """Store the image a pull has registered the layers of. Under the
        lock prune and rmi work under: one that has listed the layers in use
        finishes first (the pull's hold keeps its layers), any later one
        sees this image."""
        with self._lock:
            return self.images.add(config)

    def _container_chains(self) -> set[str]:
        """Snapshots that containers build on (their parents must stay)."""
        return {i.parent for i in self.snapshots.walk() if i.kind == "active" and i.parent}

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """POST /images/prune: every filter is read (and refused) before
        anything is deleted. SpaceReclaimed counts the layers actually freed."""
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise invalid_filter(key)
        dangling_only = bool_filter(filters, "dangling", True)
        until = None
        if filters.get("until"):
            if len(filters["until"]) > 1:
                raise timefilter.TimeError("more than one until filter specified")
            until = timefilter.until_ns(filters["until"][0])
        deleted: list[dict] = []
        with self._lock:
            layer_sizes = {l.chain_id: l.size for l in self.layers}
            candidates = []
            for image in sorted(self.images, key=lambda i: -i.created_ns):
                children = self.images.children(image.id)
                names = self.images.names(image.id)
                if children and (dangling_only or not names.refs):
                    continue
                if dangling_only and names.tags:
                    continue
                if until is not None and image.created_ns > until:
                    continue
                labels = image.container_config.get("Labels") or {}
                if "label" in filters and not labels_match(labels, filters["label"]):
                    continue
                if "label!" in filters and labels_match(labels, filters["label!"]):
                    continue
                candidates.append(image)
            for image in candidates:
                if image.id not in self.images:
                    continue  # removed as a parent meanwhile
                if self.container_using(image.id) or self.images.children(image.id):
                    continue
                for ref in self.images.refs_of(image.id):
                    self.images.untag(ref)
                    deleted.append({"Untagged": ref.familiar()})
                    self._events("image", "untag", image.id, {"name": ref.familiar()})
                deleted.extend(self._remove_image(image))
        reclaimed = sum(layer_sizes.get(d.get("Deleted", ""), 0) for d in deleted)
        self._events("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- commit ----------------------------------------------------------------
    def commit(self, parent_id: str, write_layer: Callable[[BinaryIO], int],
               build: Callable[[str], dict[str, Any]],
               ref: reference.Reference | None) -> Image:
        """A container's changes as a new image on `parent_id` (image/commit.py),
        tagged `ref` if given."""
        from dockyard.image import commit

        with self._lock:
            parent = self.images.get(parent_id) if parent_id else None  # "": FROM scratch
            image = commit.store(self.content, self.layers, self.images, parent, write_layer,
                                 build)
            if ref is not None:
                self.images.tag(image.id, ref)
        if ref is not None:
            self._events("image", "tag", image.id, {"name": ref.familiar()})
        return image

    # -- load, save, import ----------------------------------------------------
    def load(self, src: BinaryIO) -> list[str]:
        """Load an archive; return the lines docker prints."""
        path = spool_to_file(src, self.layout.tmp)
        try:
            return self.load_file(path)
        finally:
            os.unlink(path)

    def load_file(self, path: str) -> list[str]:
        """Load an archive already in a file (read with random access)."""
        loader = Loader(self.content, self.layers, self.images, self.chains_in_use)
        with self._lock:
            loaded = loader.load(path)
            return self._tag_loaded(loaded)

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
        """Each name picks, as dockerd's tarexporter does: an ID the image
        untagged; a repository every tag of it (or, with none, the image whose
        ID starts with the name); a tag or digest the image it names."""
        picked: dict[str, list[reference.Reference]] = {}

        def add(image_id: str, ref: reference.Reference | None = None) -> None:
            bucket = picked.setdefault(image_id, [])
            if ref is not None and not ref.digest and str(ref) not in map(str, bucket):
                bucket.append(ref)

        for name in names:
            try:
                parsed = reference.parse_any(name)
            except reference.ReferenceError as e:
                raise errdefs.InvalidParameter(str(e)) from e
            if isinstance(parsed, str) or parsed.familiar_name == "sha256":
                add(self.get(name).id)
            elif not parsed.tag and not parsed.digest:
                found = self.images.by_name(parsed.name)
                for ref, image_id in found:
                    add(image_id, ref)
                if not found:
                    add(self._search(name).id)
            else:
                image_id = self.images.resolve(parsed)
                if image_id is None:
                    raise NoSuchImage("reference does not exist")
                add(image_id, parsed)
        return [(self.images.get(i), refs) for i, refs in picked.items()]

    def _search(self, term: str) -> Image:
        """An image by ID prefix only (dockerd's image store Search)."""
        if reference.is_id_prefix(term):
            prefix = term.removeprefix("sha256:")
            found = [i for i in self.images if i.id[7:].startswith(prefix)]
            if len(found) == 1:
                return found[0]
            if found:
                raise errdefs.InvalidParameter(
                    f"multiple IDs found with provided prefix: {prefix}")
        raise NoSuchImage(f"No such image: {term}")

    def save(self, selection: list[tuple[Image, list[reference.Reference]]], out: BinaryIO) -> None:
        Saver(self.content, self.layers, self.layout.tmp).save(selection, out)
        for image, _ in selection:
            self._events("image", "save", image.id, {"name": image.id})

    def import_(self, src: BinaryIO, repo: str, tag: str, changes: list[str],
                message: str, platform: str = "") -> Image:
        ref = None
        if repo:
            try:
                ref = reference.parse_normalized(repo)
                if ref.digest:
                    raise errdefs.InvalidParameter("cannot import digest reference")
                if tag:
                    ref = ref.with_tag(tag)
            except reference.ReferenceError as e:
                raise errdefs.InvalidParameter(str(e)) from e
            ref = ref.tagged_or_latest()
            check_taggable(ref)
        os_name = platform.split("/")[0].lower() if platform else "linux"
        if os_name != "linux" and not ("/" not in platform and os_name in _ARCHITECTURES):
            raise errdefs.InvalidParameter("operating system is not supported")
        with self._lock:
            try:
                image = import_rootfs(src, self.content, self.layers, self.images, changes,
                                      message or "Imported from -")
            except InvalidLayer as e:
                raise layer_failure(e) from None
            except CorruptStream as e:
                raise errdefs.InvalidParameter(tar_failure(e)) from e
            if ref is not None:
                self.images.tag(image.id, ref)
        self._events("image", "import", image.id, {"name": image.id})
        return image


def tag_reference(repo: str, tag: str | None) -> reference.Reference:
    """The reference `repo` and `tag` make, checked as dockerd checks a new tag."""
    try:
        ref = reference.parse_normalized(repo)
        if tag:
            # dockerd's WithTag(TrimNamed(ref), tag): the tag replaces both.
            reference.validate_tag(tag)
            ref = dataclasses.replace(ref, tag=tag, digest=None)
    except reference.ReferenceError as e:
        raise errdefs.InvalidParameter(str(e)) from e
    if ref.digest:
        raise errdefs.InvalidParameter("refusing to create a tag with a digest reference")
    return ref.tagged_or_latest()


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


# -- reference patterns: Go's path.Match ----------------------------------------

def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1 if i + 1 < len(pattern) else 0
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise PatternError("syntax error in pattern")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise PatternError("syntax error in pattern")
    if len(chunk) < 2:
        raise PatternError("syntax error in pattern")
    return chunk[0], chunk[1:]


def _match_chunk(chunk: str, s: str) -> str | None:
    """The rest of `s` after `chunk` matched its start, or None; raises
    PatternError for a malformed chunk even when the match already failed."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            matched, ranges = False, 0
            while True:
                if chunk.startswith("]") and ranges > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if lo <= r <= hi:
                    matched = True
                ranges += 1
            if matched == negated:
                failed = True
        elif c == "?":
            if not failed:
                failed, s = s[0] == "/", s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise PatternError("syntax error in pattern")
            if not failed:
                failed, s = chunk[0] != s[0], s[1:]
            chunk = chunk[1:]
    return None if failed else s


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never match a slash, `[...]` classes,
    `\\` escapes; a malformed pattern raises PatternError."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * matches the rest, unless it has a /
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            i, found = 0, False
            while i < len(name) and name[i] != "/":
                rest = _match_chunk(chunk, name[i + 1:])
                if rest is not None and (pattern or not rest):
                    name, found = rest, True
                    break
                i += 1
            if found:
                continue
        while pattern:  # the rest of the pattern must still be well-formed
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def familiar_match(pattern: str, ref: reference.Reference) -> bool:
    """dockerd's reference.FamiliarMatch: the familiar string, else the
    familiar name (whose own pattern error is ignored)."""
    if path_match(pattern, ref.familiar()):
        return True
    try:
        return path_match(pattern, ref.familiar_name)
    except PatternError:
        return False


__all__ = ["ImageService", "NoSuchImage", "familiar_match", "path_match"]

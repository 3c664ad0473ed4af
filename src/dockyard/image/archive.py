"""Image archives: `docker save` tarballs (legacy and OCI layouts) and OCI archives.

Three layouts arrive at `POST /images/load`:

* legacy docker-save: `manifest.json` lists, per image, the config file and the
  layer tars (`<v1-id>/layer.tar`), plus `RepoTags`;
* docker-save from docker 25+: the same `manifest.json`, but the paths point into
  an OCI layout (`blobs/sha256/<hex>`) that sits beside it with `index.json`;
* an OCI archive (skopeo's `oci-archive:`): only `index.json` and `blobs/`, the
  names in the `org.opencontainers.image.ref.name` / `io.containerd.image.name`
  annotations.

Everything in an archive is checked before it is kept: blob digests against
their descriptors, each layer's uncompressed bytes against the config's diff_id.
A load that fails undoes what it stored. A tar that cannot be read fails with
dockerd's words (it unpacks archives with Go's archive/tar in a child process,
hence "exit status 1"), so users find what they search for.

`save` writes the docker 25 layout (manifest.json *and* index.json over one set of
blobs, plus the legacy `repositories` file naming each tag's top layer), which
both the legacy loaders and OCI tools read.
"""

from __future__ import annotations

import contextlib
import io
import json
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from dockyard import errdefs, timefilter
from dockyard.image import mediatypes as mt
from dockyard.image import reference
from dockyard.image.content import ContentStore, sha256_digest
from dockyard.image.layers import Layer, LayerStore
from dockyard.image.store import Image, ImageStore, check_taggable
from dockyard.storage.compression import BZIP2_MAGIC, GZIP_MAGIC, XZ_MAGIC, CorruptStream, detect
from dockyard.storage.layer import InvalidLayer

_BLOB_PATH = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")

TAR_ERROR = "Error processing tar file(exit status 1): "
UNEXPECTED_EOF = TAR_ERROR + "unexpected EOF"
INVALID_HEADER = TAR_ERROR + "archive/tar: invalid tar header"
_EOF_WORDS = ("unexpected end of data", "truncated header", "end-of-stream", "ended before")
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


class InvalidArchive(errdefs.InvalidParameter):
    pass


def tar_failure(err: BaseException) -> str:
    """dockerd's message for a tar stream (or its compression) that cannot be
    read: Go's archive/tar says "unexpected EOF" for a stream cut short and
    "invalid tar header" for bytes that are no tar header."""
    if isinstance(err, CorruptStream) and err.__cause__ is not None:
        err = err.__cause__
    text = str(err).lower()
    if isinstance(err, EOFError) or any(w in text for w in _EOF_WORDS):
        return UNEXPECTED_EOF
    if isinstance(err, (zlib.error, lzma.LZMAError, OSError)) and \
            not isinstance(err, tarfile.TarError):
        return TAR_ERROR + "corrupt compressed stream"
    return INVALID_HEADER


def layer_failure(err: InvalidLayer) -> InvalidLayer:
    """A layer tar that does not read as a tar gets dockerd's words; a refused
    path (escapes, whiteouts) keeps ours, which names it."""
    if isinstance(err.__cause__, (*_TAR_ERRORS, CorruptStream)):
        failure = InvalidLayer(tar_failure(err.__cause__))
        failure.__cause__ = err
        return failure
    return err


@dataclass
class Loaded:
    image: Image
    tags: list[reference.Reference]


@dataclass
class _Undo:
    """What a load stored, so a failure can take it back."""
    blobs: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


_COMPRESSED_MODES = ((GZIP_MAGIC, "r:gz"), (BZIP2_MAGIC, "r:bz2"), (XZ_MAGIC, "r:xz"))


class _Reader:
    """Random access to the members of a tar archive by normalized path.

    The whole member list is read (and the archive's end checked) up front, so
    a damaged archive fails before anything of it is stored.
    """

    def __init__(self, path: str):
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        size = os.path.getsize(path)
        if size == 0:
            return  # no bytes: an empty archive, as for Go's tar reader
        with open(path, "rb") as f:
            head = f.read(8)
        mode = next((m for magic, m in _COMPRESSED_MODES if head.startswith(magic)), "r:")
        try:
            self.tar = tarfile.open(path, mode)
            for m in self.tar.getmembers():
                self.members[posixpath.normpath(m.name.lstrip("/"))] = m
        except _TAR_ERRORS as e:
            self.close()
            raise InvalidArchive(tar_failure(e)) from e
        if mode == "r:":
            self._check_end(path, size)

    def _check_end(self, path: str, size: int) -> None:
        """Python's tarfile ends the archive quietly at a damaged header (after
        the first) and does not notice a last member cut short; Go's reader
        fails on both. What follows the last member must be nothing, or zero
        blocks."""
        offset = self.tar.offset
        with open(path, "rb") as f:
            f.seek(min(offset, size))
            tail = f.read(1024)
        blocks = [tail[:512], tail[512:]] if tail else []
        for block in blocks:
            if not block:
                break
            if offset > size or len(block) < 512:
                self.close()
                raise InvalidArchive(UNEXPECTED_EOF)
            if block.strip(b"\0"):
                self.close()
                raise InvalidArchive(INVALID_HEADER)
        if offset > size:
            self.close()
            raise InvalidArchive(UNEXPECTED_EOF)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def has(self, name: str) -> bool:
        return posixpath.normpath(name) in self.members

    def open(self, name: str) -> BinaryIO:
        norm = posixpath.normpath(name.lstrip("/"))
        if norm.startswith("../") or norm == "..":
            raise InvalidArchive(f"invalid path in archive: {name}")
        member = self.members.get(norm)
        if member is None or self.tar is None:
            raise InvalidArchive(f"archive is missing {name}")
        try:
            f = self.tar.extractfile(member)
        except (*_TAR_ERRORS, KeyError) as e:
            raise InvalidArchive(tar_failure(e)) from e
        if f is None:
            raise InvalidArchive(f"{name} in archive is not a file")
        return f

    def read(self, name: str) -> bytes:
        try:
            return self.open(name).read()
        except _TAR_ERRORS as e:
            raise InvalidArchive(tar_failure(e)) from e

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise InvalidArchive(f"invalid {name}: not valid JSON") from e


class Loader:
    def __init__(self, content: ContentStore, layers: LayerStore, images: ImageStore,
                 images_in_use: Callable[[], set[str]]):
        self.content = content
        self.layers = layers
        self.images = images
        self._chains_in_use = images_in_use

    def load(self, path: str) -> list[Loaded]:
        archive = _Reader(path)
        undo = _Undo()
        try:
            if archive.has("manifest.json"):
                return self._load_docker(archive, undo)
            if archive.has("index.json"):
                return self._load_oci(archive, undo)
            raise InvalidArchive("invalid archive: no manifest.json or index.json found")
        except InvalidLayer as e:
            self._rollback(undo)
            raise layer_failure(e) from None
        except CorruptStream as e:
            self._rollback(undo)
            raise InvalidArchive(tar_failure(e)) from e
        except BaseException:
            self._rollback(undo)
            raise
        finally:
            archive.close()

    # -- docker save ---------------------------------------------------------
    def _load_docker(self, archive: _Reader, undo: _Undo) -> list[Loaded]:
        manifest = archive.json("manifest.json")
        if not isinstance(manifest, list) or not all(isinstance(e, dict) for e in manifest):
            raise InvalidArchive("invalid manifest.json: expected a list of objects")
        # Refuse bad tags before anything is stored.
        tags_of = [[_parse_tag(t) for t in entry.get("RepoTags") or []] for entry in manifest]
        loaded = []
        for entry, tags in zip(manifest, tags_of):
            config_path = entry.get("Config") or ""
            config_bytes = archive.read(config_path)
            _check_named_digest(config_path, config_bytes)
            config = _parse_config(config_bytes)
            diff_ids = config["rootfs"]["diff_ids"]
            layer_paths = entry.get("Layers") or []
            if len(layer_paths) != len(diff_ids):
                raise InvalidArchive(
                    f"invalid manifest: {len(layer_paths)} layers for {len(diff_ids)} diff_ids")
            parent = None
            for layer_path, diff_id in zip(layer_paths, diff_ids):
                expected = None
                if m := _BLOB_PATH.match(posixpath.normpath(layer_path)):
                    expected = "sha256:" + m.group(1)
                layer = self._layer(archive, layer_path, expected, None, diff_id, parent, undo)
                parent = layer.chain_id
            image = self._add_image(config_bytes, undo)
            loaded.append(Loaded(image, tags))
        return loaded

    # -- OCI layout ----------------------------------------------------------
    def _load_oci(self, archive: _Reader, undo: _Undo) -> list[Loaded]:
        index = archive.json("index.json")
        if not isinstance(index, dict):
            raise InvalidArchive("invalid index.json: expected an object")
        loaded = []
        for desc in index.get("manifests") or []:
            manifest_desc = self._select_manifest(archive, desc)
            if manifest_desc is None:
                continue
            manifest = _json_object(self._blob(archive, manifest_desc), "manifest")
            config_desc = manifest.get("config") or {}
            config_bytes = self._blob(archive, config_desc)
            config = _parse_config(config_bytes)
            diff_ids = config["rootfs"]["diff_ids"]
            if len(manifest.get("layers") or []) != len(diff_ids):
                raise InvalidArchive("invalid manifest: layer count does not match the config")
            parent = None
            for layer_desc, diff_id in zip(manifest["layers"], diff_ids):
                layer = self._layer(archive, _blob_path(layer_desc), layer_desc["digest"],
                                    layer_desc.get("mediaType"), diff_id, parent, undo)
                parent = layer.chain_id
            image = self._add_image(config_bytes, undo)
            tags = []
            name = _annotated_name(desc) or _annotated_name(manifest_desc)
            if name:
                check_taggable(name)
                tags.append(name)
            loaded.append(Loaded(image, tags))
        if not loaded:
            raise InvalidArchive("invalid archive: index.json names no image for linux")
        return loaded

    def _select_manifest(self, archive: _Reader, desc: dict) -> dict | None:
        """Follow nested indexes down to the manifest for this platform."""
        if not isinstance(desc, dict):
            raise InvalidArchive("invalid index: a descriptor is not an object")
        if desc.get("mediaType") in mt.INDEXES:
            inner = _json_object(self._blob(archive, desc), "index")
            for child in inner.get("manifests") or []:
                platform = child.get("platform") or {}
                if platform.get("os", "linux") == "linux" and \
                        platform.get("architecture", mt.host_arch()) == mt.host_arch():
                    selected = self._select_manifest(archive, child)
                    if selected is not None:
                        selected.setdefault("annotations", desc.get("annotations") or {})
                        return selected
            return None
        return desc

    def _blob(self, archive: _Reader, desc: dict) -> bytes:
        data = archive.read(_blob_path(desc))
        if sha256_digest(data) != desc.get("digest"):
            raise InvalidArchive(
                f"digest mismatch for {_blob_path(desc)}: expected {desc.get('digest')}, "
                f"got {sha256_digest(data)}")
        return data

    # -- shared steps --------------------------------------------------------
    def _layer(self, archive: _Reader, path: str, expected_digest: str | None,
               media_type: str | None, diff_id: str, parent: str | None,
               undo: _Undo) -> Layer:
        chain = _chain(parent, diff_id)
        if self.layers.has(chain):
            return self.layers.get(chain)  # "Already exists": no need to read it
        existed_before = expected_digest is not None and self.content.exists(expected_digest)
        with self.content.writer() as w:
            try:
                w.copy_from(archive.open(path))
            except _TAR_ERRORS as e:
                raise InvalidArchive(tar_failure(e)) from e
            try:
                digest = w.commit(expected_digest)
            except errdefs.InvalidParameter as e:
                raise InvalidArchive(f"{path}: {e}") from e
        if not existed_before:
            undo.blobs.append(digest)
        if media_type is None:
            with self.content.open(digest) as f:
                media_type = mt.layer_media_type(detect(f.read(4)))
        layer = self.layers.register(digest, media_type, diff_id, parent)
        undo.layers.append(layer.chain_id)
        return layer

    def _add_image(self, config_bytes: bytes, undo: _Undo) -> Image:
        digest = sha256_digest(config_bytes)
        if not self.content.exists(digest):
            undo.blobs.append(digest)
        return self.images.add(config_bytes)

    def _rollback(self, undo: _Undo) -> None:
        in_use = self._chains_in_use()
        for chain in reversed(undo.layers):
            self.layers.release(chain, in_use)
        referenced = {l.blob_digest for l in self.layers} | {i.id for i in self.images}
        for digest in undo.blobs:
            if digest not in referenced:
                self.content.delete(digest)


def _chain(parent: str | None, diff_id: str) -> str:
    from dockyard.storage.layer import chain_ids
    return chain_ids([parent, diff_id])[1] if parent else diff_id


def _json_object(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidArchive(f"invalid {what}: not a JSON object")
    return value


def _blob_path(desc: dict) -> str:
    digest = (desc.get("digest") if isinstance(desc, dict) else None) or ""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise InvalidArchive(f"invalid digest in descriptor: {digest!r}")
    return f"blobs/sha256/{hexpart}"


def _check_named_digest(path: str, data: bytes) -> None:
    """A config named by its digest (`<hex>.json`, `blobs/sha256/<hex>`) must hash to it."""
    m = re.search(r"(?:^|/)([0-9a-f]{64})(?:\.json)?$", path)
    if m and sha256_digest(data) != "sha256:" + m.group(1):
        raise InvalidArchive(f"digest mismatch for {path}: got {sha256_digest(data)}")


def _parse_config(data: bytes) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except ValueError:
        raise InvalidArchive("invalid image config: not valid JSON") from None
    try:
        diff_ids = config["rootfs"]["diff_ids"]
    except (KeyError, TypeError):
        raise InvalidArchive("invalid image config: no rootfs.diff_ids") from None
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in diff_ids):
        raise InvalidArchive("invalid image config: bad rootfs.diff_ids")
    return config


def _parse_tag(text: str) -> reference.Reference:
    if not isinstance(text, str):
        raise InvalidArchive("invalid manifest.json: RepoTags must be strings")
    try:
        ref = reference.parse_normalized(text)
    except reference.ReferenceError as e:
        raise InvalidArchive(f"invalid tag {text!r} in archive: {e}") from e
    ref = ref.tagged_or_latest()
    check_taggable(ref)
    return ref


def _annotated_name(desc: dict) -> reference.Reference | None:
    annotations = desc.get("annotations") or {}
    for key in (mt.ANNOTATION_CONTAINERD_NAME, mt.ANNOTATION_REF_NAME):
        name = annotations.get(key)
        if not name:
            continue
        with contextlib.suppress(reference.ReferenceError):
            ref = reference.parse_normalized(name)
            if ref.tag or ref.digest:
                return ref
    return None


# -- save ---------------------------------------------------------------------

class Saver:
    def __init__(self, content: ContentStore, layers: LayerStore, tmp: str):
        self.content = content
        self.layers = layers
        self.tmp = tmp
        self._sizes: dict[str, int] = {}  # diff_id -> size of the layer tar written

    def save(self, images: list[tuple[Image, list[reference.Reference]]], out: BinaryIO) -> None:
        tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        written: set[str] = set()
        index_manifests = []
        manifest_json = []
        repositories: dict[str, dict[str, str]] = {}
        for image, tags in images:
            # docker 25 dates an image's config and layer files with its creation time.
            mtime = max(image.created_ns // timefilter.NS, 0)
            config_bytes = self.content.read(image.id)
            self._add_blob(tar, written, image.id, io.BytesIO(config_bytes), len(config_bytes),
                           mtime)
            layer_descs = []
            for layer in self.layers.chain(image.diff_ids):
                size = self._add_layer(tar, written, layer, mtime)
                layer_descs.append({"mediaType": mt.OCI_LAYER, "digest": layer.diff_id,
                                    "size": size})
            if image.diff_ids:
                for tag in tags:
                    repositories.setdefault(tag.familiar_name, {})[tag.tag] = \
                        image.diff_ids[-1].removeprefix("sha256:")
            manifest = {
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": image.id,
                           "size": len(config_bytes)},
                "layers": layer_descs,
            }
            manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
            manifest_digest = sha256_digest(manifest_bytes)
            self._add_blob(tar, written, manifest_digest, io.BytesIO(manifest_bytes),
                           len(manifest_bytes))
            desc = {"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest,
                    "size": len(manifest_bytes)}
            for tag in tags or [None]:
                entry = dict(desc)
                if tag is not None:
                    entry["annotations"] = {mt.ANNOTATION_CONTAINERD_NAME: str(tag),
                                            mt.ANNOTATION_REF_NAME: tag.tag}
                index_manifests.append(entry)
            manifest_json.append({
                "Config": _blob_path({"digest": image.id}),
                "RepoTags": [t.familiar() for t in tags] or None,
                "Layers": [_blob_path({"digest": d["digest"]}) for d in layer_descs],
            })
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index_manifests}
        # In the order docker's tar of its export directory has them (by name);
        # manifest.json and repositories as Go's json.Encoder writes them.
        _add_bytes(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        _add_bytes(tar, "manifest.json",
                   json.dumps(manifest_json, separators=(",", ":")).encode() + b"\n")
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(
                repositories, separators=(",", ":"), sort_keys=True).encode() + b"\n")
        tar.close()

    def _add_layer(self, tar: tarfile.TarFile, written: set[str], layer: Layer,
                   mtime: int) -> int:
        """Layers are saved uncompressed, named by their diff_id, as docker does."""
        if layer.diff_id in written:
            return self._sizes[layer.diff_id]
        if layer.diff_id == layer.blob_digest:
            size = self.content.size(layer.blob_digest)
            with self.content.open(layer.blob_digest) as f:
                self._add_blob(tar, written, layer.diff_id, f, size, mtime)
        else:
            with tempfile.TemporaryFile(dir=self.tmp) as spool, \
                    self.layers.open_uncompressed(layer) as src:
                shutil.copyfileobj(src, spool, 1 << 20)
                size = spool.tell()
                spool.seek(0)
                self._add_blob(tar, written, layer.diff_id, spool, size, mtime)
        self._sizes[layer.diff_id] = size
        return size

    @staticmethod
    def _add_blob(tar: tarfile.TarFile, written: set[str], digest: str, f: BinaryIO,
                  size: int, mtime: int = 0) -> None:
        if digest in written:
            return
        written.add(digest)
        info = tarfile.TarInfo(_blob_path({"digest": digest}))
        info.size, info.mode, info.mtime = size, 0o644, mtime
        tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def spool_to_file(src, tmp_dir: str) -> str:
    """Copy a stream to a file under `tmp_dir` (archives need random access)."""
    fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="load-")
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(src, f, 1 << 20)
    return path

"""Repositories over a storage driver: blobs, manifests, tags, referrers, catalog.

Everything here is synchronous and speaks in the spec's words; the HTTP layer
calls it from worker threads. The tree it keeps is drawn in `layout.py`.
The order of writes is the crash-safety argument: bytes first, then the link
that makes them part of a repository, then the tag; removals go the other way
(a link goes, the bytes stay until garbage collection), so a crash at any
point leaves at most bytes nothing points to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.registry import layout
from dockyard.registry.digest import CANONICAL, Digest, digest_of, is_digest, parse_digest
from dockyard.registry.driver import PathNotFound, StorageDriver
from dockyard.registry.errors import (BlobUnknown, DigestInvalid, ManifestBlobUnknown,
                                      ManifestUnknown, NameUnknown, TooLarge)
from dockyard.registry.manifest import MAX_SIZE, OCI_INDEX, OCI_MANIFEST, Manifest, parse_manifest
from dockyard.registry.names import validate_tag
from dockyard.registry.uploads import Upload, Uploads


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int
    local_path: str | None  # for sendfile, when the driver has the file on this host


def stored_media_type(data: bytes) -> str:
    """The media type of manifest bytes already accepted: their `mediaType`, or
    for an OCI manifest without one, its shape (as parse_manifest decided)."""
    body = json.loads(data)
    declared = body.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    return OCI_INDEX if "manifests" in body else OCI_MANIFEST


class Registry:
    """The registry's content: one instance per storage driver."""

    def __init__(self, driver: StorageDriver):
        self.driver = driver
        self.uploads = Uploads(driver)

    # --- repositories ----------------------------------------------------------

    def repositories(self) -> list[str]:
        """Every repository's name, in lexical order (the catalog's order)."""
        found: list[str] = []
        self._walk_repositories(layout.REPOSITORIES, "", found)
        return sorted(found)

    def _walk_repositories(self, path: str, name: str, found: list[str]) -> None:
        try:
            children = self.driver.list(path)
        except PathNotFound:
            return
        leaves = [c.rsplit("/", 1)[1] for c in children]
        if name and any(leaf in layout.REPOSITORY_MARKERS for leaf in leaves):
            found.append(name)
        for child, leaf in zip(children, leaves):
            if not leaf.startswith("_"):
                self._walk_repositories(child, f"{name}/{leaf}" if name else leaf, found)

    def repository_exists(self, name: str) -> bool:
        return any(self.driver.exists(f"{layout.repository(name)}/{m}")
                   for m in layout.REPOSITORY_MARKERS)

    # --- blobs -----------------------------------------------------------------

    def _linked(self, name: str, d: Digest) -> bool:
        return (self.driver.exists(layout.layer_link(name, d))
                or self.driver.exists(layout.revision_link(name, d)))

    def stat_blob(self, name: str, d: Digest) -> BlobInfo:
        """The blob `d` as `name` sees it: linked into it (a layer, a config or a
        manifest of it) and present; else BlobUnknown."""
        if not self._linked(name, d):
            raise BlobUnknown(detail={"digest": str(d)})
        return self._stat_data(d)

    def _stat_data(self, d: Digest) -> BlobInfo:
        path = layout.blob_data(d)
        try:
            size = self.driver.stat(path).size
        except PathNotFound as e:
            raise BlobUnknown(detail={"digest": str(d)}) from e
        return BlobInfo(d, size, self.driver.local_path(path))

    def open_blob(self, d: Digest, offset: int = 0) -> BinaryIO:
        try:
            return self.driver.reader(layout.blob_data(d), offset)
        except PathNotFound as e:
            raise BlobUnknown(detail={"digest": str(d)}) from e

    def blob_exists(self, d: Digest) -> bool:
        return self.driver.exists(layout.blob_data(d))

    def link_blob(self, name: str, d: Digest) -> None:
        self.driver.put_content(layout.layer_link(name, d), str(d).encode())

    def mount_blob(self, name: str, d: Digest, source: str) -> bool:
        """Link `d` into `name` from the repository `source`; False if `source`
        does not have it (the client then uploads it)."""
        if not self.driver.exists(layout.layer_link(source, d)) or not self.blob_exists(d):
            return False
        self.link_blob(name, d)
        return True

    def delete_blob(self, name: str, d: Digest) -> None:
        """Unlink `d` from `name`; its bytes stay until garbage collection (other
        repositories may hold them too)."""
        try:
            self.driver.delete(layout.layer_link(name, d).rsplit("/", 1)[0])
        except PathNotFound as e:
            raise BlobUnknown(detail={"digest": str(d)}) from e

    def finish_upload(self, name: str, upload: Upload, expected: Digest) -> Digest:
        """Verify and commit `upload`, then link the blob into `name`."""
        d = upload.commit(expected)
        self.link_blob(name, d)
        return d

    # --- manifests and tags ----------------------------------------------------

    def resolve(self, name: str, reference: str) -> Digest:
        """The digest of the manifest `reference` (a tag or a digest) names in `name`."""
        if is_digest(reference):
            d = parse_digest(reference)
            if not self.driver.exists(layout.revision_link(name, d)):
                raise ManifestUnknown(detail={"digest": reference})
            return d
        validate_tag(reference)
        try:
            return parse_digest(self.driver.get_content(layout.tag_link(name, reference)).decode())
        except PathNotFound as e:
            raise ManifestUnknown(f"manifest tagged {reference!r} unknown to registry",
                                  detail={"tag": reference}) from e

    def get_manifest(self, name: str, reference: str) -> tuple[Digest, str, bytes]:
        """(digest, media type, bytes) of the manifest `reference` in `name`."""
        d = self.resolve(name, reference)
        try:
            data = self.driver.get_content(layout.blob_data(d))
        except PathNotFound as e:
            raise ManifestUnknown(detail={"digest": str(d)}) from e
        return d, stored_media_type(data), data

    def put_manifest(self, name: str, reference: str, data: bytes,
                     content_type: str | None) -> tuple[Digest, Manifest]:
        """Store `data` as a manifest of `name`, tagged when `reference` is a tag.

        Refused (and nothing stored) when it is not a manifest, does not match the
        digest it is put under, or references blobs or child manifests the
        repository does not have."""
        if len(data) > MAX_SIZE:
            raise TooLarge(f"manifest larger than {MAX_SIZE} bytes")
        if is_digest(reference):
            wanted, tag = parse_digest(reference), None
            d = digest_of(data, wanted.algorithm)
            if d != wanted:
                raise DigestInvalid(f"manifest digest {d} does not match {reference}",
                                    detail={"digest": reference})
        else:
            tag, d = validate_tag(reference), digest_of(data, CANONICAL)
        manifest = parse_manifest(data, content_type)
        self._check_references(name, manifest)
        self._store_manifest(name, d, data, manifest, tag)
        return d, manifest

    def _store_manifest(self, name: str, d: Digest, data: bytes, manifest: Manifest,
                        tag: str | None) -> None:
        self.driver.put_content(layout.blob_data(d), data)
        self.driver.put_content(layout.revision_link(name, d), str(d).encode())
        if manifest.subject is not None:
            self.driver.put_content(layout.referrer_link(name, manifest.subject.digest, d),
                                    str(d).encode())
        if tag is not None:
            self.tag_manifest(name, tag, d)

    def has_manifest(self, name: str, d: Digest) -> bool:
        return self.driver.exists(layout.revision_link(name, d))

    def tag_manifest(self, name: str, tag: str, d: Digest) -> None:
        """Point `tag` of `name` at the manifest `d` (which `name` holds)."""
        if self._tag_target(name, tag) != d:
            self.driver.put_content(layout.tag_link(name, tag), str(d).encode())

    def cache_manifest(self, name: str, d: Digest, data: bytes, content_type: str | None,
                       tag: str | None = None) -> Manifest:
        """Store `data`, already checked to be the manifest `d`, as a pull-through
        cache does: without requiring its blobs, which are fetched when asked for."""
        manifest = parse_manifest(data, content_type)
        self._store_manifest(name, d, data, manifest, tag)
        return manifest

    def _check_references(self, name: str, manifest: Manifest) -> None:
        for child in manifest.manifests:
            if not self.driver.exists(layout.revision_link(name, child.digest)):
                raise ManifestBlobUnknown(f"manifest {child.digest} unknown to repository",
                                          detail={"digest": str(child.digest)})
        for blob in manifest.blobs():
            if not (self.driver.exists(layout.layer_link(name, blob.digest))
                    and self.blob_exists(blob.digest)):
                raise ManifestBlobUnknown(f"blob {blob.digest} unknown to repository",
                                          detail={"digest": str(blob.digest)})

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete a tag, or (by digest) a manifest with every tag pointing to it."""
        d = self.resolve(name, reference)
        if not is_digest(reference):
            self._delete_quietly(layout.tag_dir(name, reference))
            return
        for tag in self.tags(name):
            if self._tag_target(name, tag) == d:
                self._delete_quietly(layout.tag_dir(name, tag))
        try:
            manifest = parse_manifest(self.driver.get_content(layout.blob_data(d)))
        except (PathNotFound, ValueError):
            manifest = None
        if manifest is not None and manifest.subject is not None:
            self._delete_quietly(layout.referrer_link(name, manifest.subject.digest, d)
                                 .rsplit("/", 1)[0])
        self._delete_quietly(layout.revision_dir(name, d))

    def _tag_target(self, name: str, tag: str) -> Digest | None:
        try:
            return parse_digest(self.driver.get_content(layout.tag_link(name, tag)).decode())
        except (PathNotFound, ValueError):
            return None

    def _delete_quietly(self, path: str) -> None:
        try:
            self.driver.delete(path)
        except PathNotFound:
            pass

    def tags(self, name: str) -> list[str]:
        """The tags of `name` in lexical order; NameUnknown if there is no such repository."""
        try:
            paths = self.driver.list(layout.tags(name))
        except PathNotFound:
            if not self.repository_exists(name):
                raise NameUnknown(detail={"name": name}) from None
            return []
        return sorted(p.rsplit("/", 1)[1] for p in paths)

    def revisions(self, name: str) -> list[Digest]:
        """Every manifest of `name`, tagged or not."""
        found = []
        try:
            algorithms = self.driver.list(layout.revisions(name))
        except PathNotFound:
            return []
        for algorithm in algorithms:
            for path in self.driver.list(algorithm):
                found.append(Digest(algorithm.rsplit("/", 1)[1], path.rsplit("/", 1)[1]))
        return found

    # --- referrers -------------------------------------------------------------

    def referrers(self, name: str, subject: Digest,
                  artifact_type: str | None = None) -> list[dict]:
        """Descriptors of the manifests of `name` whose subject is `subject`,
        optionally only those of one artifact type (the referrers API)."""
        found = []
        for d in self.referrer_digests(name, subject):
            descriptor = self._referrer_descriptor(d)
            if descriptor is None:
                continue
            if artifact_type is None or descriptor.get("artifactType") == artifact_type:
                found.append(descriptor)
        return found

    def referrer_digests(self, name: str, subject: Digest) -> list[Digest]:
        """The digests of the manifests of `name` whose subject is `subject`."""
        found = []
        try:
            algorithms = self.driver.list(layout.referrers(name, subject))
        except PathNotFound:
            return []
        for algorithm in algorithms:
            for path in self.driver.list(algorithm):
                found.append(Digest(algorithm.rsplit("/", 1)[1], path.rsplit("/", 1)[1]))
        return found

    def _referrer_descriptor(self, d: Digest) -> dict | None:
        try:
            data = self.driver.get_content(layout.blob_data(d))
        except PathNotFound:
            return None
        manifest = parse_manifest(data)
        descriptor = {"mediaType": manifest.media_type, "digest": str(d), "size": len(data)}
        if manifest.referrer_artifact_type():
            descriptor["artifactType"] = manifest.referrer_artifact_type()
        if manifest.annotations:
            descriptor["annotations"] = manifest.annotations
        return descriptor

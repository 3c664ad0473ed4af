"""Reading manifests: which kind, which blobs and manifests they reference.

The registry stores manifests as the exact bytes it was given (their digest is
the digest of those bytes) and reads four kinds of them:

    OCI image manifest      application/vnd.oci.image.manifest.v1+json
    OCI image index         application/vnd.oci.image.index.v1+json
    Docker schema2          application/vnd.docker.distribution.manifest.v2+json
    Docker manifest list    application/vnd.docker.distribution.manifest.list.v2+json

A manifest's kind is its `mediaType` field. OCI manifests may leave it out; then
the kind is the one the client sent as Content-Type, or, when that says
nothing, the shape (an index has `manifests`). A `mediaType` field that
contradicts the Content-Type is refused, as distribution refuses it: a client
and the registry must not disagree about what a digest names. Docker schema1
is not accepted (docker stopped pushing it in 2019).

For each manifest we need what it references: an image manifest its config and
layers (blobs that must exist in the repository before the manifest does), an
index its child manifests, and any manifest its `subject` (the referrers API).
Foreign / non-distributable layers that carry `urls` live elsewhere and are not
required to exist, as in distribution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dockyard.image import mediatypes
from dockyard.registry.digest import Digest, parse_digest
from dockyard.registry.errors import DigestInvalid, ManifestInvalid

OCI_MANIFEST = mediatypes.OCI_MANIFEST
OCI_INDEX = mediatypes.OCI_INDEX
DOCKER_MANIFEST = mediatypes.DOCKER_MANIFEST
DOCKER_MANIFEST_LIST = mediatypes.DOCKER_MANIFEST_LIST
INDEXES = frozenset(mediatypes.INDEXES)
IMAGE_MANIFESTS = frozenset(mediatypes.MANIFESTS)
KNOWN = INDEXES | IMAGE_MANIFESTS
SCHEMA1 = frozenset({"application/vnd.docker.distribution.manifest.v1+json",
                     "application/vnd.docker.distribution.manifest.v1+prettyjws"})
FOREIGN_LAYERS = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
MAX_SIZE = 4 << 20  # the spec: registries SHOULD accept manifests of at least 4 MiB


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        return bool(self.urls) and self.media_type in FOREIGN_LAYERS


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    def blobs(self) -> list[Descriptor]:
        """The blobs that must be in the repository: config and layers, not foreign ones."""
        found = [self.config] if self.config else []
        return found + [d for d in self.layers if not d.is_foreign]

    def referrer_artifact_type(self) -> str | None:
        """The artifactType the referrers API lists: the manifest's own, else its
        config's media type (image manifests only), as the spec says."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None


def _media_type_of(body: dict, content_type: str | None) -> str:
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    header = (content_type or "").split(";", 1)[0].strip().lower() or None
    if header in SCHEMA1 or declared in SCHEMA1:
        raise ManifestInvalid("Docker schema1 manifests are not supported")
    if declared is None:
        shaped = OCI_INDEX if "manifests" in body else OCI_MANIFEST
        declared = header if header in (OCI_MANIFEST, OCI_INDEX) else shaped
    if declared not in KNOWN:
        raise ManifestInvalid(f"unsupported manifest media type {declared!r}")
    if header in KNOWN and header != declared:
        raise ManifestInvalid(
            f"mediaType {declared!r} in the manifest does not match Content-Type {header!r}")
    return declared


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where}: a descriptor must be an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}: mediaType missing")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: digest missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: size must be a non-negative integer")
    urls = raw.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings")
    try:
        return Descriptor(media_type, parse_digest(digest), size, tuple(urls))
    except DigestInvalid as e:
        raise ManifestInvalid(f"{where}: {e.message}") from e


def _descriptors(body: dict, key: str) -> tuple[Descriptor, ...]:
    raw = body.get(key, [])
    if not isinstance(raw, list):
        raise ManifestInvalid(f"{key} must be a list")
    return tuple(_descriptor(r, f"{key}[{i}]") for i, r in enumerate(raw))


def parse_manifest(data: bytes, content_type: str | None = None) -> Manifest:
    """The manifest in `data`, or ManifestInvalid saying why it is not one."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestInvalid(f"manifest is not valid JSON: {e}") from e
    if not isinstance(body, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if body.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    media_type = _media_type_of(body, content_type)
    artifact_type = body.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    annotations = body.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    subject = _descriptor(body["subject"], "subject") if body.get("subject") else None
    if media_type in INDEXES:
        return Manifest(media_type, manifests=_descriptors(body, "manifests"), subject=subject,
                        artifact_type=artifact_type, annotations=annotations)
    if "config" not in body:
        raise ManifestInvalid("an image manifest needs a config")
    return Manifest(media_type, config=_descriptor(body["config"], "config"),
                    layers=_descriptors(body, "layers"), subject=subject,
                    artifact_type=artifact_type, annotations=annotations)

"""Helpers to fill a registry in tests: push blobs, build image manifests."""

from __future__ import annotations

import json

from dockyard.registry.digest import digest_of
from dockyard.registry.storage import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def push_blob(registry: Registry, name: str, data: bytes) -> str:
    upload = registry.uploads.start(name)
    upload.write(data)
    return str(registry.finish_upload(name, upload, digest_of(data)))


def descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": str(digest_of(data)), "size": len(data)}


def image_manifest(registry: Registry, name: str, layers: list[bytes],
                   config: bytes = b"{}", **extra) -> bytes:
    """An OCI image manifest whose blobs are pushed to `name`."""
    push_blob(registry, name, config)
    for layer in layers:
        push_blob(registry, name, layer)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", x)
                       for x in layers], **extra}
    return json.dumps(body).encode()

"""`docker import`: a root filesystem tarball becomes a one-layer image.

The tarball is kept as the layer blob exactly as it came (compressed or not);
its uncompressed bytes give the diff_id. The config is what dockerd writes for
an import: an empty container config with the `changes` applied, the comment as
the single history entry.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from dockyard import __version__
from dockyard.image import changes as image_changes
from dockyard.image import mediatypes as mt
from dockyard.image.config import container_config
from dockyard.image.content import ContentStore
from dockyard.image.layers import Layer, LayerStore
from dockyard.image.store import Image, ImageStore, now_rfc3339
from dockyard.storage.compression import detect


def build_config(diff_id: str, changes: list[str], comment: str,
                 created: str | None = None) -> dict[str, Any]:
    created = created or now_rfc3339()
    return {
        "architecture": mt.host_arch(),
        "comment": comment,
        "config": container_config(image_changes.apply({}, changes)),
        "created": created,
        "docker_version": __version__,
        "history": [{"created": created, "comment": comment}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }


def import_rootfs(src: BinaryIO, content: ContentStore, layers: LayerStore, images: ImageStore,
                  changes: list[str], comment: str) -> Image:
    # Validate the changes before any byte is stored: bad input leaves nothing behind.
    image_changes.apply({}, changes)
    with content.writer() as w:
        w.copy_from(src)
        blob = w.commit()
    layer = register_blob(content, layers, blob, None)
    config = build_config(layer.diff_id, changes, comment)
    return images.add(json.dumps(config, separators=(",", ":")).encode())


def register_blob(content: ContentStore, layers: LayerStore, blob: str,
                  parent: str | None) -> Layer:
    """Unpack a layer blob just stored on top of the chain `parent`; if that
    fails the blob goes again (unless another layer already had the same bytes)."""
    try:
        with content.open(blob) as f:
            media_type = mt.layer_media_type(detect(f.read(4)))
        return layers.register(blob, media_type, None, parent)
    except BaseException:
        if not any(l.blob_digest == blob for l in layers):
            content.delete(blob)
        raise
